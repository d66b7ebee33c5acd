//! Synthetic data sets, each deterministic by seed and with balanced classes.
//!
//! - [`moons`], [`circles`], [`mult`]: 2-D toy problems (two interleaving half circles, two
//!   concentric circles, a multi-arm spiral) for MLPs, as in the toy experiments of
//!   "Pruning by Explaining" (Yeom et al., 2021).
//! - [`shapes10`]: a procedural 10-class set of 3x32x32 RGB images (disc, ring, square,
//!   frame, cross, triangle, horizontal and vertical stripes, checkerboard, blobs) with random
//!   position, size, rotation, colours, background gradient, clutter and noise; a small CNN
//!   learns it in a few epochs, a linear model cannot. It is the demo's default data set.

mod rng;
mod shapes;
mod toy;

pub use shapes::{
    SHAPES10_CLASSES, SHAPES10_MEAN, SHAPES10_SHAPE, SHAPES10_STD, shapes10, shapes10_raw,
};
pub use toy::{circles, moons, mult};
