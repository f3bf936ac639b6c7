//! TLS handshake metadata (stub; being written).
