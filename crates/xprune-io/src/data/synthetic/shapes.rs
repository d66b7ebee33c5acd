//! Shapes-10: a procedural 10-class data set of 3x32x32 RGB images.
//!
//! Each image shows one object of its class on a background with a colour gradient, with a
//! couple of random line segments as clutter and per-pixel Gaussian noise. The object's
//! position, size, rotation and colour are random; the colours are random too (only a minimum
//! contrast to the background is kept), so neither the mean colour nor any fixed pixel tells
//! the class: a linear model stays far below a small CNN, which learns the set in a few
//! epochs. Sample `i` of class `i % 10` is drawn from its own random stream, so generation is
//! deterministic by seed and `shapes10(n, s)` is a prefix of `shapes10(m, s)` for `n < m`.

use super::rng::{normal_pair, stream, uniform};
use crate::data::error::{DataError, Result};
use rand::RngExt;
use rand::rngs::StdRng;
use std::f32::consts::PI;
use xprune_graph::{Dataset, FeatureShape};

/// Class names of [`shapes10`], by label.
pub const SHAPES10_CLASSES: [&str; 10] = [
    "disc",
    "ring",
    "square",
    "frame",
    "cross",
    "triangle",
    "horizontal stripes",
    "vertical stripes",
    "checkerboard",
    "blobs",
];

/// Sample shape of [`shapes10`]: 3 channels of 32x32.
pub const SHAPES10_SHAPE: FeatureShape = FeatureShape::Spatial([3, C, C]);

/// Per-channel mean of the raw pixels ([`shapes10_raw`], values in `[0, 1]`), measured on
/// 20,000 images; [`shapes10`] subtracts it.
pub const SHAPES10_MEAN: [f32; 3] = [0.5032, 0.5023, 0.5018];

/// Per-channel standard deviation of the raw pixels, measured on 20,000 images; [`shapes10`]
/// divides by it.
pub const SHAPES10_STD: [f32; 3] = [0.2907, 0.2941, 0.2879];

/// Image side in pixels.
const C: usize = 32;
/// Standard deviation of the per-pixel noise.
const NOISE: f32 = 0.06;
/// Minimum luminance difference between object and background.
const MIN_CONTRAST: f32 = 0.25;

/// `n` Shapes-10 images (`[3, 32, 32]`, normalised per channel with [`SHAPES10_MEAN`] and
/// [`SHAPES10_STD`]), sample `i` of class `i % 10` ([`SHAPES10_CLASSES`]).
pub fn shapes10(n: usize, seed: u64) -> Result<Dataset> {
    generate(n, seed, true)
}

/// Like [`shapes10`] but with raw pixel values in `[0, 1]` (for viewing or exporting).
pub fn shapes10_raw(n: usize, seed: u64) -> Result<Dataset> {
    generate(n, seed, false)
}

fn generate(n: usize, seed: u64, normalise: bool) -> Result<Dataset> {
    if n == 0 {
        return Err(DataError::InvalidArgument(
            "shapes10 needs at least one sample".into(),
        ));
    }
    let per = 3 * C * C;
    let mut features = Vec::with_capacity(n * per);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % SHAPES10_CLASSES.len();
        let mut rng = stream(seed, i as u64);
        let image = render(class, &mut rng);
        if normalise {
            features.extend(image.iter().enumerate().map(|(j, v)| {
                let c = j / (C * C);
                (v - SHAPES10_MEAN[c]) / SHAPES10_STD[c]
            }));
        } else {
            features.extend_from_slice(&image);
        }
        labels.push(class as i64);
    }
    Dataset::new(features, labels, SHAPES10_SHAPE, SHAPES10_CLASSES.len()).map_err(|source| {
        DataError::Dataset {
            path: Default::default(),
            source,
        }
    })
}

/// An RGB colour.
type Rgb = [f32; 3];

fn luminance(c: Rgb) -> f32 {
    0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
}

