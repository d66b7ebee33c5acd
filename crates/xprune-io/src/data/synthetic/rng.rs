//! Seeded random helpers shared by the generators.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// A random source seeded from a data set seed and a stream number (e.g. a sample index),
/// so that every sample can be generated on its own.
pub(crate) fn stream(seed: u64, index: u64) -> StdRng {
    StdRng::seed_from_u64(splitmix(
        splitmix(seed) ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    ))
}

/// The SplitMix64 finaliser: a bijective mixing of 64-bit values.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Two independent standard normal values (both outputs of one Box-Muller transform).
pub(crate) fn normal_pair(rng: &mut StdRng) -> [f32; 2] {
    let u1: f32 = 1.0 - rng.random::<f32>(); // in (0, 1]
    let u2: f32 = rng.random::<f32>();
    let r = (-2.0 * u1.ln()).sqrt();
    let (s, c) = (std::f32::consts::TAU * u2).sin_cos();
    [r * c, r * s]
}

/// A uniform value in `[lo, hi)`.
pub(crate) fn uniform(rng: &mut StdRng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.random::<f32>()
}
