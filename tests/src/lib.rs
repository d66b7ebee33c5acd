//! Helpers shared by the workspace integration tests (`tests/integration/*.rs`): the
//! devices of every compiled backend, a wgpu probe that skips or fails as CI requires, and
//! relative comparisons of outputs.
#![warn(missing_docs)]

use std::sync::OnceLock;
use xprune::burn::tensor::{Device, DeviceKind, Tensor};

/// Environment variable that turns a missing wgpu device into a test failure (CI sets it
/// to `1`).
pub const REQUIRE_WGPU_VAR: &str = "XPRUNE_REQUIRE_WGPU";

/// Whether a missing wgpu device must fail the tests (`XPRUNE_REQUIRE_WGPU=1`).
pub fn wgpu_required() -> bool {
    std::env::var(REQUIRE_WGPU_VAR).is_ok_and(|v| v.trim() == "1")
}

/// The wgpu device (`Device::wgpu(DeviceKind::DefaultDevice)`, the software Vulkan device
/// on a machine without a GPU), or `None` when it cannot run.
///
/// The first call probes the device by computing a small sum on it (inside
/// `catch_unwind`, since wgpu panics when no adapter is found); the outcome is cached.
/// Without a device this prints why and returns `None`, so that the caller skips; with
/// `XPRUNE_REQUIRE_WGPU=1` it panics instead. A software device needs the Mesa Vulkan
/// drivers (`apt-get install mesa-vulkan-drivers libvulkan1`) and a writable
/// `XDG_RUNTIME_DIR`.
pub fn wgpu_device() -> Option<Device> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    let probe = PROBE.get_or_init(|| {
        let run = std::panic::catch_unwind(|| {
            let device = Device::wgpu(DeviceKind::DefaultDevice);
            let t = Tensor::<1>::from_floats([1.0, 2.0, 3.5], &device);
            t.sum().into_scalar::<f32>()
        });
        match run {
            Ok(6.5) => Ok(()),
            Ok(v) => Err(format!("the probe sum 1 + 2 + 3.5 gave {v}")),
            Err(panic) => Err(panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "wgpu panicked".into())),
        }
    });
    match probe {
        Ok(()) => Some(Device::wgpu(DeviceKind::DefaultDevice)),
        Err(why) if wgpu_required() => {
            panic!("{REQUIRE_WGPU_VAR}=1 but the wgpu device does not work: {why}")
        }
        Err(why) => {
            eprintln!(
                "SKIPPING the wgpu part: no working wgpu device ({why}). Install \
                 mesa-vulkan-drivers and libvulkan1 and set XDG_RUNTIME_DIR; set \
                 {REQUIRE_WGPU_VAR}=1 to make this a failure."
            );
            None
        }
    }
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
