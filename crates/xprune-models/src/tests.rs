use super::*;
use xprune_graph::FeatureShape;
use xprune_graph::burn::module::Module;
use xprune_graph::burn::tensor::{Device, Tensor};

fn cifar() -> FeatureShape {
    FeatureShape::spatial(3, 32, 32)
}

/// Trainable parameters as PyTorch counts them: Burn's `num_params` also counts the batch-norm
/// running mean and variance, which are statistics.
fn trainable(g: &xprune_graph::Graph) -> usize {
    let stats: usize = g
        .nodes()
        .iter()
        .map(|n| match n.op {
            xprune_graph::OpSpec::BatchNorm(ref b) => 2 * b.features,
            _ => 0,
        })
        .sum();
    g.num_params() - stats
}

#[test]
fn parameter_counts_match_pytorch() {
    let d = Device::flex();
    // Counts of the equivalent PyTorch modules (weights + biases + bn affine).
    let m = mlp(2, &[1000, 1000, 1000], 3, &d, 0).unwrap();
    assert_eq!(
        trainable(&m),
        2 * 1000 + 1000 + 2 * (1000 * 1000 + 1000) + 1000 * 3 + 3
    );
    let l = lenet5(FeatureShape::spatial(1, 28, 28), 10, &d, 0).unwrap();
    assert_eq!(trainable(&l), 61_706);
    // ResNet-20: 269,722 parameters with option A shortcuts (He et al.), plus the two 1x1
    // projection convolutions and their batch norms of option B.
    let r = resnet_cifar(ResNetCifarDepth::ResNet20, cifar(), 10, 1.0, &d, 0).unwrap();
    assert_eq!(trainable(&r), 269_722 + 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64);
    // ResNet-18 CIFAR (kuangliu/pytorch-cifar): 11,173,962 parameters.
    let r18 = resnet18(ResNetStem::Cifar, cifar(), 10, 1.0, &d, 0).unwrap();
    assert_eq!(trainable(&r18), 11_173_962);
    // VGG-16-BN with a single linear CIFAR head: 14,728,266 parameters.
    let v = vgg(VggDepth::Vgg16, true, cifar(), 10, 1.0, &d, 0).unwrap();
    assert_eq!(trainable(&v), 14_728_266);
}

#[test]
fn small_models_run() {
    let d = Device::flex();
    let x = Tensor::<4>::zeros([2, 3, 32, 32], &d);
    for g in [
        vgg(VggDepth::Vgg11, true, cifar(), 10, 0.125, &d, 1).unwrap(),
        vgg(VggDepth::Vgg16, false, cifar(), 10, 0.125, &d, 1).unwrap(),
        resnet_cifar(ResNetCifarDepth::ResNet20, cifar(), 10, 0.5, &d, 1).unwrap(),
        resnet18(ResNetStem::Cifar, cifar(), 10, 0.125, &d, 1).unwrap(),
        resnet18(
            ResNetStem::ImageNet,
            FeatureShape::spatial(3, 64, 64),
            10,
            0.125,
            &d,
            1,
        )
        .unwrap(),
        lenet5(cifar(), 10, &d, 1).unwrap(),
    ] {
        let input = if g.input_shape() == cifar() {
            x.clone()
        } else {
            Tensor::<4>::zeros([2, 3, 64, 64], &d)
        };
        assert_eq!(g.forward(input).unwrap().dims(), vec![2, 10]);
    }
    assert!(lenet5(FeatureShape::spatial(1, 20, 20), 10, &d, 0).is_err());
}
