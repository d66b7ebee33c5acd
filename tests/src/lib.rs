//! Helpers shared by the workspace integration tests (`tests/integration/*.rs`): the
//! devices of every compiled backend, the wgpu probe (which fails or visibly skips), and
//! relative comparisons of outputs.
#![warn(missing_docs)]

use xprune::burn::tensor::Device;

pub mod fuzz;

pub use xprune_dev_deps::wgpu::{REQUIRE_VAR as REQUIRE_WGPU_VAR, SKIP_VAR as SKIP_WGPU_VAR};

/// The wgpu device, or `None` when the calling test must skip it: a missing device fails
/// the test unless `XPRUNE_SKIP_WGPU=1` is set, and a skip prints a line to standard error
/// (see [`xprune_dev_deps::wgpu`]).
pub fn wgpu_device() -> Option<Device> {
    xprune_dev_deps::wgpu::wgpu_device()
}

/// The devices of every backend of this build, by name: `flex`, `ndarray` and, when it
/// works (see [`wgpu_device`]), `wgpu`.
pub fn devices() -> Vec<(&'static str, Device)> {
    #[allow(deprecated)]
    let mut out = vec![("flex", Device::flex()), ("ndarray", Device::ndarray())];
    if let Some(d) = wgpu_device() {
        out.push(("wgpu", d));
    }
    out
}

/// The largest absolute value of a slice (0 for an empty one): the scale of relative
/// comparisons.
pub fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, x| m.max(x.abs()))
}

/// The largest relative difference `|a - b| / max(|b|, floor)` over two equally long
/// slices; `floor` keeps values near zero from dominating.
///
/// # Panics
/// If the lengths differ.
pub fn max_relative_diff(a: &[f32], b: &[f32], floor: f32) -> f32 {
    assert_eq!(a.len(), b.len(), "compared slices differ in length");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(floor))
        .fold(0.0, f32::max)
}

/// Asserts that `got` matches `want` within `rel` relative difference (relative to
/// `max(|want|, floor)`), naming `what` and the worst element on failure.
pub fn assert_close(got: &[f32], want: &[f32], rel: f32, floor: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let (worst, diff) = got
        .iter()
        .zip(want)
        .map(|(x, y)| (x - y).abs() / y.abs().max(floor))
        .enumerate()
        .fold(
            (0, 0.0f32),
            |acc, (i, d)| if d > acc.1 { (i, d) } else { acc },
        );
    assert!(
        diff <= rel,
        "{what}: relative difference {diff:e} > {rel:e} at element {worst} (got {}, want {})",
        got[worst],
        want[worst]
    );
}

/// `max |a - b| / max(1, max |b|)`: the relative difference of two outputs as the ONNX
/// fixtures measure it.
///
/// # Panics
/// If the lengths differ.
pub fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "compared slices differ in length");
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    diff / max_abs(b).max(1.0)
}
