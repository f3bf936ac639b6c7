//! Helpers for unit tests.

/// A small deterministic random generator (xorshift64) seeded with `seed` (not zero): each call
/// gives a number below `n`. Randomised unit tests use it to stay reproducible without a crate.
pub fn xorshift(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut rng = seed;
    move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    }
}

/// The bytes written in hex in `s` (white space between them ignored), for packets written
/// out in tests. Panics on an odd count or a non-hex digit.
pub fn hexb(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