fn random_colour(rng: &mut StdRng) -> Rgb {
    [
        rng.random::<f32>(),
        rng.random::<f32>(),
        rng.random::<f32>(),
    ]
}

/// A colour whose luminance differs from `other`'s by at least [`MIN_CONTRAST`].
fn contrasting_colour(rng: &mut StdRng, other: Rgb) -> Rgb {
    loop {
        let c = random_colour(rng);
        if (luminance(c) - luminance(other)).abs() >= MIN_CONTRAST {
            return c;
        }
    }
}

/// A planar image, channel-major (`[3][32][32]`).
struct Canvas {
    px: Vec<f32>,
}

impl Canvas {
    /// A background of colour `base` plus a linear gradient of amplitude `amp` per channel
    /// along direction `angle`.
    fn background(base: Rgb, amp: Rgb, angle: f32) -> Self {
        let mut px = vec![0.0; 3 * C * C];
        let (ux, uy) = (angle.cos(), angle.sin());
        for y in 0..C {
            for x in 0..C {
                let t = ((x as f32 + 0.5) / C as f32 - 0.5) * ux
                    + ((y as f32 + 0.5) / C as f32 - 0.5) * uy;
                for c in 0..3 {
                    px[c * C * C + y * C + x] = base[c] + amp[c] * t;
                }
            }
        }
        Self { px }
    }

    /// Paints `colour` where `inside(x, y)` holds (coordinates of the pixel grid, pixel
    /// centres at `k + 0.5`), blending by the covered fraction of 2x2 sub-samples, within
    /// the box `[x0, x1) x [y0, y1)`.
    fn paint(&mut self, colour: Rgb, bbox: [f32; 4], inside: impl Fn(f32, f32) -> bool) {
        let clamp = |v: f32| (v.max(0.0) as usize).min(C);
        let (x0, x1) = (clamp(bbox[0].floor()), clamp(bbox[1].ceil() + 1.0));
        let (y0, y1) = (clamp(bbox[2].floor()), clamp(bbox[3].ceil() + 1.0));
        for y in y0..y1 {
            for x in x0..x1 {
                let mut cover = 0.0;
                for (sx, sy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                    if inside(x as f32 + sx, y as f32 + sy) {
                        cover += 0.25;
                    }
                }
                if cover > 0.0 {
                    for c in 0..3 {
                        let p = &mut self.px[c * C * C + y * C + x];
                        *p += (colour[c] - *p) * cover;
                    }
                }
            }
        }
    }
}

