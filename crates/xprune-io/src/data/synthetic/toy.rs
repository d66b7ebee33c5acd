//! Two-dimensional toy problems: two moons, circles and a multi-arm spiral.

use super::rng::{normal_pair, stream};
use crate::data::error::{DataError, Result};
use rand::seq::SliceRandom;
use std::f32::consts::PI;
use xprune_graph::{Dataset, FeatureShape};

/// Checks the common arguments of the toy generators.
fn check(n: usize, classes: usize, noise: f32, what: &str) -> Result<()> {
    if n < classes {
        return Err(DataError::InvalidArgument(format!(
            "{what} needs at least {classes} samples (one per class), got {n}"
        )));
    }
    if !(noise.is_finite() && noise >= 0.0) {
        return Err(DataError::InvalidArgument(format!(
            "{what}: noise must be a non-negative number, got {noise}"
        )));
    }
    Ok(())
}

/// `n` samples split as evenly as possible among `classes` (the first classes get one more).
fn per_class(n: usize, classes: usize) -> Vec<usize> {
    (0..classes)
        .map(|c| n / classes + usize::from(c < n % classes))
        .collect()
}

/// `m` evenly spaced values in `[0, 1]` (both ends included; `[0]` for one value).
fn linspace(m: usize) -> impl Iterator<Item = f32> {
    (0..m).map(move |j| {
        if m > 1 {
            j as f32 / (m - 1) as f32
        } else {
            0.0
        }
    })
}

/// Adds noise to the points, shuffles them with the labels and builds the dataset.
fn finish(
    mut points: Vec<[f32; 2]>,
    labels: Vec<i64>,
    classes: usize,
    noise: f32,
    seed: u64,
) -> Result<Dataset> {
    let mut rng = stream(seed, 0);
    for p in points.iter_mut() {
        let [a, b] = normal_pair(&mut rng);
        p[0] += noise * a;
        p[1] += noise * b;
    }
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.shuffle(&mut rng);
    let features = order.iter().flat_map(|&i| points[i]).collect();
    let labels = order.iter().map(|&i| labels[i]).collect();
    Dataset::new(features, labels, FeatureShape::flat(2), classes).map_err(|source| {
        DataError::Dataset {
            path: Default::default(),
            source,
        }
    })
}

/// Two interleaving half circles ("two moons"): class 0 is the upper arc
/// `(cos t, sin t)`, class 1 the lower arc `(1 - cos t, 0.5 - sin t)`, `t` evenly spaced in
/// `[0, pi]`, plus Gaussian noise of standard deviation `noise` on both coordinates.
/// Samples are shuffled; the classes have `ceil(n/2)` and `floor(n/2)` samples.
///
/// `noise = 0.1` to `0.2` gives the usual benchmark (an MLP reaches >= 99% at 0.1).
pub fn moons(n: usize, noise: f32, seed: u64) -> Result<Dataset> {
    check(n, 2, noise, "moons")?;
    let counts = per_class(n, 2);
    let mut points = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for t in linspace(counts[0]).map(|u| u * PI) {
        points.push([t.cos(), t.sin()]);
        labels.push(0);
    }
    for t in linspace(counts[1]).map(|u| u * PI) {
        points.push([1.0 - t.cos(), 0.5 - t.sin()]);
        labels.push(1);
    }
    finish(points, labels, 2, noise, seed)
}

/// Two concentric circles: class 0 on the unit circle, class 1 on the circle of radius
/// `factor` (in `(0, 1)`), angles evenly spaced, plus Gaussian noise of standard deviation
/// `noise`. Samples are shuffled; the classes have `ceil(n/2)` and `floor(n/2)` samples.
pub fn circles(n: usize, noise: f32, factor: f32, seed: u64) -> Result<Dataset> {
    check(n, 2, noise, "circles")?;
    if !(factor > 0.0 && factor < 1.0) {
        return Err(DataError::InvalidArgument(format!(
            "circles: the inner radius factor must be in (0, 1), got {factor}"
        )));
    }
    let counts = per_class(n, 2);
    let mut points = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for (class, (&m, r)) in counts.iter().zip([1.0, factor]).enumerate() {
        for j in 0..m {
            let t = 2.0 * PI * j as f32 / m as f32;
            points.push([r * t.cos(), r * t.sin()]);
            labels.push(class as i64);
        }
    }
    finish(points, labels, 2, noise, seed)
}

/// A multi-class spiral ("mult"), the 4-class set of the "Pruning by Explaining" toy
/// experiments (the classic CS231n spiral): arm `c` holds the points at radius `r = t` and
/// angle `a = 4 (c + t) + noise * g` radians, `t` evenly spaced in `[0, 1]` and `g` standard
/// normal, placed at `(r sin a, r cos a)`. The noise is angular (the authors use `0.2`); the
/// arms continue one another around the origin, so they interleave near the centre. Samples
/// are shuffled; the classes differ in size by at most one.
pub fn mult(n: usize, classes: usize, noise: f32, seed: u64) -> Result<Dataset> {
    if classes < 2 {
        return Err(DataError::InvalidArgument(format!(
            "mult needs at least 2 classes, got {classes}"
        )));
    }
    check(n, classes, noise, "mult")?;
    let mut rng = stream(seed, 1);
    let mut points = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for (c, &m) in per_class(n, classes).iter().enumerate() {
        for t in linspace(m) {
            let [g, _] = normal_pair(&mut rng);
            let a = 4.0 * (c as f32 + t) + noise * g;
            points.push([t * a.sin(), t * a.cos()]);
            labels.push(c as i64);
        }
    }
    finish(points, labels, classes, 0.0, seed)
}
