//! Readers of wire bytes shared by the parsers: integers at an offset (`None` when the slice
//! is too short; the offset may be anywhere, even past the end) and text fields.

/// Reads a big-endian u16 at `at`, if there.
pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Reads a big-endian u32 at `at`, if there.
pub(crate) fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// Reads a little-endian u16 at `at`, if there.
pub(crate) fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Reads a little-endian u32 at `at`, if there.
pub(crate) fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// A text field: at most `cap` bytes, NULs cut from the end, lossily decoded, white space
/// trimmed.
pub(crate) fn trimmed_text(bytes: &[u8], cap: usize) -> String {
    let cut = &bytes[..bytes.len().min(cap)];
    let end = cut.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    String::from_utf8_lossy(&cut[..end]).trim().to_string()
}