/// Draws one image of `class`.
fn render(class: usize, rng: &mut StdRng) -> Vec<f32> {
    let bg = random_colour(rng);
    let amp = [
        uniform(rng, -0.2, 0.2),
        uniform(rng, -0.2, 0.2),
        uniform(rng, -0.2, 0.2),
    ];
    let mut canvas = Canvas::background(bg, amp, uniform(rng, 0.0, 2.0 * PI));
    let fg = contrasting_colour(rng, bg);

    // Object size (half extent in pixels), centre and rotation.
    let s = uniform(rng, 6.5, 11.5);
    let (cx, cy) = (uniform(rng, s, C as f32 - s), uniform(rng, s, C as f32 - s));
    let angle = uniform(rng, -0.3, 0.3);
    let (sin, cos) = angle.sin_cos();
    // Object coordinates (rotated, relative to the centre) of a grid point.
    let local = move |x: f32, y: f32| {
        let (dx, dy) = (x - cx, y - cy);
        (cos * dx + sin * dy, -sin * dx + cos * dy)
    };
    let r = s * 1.45; // bounding radius of every object
    let bbox = [cx - r, cx + r, cy - r, cy + r];
    match class {
        0 => canvas.paint(fg, bbox, |x, y| {
            let (u, v) = local(x, y);
            u * u + v * v <= s * s
        }),
        1 => {
            let inner = s * uniform(rng, 0.45, 0.6);
            canvas.paint(fg, bbox, |x, y| {
                let (u, v) = local(x, y);
                let d = u * u + v * v;
                d <= s * s && d >= inner * inner
            })
        }
        2 => {
            let a = s * 0.85;
            canvas.paint(fg, bbox, |x, y| {
                let (u, v) = local(x, y);
                u.abs() <= a && v.abs() <= a
            })
        }
        3 => {
            let a = s * 0.85;
            let hole = a * uniform(rng, 0.45, 0.6);
            canvas.paint(fg, bbox, |x, y| {
                let (u, v) = local(x, y);
                let m = u.abs().max(v.abs());
                m <= a && m >= hole
            })
        }
        4 => {
            let w = s * uniform(rng, 0.25, 0.35);
            canvas.paint(fg, bbox, |x, y| {
                let (u, v) = local(x, y);
                (u.abs() <= w && v.abs() <= s) || (v.abs() <= w && u.abs() <= s)
            })
        }
        5 => {
            let flip = if rng.random::<bool>() { 1.0 } else { -1.0 };
            canvas.paint(fg, bbox, |x, y| {
                let (u, v) = local(x, y);
                let v = v * flip;
                // Apex at (0, -s), base from (-s, s) to (s, s).
                v <= s && v >= -s && u.abs() <= (v + s) / 2.0
            })
        }
        6 | 7 => {
            let a = s * 0.9;
            let period = uniform(rng, 3.5, 6.0);
            let phase = uniform(rng, 0.0, period);
            let horizontal = class == 6;
            canvas.paint(fg, bbox, |x, y| {
                let (u, v) = local(x, y);
                let t = if horizontal { v } else { u };
                u.abs() <= a && v.abs() <= a && ((t + phase) / period).rem_euclid(1.0) < 0.5
            })
        }
        8 => {
            let a = s * 0.9;
            let cell = uniform(rng, 2.5, 4.5);
            canvas.paint(fg, bbox, |x, y| {
                let (u, v) = local(x, y);
                let parity = ((u / cell).floor() + (v / cell).floor()).rem_euclid(2.0);
                u.abs() <= a && v.abs() <= a && parity < 0.5
            })
        }
        _ => {
            let k = rng.random_range(3..=5);
            for _ in 0..k {
                let br = uniform(rng, 1.6, 2.6);
                let (bx, by) = (cx + uniform(rng, -s, s), cy + uniform(rng, -s, s));
                canvas.paint(fg, [bx - br, bx + br, by - br, by + br], |x, y| {
                    (x - bx).powi(2) + (y - by).powi(2) <= br * br
                });
            }
        }
    }

    // Clutter: up to two thin line segments of random colours anywhere.
    for _ in 0..rng.random_range(0..=2) {
        let colour = random_colour(rng);
        let (x0, y0) = (uniform(rng, 0.0, C as f32), uniform(rng, 0.0, C as f32));
        let (len, dir) = (uniform(rng, 4.0, 8.0), uniform(rng, 0.0, 2.0 * PI));
        let (x1, y1) = (x0 + len * dir.cos(), y0 + len * dir.sin());
        let bbox = [x0.min(x1), x0.max(x1), y0.min(y1), y0.max(y1)];
        canvas.paint(colour, bbox, |x, y| {
            segment_distance(x, y, [x0, y0, x1, y1]) <= 0.5
        });
    }

    for pair in canvas.px.chunks_mut(2) {
        for (p, z) in pair.iter_mut().zip(normal_pair(rng)) {
            *p = (*p + NOISE * z).clamp(0.0, 1.0);
        }
    }
    canvas.px
}

/// Distance from a point to the segment `[x0, y0] - [x1, y1]`.
fn segment_distance(x: f32, y: f32, seg: [f32; 4]) -> f32 {
    let [x0, y0, x1, y1] = seg;
    let (dx, dy) = (x1 - x0, y1 - y0);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((x - x0) * dx + (y - y0) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    ((x - x0 - t * dx).powi(2) + (y - y0 - t * dy).powi(2)).sqrt()
}
