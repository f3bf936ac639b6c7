//! TCP reassembly (stub; being written).
