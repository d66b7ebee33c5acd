//! The masked-versus-pruned property on the other backends: ndarray and wgpu.

use super::nets::{concat_net, depthwise_net};
use super::util::{check_random_plans, randomize_batch_norms};
use burn::tensor::{Device, DeviceKind, Tensor};
use xprune_graph::FeatureShape;
use xprune_models::{ResNetCifarDepth, resnet_cifar};

fn check_on(device: &Device) {
    // One plan per net: every new channel count compiles new kernels on wgpu, which is slow
    // on a software Vulkan device.
    let r20 = resnet_cifar(
        ResNetCifarDepth::ResNet20,
        FeatureShape::spatial(3, 8, 8),
        10,
        0.25,
        device,
        1,
    )
    .unwrap();
    check_random_plans(&randomize_batch_norms(&r20, 2), &[1], device);
    check_random_plans(
        &randomize_batch_norms(&concat_net(device, 3), 4),
        &[2],
        device,
    );
    check_random_plans(
        &randomize_batch_norms(&depthwise_net(device, 5), 6),
        &[3],
        device,
    );
}

#[test]
#[allow(deprecated)]
fn ndarray_pruned_equals_masked() {
    check_on(&Device::ndarray());
}

/// The wgpu device, if an adapter is available; with `XPRUNE_REQUIRE_WGPU=1` a missing
/// adapter fails the test. (Set `XDG_RUNTIME_DIR`, e.g. to `/tmp/xdg`, to quiet the Vulkan
/// loader.)
fn wgpu_device() -> Option<Device> {
    let probe = std::panic::catch_unwind(|| {
        let device = Device::wgpu(DeviceKind::DefaultDevice);
        let t = Tensor::<1>::from_floats([1.0, 2.0], &device);
        let sum: f32 = t.sum().into_scalar();
        (sum == 3.0).then_some(device)
    });
    match probe {
        Ok(Some(device)) => Some(device),
        _ => {
            let required = std::env::var("XPRUNE_REQUIRE_WGPU").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "XPRUNE_REQUIRE_WGPU=1 but no wgpu device could be created"
            );
            eprintln!(
                "SKIPPED: no wgpu device (install mesa-vulkan-drivers libvulkan1 for a software one)"
            );
            None
        }
    }
}

#[test]
fn wgpu_pruned_equals_masked() {
    if let Some(device) = wgpu_device() {
        check_on(&device);
    }
}
