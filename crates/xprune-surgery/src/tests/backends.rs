//! The masked-versus-pruned property on the other backends: ndarray and wgpu.

use super::nets::{concat_net, depthwise_net};
use super::util::{check_random_plans, randomize_batch_norms};
use burn::tensor::Device;
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

/// The wgpu device; without one the test fails, or skips visibly with `XPRUNE_SKIP_WGPU=1`
/// (see `xprune_dev_deps::wgpu`).
fn wgpu_device() -> Option<Device> {
    xprune_dev_deps::wgpu::wgpu_device()
}

#[test]
fn wgpu_pruned_equals_masked() {
    if let Some(device) = wgpu_device() {
        check_on(&device);
    }
}
