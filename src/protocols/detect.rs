//! Protocol detection by content first, port second (stub; being written).
