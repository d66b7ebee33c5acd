//! Counts: agreement with Burn's parameter count and the graph's MACs, literature numbers for
//! the full-size CIFAR models, other input sizes.

use crate::{count, count_for_input};
use burn::module::Module;
use burn::tensor::Device;
use xprune_graph::FeatureShape;
use xprune_models::{ResNetCifarDepth, VggDepth, mlp, resnet_cifar, vgg};

#[test]
fn resnet56_and_vgg16_match_the_literature() {
    let device = Device::flex();
    let cifar = FeatureShape::spatial(3, 32, 32);
    let r56 = resnet_cifar(ResNetCifarDepth::ResNet56, cifar, 10, 1.0, &device, 1).unwrap();
    let c = count(&r56);
    // He et al.: 0.85 M parameters (853 018) and 125.49 M MACs with parameter-free (option A)
    // shortcuts; the two 1x1 projections with batch norm (option B) add 2 x 131 072 MACs and
    // 512 + 64 + 2048 + 128 parameters.
    assert_eq!(c.macs, 125_485_696 + 2 * 131_072);
    assert_eq!(c.params, 853_018 + 2_752);
    // Burn's num_params also counts the running statistics: 2 per batch-norm channel.
    assert_eq!(c.buffers, 2 * (16 + 18 * 16 + 19 * 32 + 19 * 64));
    assert_eq!((c.params + c.buffers) as usize, r56.num_params());
    assert_eq!(c.macs, r56.macs());

    let v16 = vgg(VggDepth::Vgg16, true, cifar, 10, 1.0, &device, 1).unwrap();
    let c = count(&v16);
    // 313.2 M MACs in the 13 convolutions, plus the 512x10 classifier.
    assert_eq!(c.macs, 313_196_544 + 5_120);
    assert_eq!((c.params + c.buffers) as usize, v16.num_params());
    let conv = c.node("features.0").unwrap();
    assert_eq!(
        (conv.kind, conv.params, conv.macs),
        ("conv2d", 3 * 64 * 9 + 64, 32 * 32 * 64 * 27)
    );
    let bn = c.node("features.1").unwrap();
    assert_eq!(
        (bn.params, bn.buffers),
        (128, 128),
        "batch norm: gamma and beta; mean and var"
    );
    assert_eq!(c.node("features.2").unwrap().macs, 0);
}

#[test]
fn counts_for_another_input_size() {
    let device = Device::flex();
    let r20 = resnet_cifar(
        ResNetCifarDepth::ResNet20,
        FeatureShape::spatial(3, 32, 32),
        10,
        0.5,
        &device,
        1,
    )
    .unwrap();
    let small = count(&r20);
    let large = count_for_input(&r20, FeatureShape::spatial(3, 64, 64)).unwrap();
    assert_eq!(large.params, small.params);
    let fc = 32 * 10;
    assert_eq!(large.macs - fc, 4 * (small.macs - fc));
    assert_eq!(count_for_input(&r20, r20.input_shape()).unwrap(), small);

    let m = mlp(12, &[5], 2, &device, 1).unwrap();
    let err = count_for_input(&m, FeatureShape::flat(13)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "node `fc1`: linear expects 12 input features, its input has 13"
    );
}

#[test]
fn ratios_and_display() {
    let device = Device::flex();
    let a = count(&mlp(10, &[10], 10, &device, 1).unwrap());
    let b = count(&mlp(10, &[5], 10, &device, 1).unwrap());
    assert_eq!(a.macs, 200);
    assert_eq!(b.macs, 100);
    assert_eq!(a.mac_ratio(&b), 2.0);
    assert!((a.param_ratio(&b) - 220.0 / 115.0).abs() < 1e-12);
    assert_eq!(b.to_string(), "115 parameters, 100 MACs per sample");
}
