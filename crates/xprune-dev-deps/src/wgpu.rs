//! The wgpu device of the tests, and what happens without one: a wgpu test never skips
//! silently.
//!
//! Without a working wgpu device (no GPU and no software Vulkan driver) a wgpu test
//! **fails**, with a message saying how to install the driver or how to opt out, unless
//! [`SKIP_VAR`]` = 1` is set: then it is skipped and says so on the terminal, one line per
//! skipped test written straight to the process's standard error (past the test harness's
//! output capture, so it shows beside the test summary). With [`REQUIRE_VAR`]` = 1` (set by
//! CI) a missing device always fails, whatever [`SKIP_VAR`] says.

use burn::tensor::{Device, DeviceKind, Tensor};
use std::io::Write;
use std::sync::OnceLock;

/// Environment variable that makes a missing wgpu device a failure even when
/// [`SKIP_VAR`] is set (CI sets it to `1`).
pub const REQUIRE_VAR: &str = "XPRUNE_REQUIRE_WGPU";

/// Environment variable that skips the wgpu tests, visibly, when no wgpu device works.
pub const SKIP_VAR: &str = "XPRUNE_SKIP_WGPU";

/// How to get a software Vulkan device on Debian or Ubuntu.
pub const INSTALL_HINT: &str = "apt-get install -y mesa-vulkan-drivers libvulkan1";

/// What a wgpu test does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WgpuPolicy {
    /// The device works: run.
    Run,
    /// No device, and skipping was asked for: skip, printing the message.
    Skip(String),
    /// No device: fail with the message.
    Fail(String),
}

/// Whether an environment variable is set to `1`.
fn flag(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v.trim() == "1")
}

/// The policy for the outcome of probing the device (`Err` says why it does not work) with
/// [`REQUIRE_VAR`] and [`SKIP_VAR`] set (`true`) or not.
pub fn policy(probe: &Result<(), String>, require: bool, skip: bool) -> WgpuPolicy {
    let why = match probe {
        Ok(()) => return WgpuPolicy::Run,
        Err(why) => why,
    };
    if require {
        return WgpuPolicy::Fail(format!(
            "{REQUIRE_VAR}=1 but the wgpu device does not work: {why}. Install a Vulkan \
             driver (`{INSTALL_HINT}`) and set XDG_RUNTIME_DIR"
        ));
    }
    if skip {
        return WgpuPolicy::Skip(format!(
            "no working wgpu device ({why}); {SKIP_VAR}=1 skips the wgpu tests"
        ));
    }
    WgpuPolicy::Fail(format!(
        "no working wgpu device ({why}). Install a Vulkan driver (`{INSTALL_HINT}`; a software \
         one is enough) and set XDG_RUNTIME_DIR, or set {SKIP_VAR}=1 to skip the wgpu tests \
         (each skipped test then prints a line)"
    ))
}

/// Probes the wgpu device once per process by computing a small sum on it (inside
/// `catch_unwind`, since wgpu panics when no adapter is found).
fn probe() -> &'static Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE.get_or_init(|| {
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
    })
}

/// The wgpu device (`Device::wgpu(DeviceKind::DefaultDevice)`, the software Vulkan device on
/// a machine without a GPU), or `None` when the calling test must skip it.
///
/// Without a working device this panics (failing the test) with a message saying how to
/// install a driver or opt out, unless [`SKIP_VAR`]` = 1` is set; then it writes
/// `SKIPPED wgpu: <test>: <why>` to the process's standard error (visible with the test
/// summary, not captured) and returns `None`.
pub fn wgpu_device() -> Option<Device> {
    match policy(probe(), flag(REQUIRE_VAR), flag(SKIP_VAR)) {
        WgpuPolicy::Run => Some(Device::wgpu(DeviceKind::DefaultDevice)),
        WgpuPolicy::Fail(message) => panic!("{message}"),
        WgpuPolicy::Skip(message) => {
            let thread = std::thread::current();
            let test = thread.name().unwrap_or("a test");
            // Straight to the process's stderr: the harness captures `eprintln!`.
            let _ = writeln!(std::io::stderr(), "SKIPPED wgpu: {test}: {message}");
            None
        }
    }
}
