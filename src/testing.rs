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
