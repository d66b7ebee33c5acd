use super::*;
use xprune_graph::FeatureShape;
use xprune_graph::burn::tensor::{Device, Tensor};

fn cifar() -> FeatureShape {
    FeatureShape::spatial(3, 32, 32)
}

/// Trainable parameters as PyTorch counts them (Burn's `num_params` also counts the batch-norm
/// running statistics): each kind's own count of its trainable parameters.
fn trainable(g: &xprune_graph::Graph) -> usize {
    (0..g.len())
        .map(|id| g.node_counts(id).unwrap().params as usize)
        .sum()
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

/// Every family network at a small width on 32x32 inputs.
pub(crate) fn families(d: &Device) -> Vec<(&'static str, xprune_graph::Graph)> {
    let s = cifar();
    vec![
        (
            "mobilenet_v3_like",
            mobilenet_v3_like(s, 10, 0.5, d, 1).unwrap(),
        ),
        (
            "efficientnet_like",
            efficientnet_like(s, 10, 0.5, d, 2).unwrap(),
        ),
        (
            "shufflenet_like",
            shufflenet_like(s, 10, 0.5, d, 3).unwrap(),
        ),
        ("regnet_like", regnet_like(s, 10, 1.0, d, 4).unwrap()),
        ("convnext_like", convnext_like(s, 10, 1.0, d, 5).unwrap()),
        ("misc_net", misc_net(s, 10, 1.0, d, 6).unwrap()),
        (
            "vit",
            vit(
                s,
                10,
                VitConfig {
                    dim: 16,
                    depth: 1,
                    heads: 2,
                    mlp_dim: 32,
                    ..VitConfig::tiny()
                },
                d,
                7,
            )
            .unwrap(),
        ),
    ]
}

#[test]
fn families_run_and_use_every_kind() {
    let d = Device::flex();
    let x = Tensor::<4>::random(
        [2, 3, 32, 32],
        xprune_graph::burn::tensor::Distribution::Normal(0.0, 1.0),
        &d,
    );
    let mut used = std::collections::BTreeSet::new();
    for (name, g) in families(&d) {
        let out = g.forward(x.clone()).unwrap();
        assert_eq!(out.dims(), vec![2, 10], "{name}");
        assert!(out.to_vec().iter().all(|v| v.is_finite()), "{name}");
        used.extend(g.nodes().iter().map(|n| n.op.kind_name()));
    }
    // The classic kinds are in the classic networks (VGG, ResNet, LeNet).
    let classic = ["dropout", "identity", "max_pool2d", "avg_pool2d"];
    for kind in xprune_graph::KIND_NAMES {
        assert!(
            classic.contains(kind) || used.contains(kind),
            "no family network uses `{kind}`"
        );
    }
}

/// For every node of every network: the kind's counts equal the numbers of values of its
/// tensors (trainable ones as parameters, statistics as buffers); the structure survives
/// JSON and rebuilding; saving and loading keeps the outputs.
#[test]
fn kind_counts_specs_and_storage_agree_for_every_node() {
    let d = Device::flex();
    let x = Tensor::<4>::random(
        [2, 3, 32, 32],
        xprune_graph::burn::tensor::Distribution::Normal(0.0, 1.0),
        &d,
    );
    let dir = std::env::temp_dir().join(format!("xprune-models-families-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, g) in families(&d) {
        for (id, n) in g.nodes().iter().enumerate() {
            let c = g.node_counts(id).unwrap();
            let params = g.layer(id).unwrap().params();
            let trainable: usize = params
                .iter()
                .filter(|p| p.trainable)
                .map(|p| p.numel())
                .sum();
            let buffers: usize = params
                .iter()
                .filter(|p| !p.trainable)
                .map(|p| p.numel())
                .sum();
            assert_eq!(
                (c.params, c.buffers),
                (trainable as u64, buffers as u64),
                "{name} node `{}` ({})",
                n.name,
                n.op.kind_name()
            );
        }
        let spec = g.spec();
        let back = xprune_graph::GraphSpec::from_json(&spec.to_json()).unwrap();
        assert_eq!(back, spec, "{name}");
        let rebuilt = xprune_graph::Graph::from_spec(&back, &d, 9).unwrap();
        assert_eq!(rebuilt.spec(), spec, "{name}");
        let path = dir.join(format!("{name}.safetensors"));
        g.save(&path).unwrap();
        let loaded = xprune_graph::Graph::load(&path, &d).unwrap();
        assert_eq!(
            loaded.forward(x.clone()).unwrap().to_vec(),
            g.forward(x.clone()).unwrap().to_vec(),
            "{name}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn vit_b16_has_torchvisions_parameters_and_macs() {
    let d = Device::flex();
    let g = vit(
        FeatureShape::spatial(3, 224, 224),
        1000,
        VitConfig::b16(),
        &d,
        0,
    )
    .unwrap();
    // torchvision's vit_b_16: sum(p.numel() for p in model.parameters())
    assert_eq!(trainable(&g), 86_567_656);
    // 17.56 GFLOPS in torchvision's model card (multiply-accumulates): the projections,
    // the two attention products and the MLPs of 12 blocks of 197 tokens, patch embedding
    // and head.
    let (l, c, m) = (197u64, 768u64, 3072u64);
    let block = l * 4 * c * c + 2 * l * l * c + 2 * l * c * m;
    let macs = 196 * c * 3 * 16 * 16 + 12 * block + c * 1000;
    assert_eq!(g.macs(), macs);
    assert!((g.macs() as f64 / 1e9 - 17.56).abs() < 0.01, "{}", g.macs());
    assert_eq!(g.output_shape(), FeatureShape::flat(1000));
}

#[test]
fn vit_rejects_sizes_that_do_not_fit() {
    let d = Device::flex();
    let s = FeatureShape::spatial(3, 30, 30);
    assert!(
        vit(s, 10, VitConfig::tiny(), &d, 0).is_err(),
        "30 is not a multiple of 4"
    );
    let odd = VitConfig {
        heads: 3,
        ..VitConfig::tiny()
    };
    let err = vit(cifar(), 10, odd, &d, 0).unwrap_err().to_string();
    assert!(err.contains("heads"), "{err}");
    let flat = vit(FeatureShape::flat(12), 10, VitConfig::tiny(), &d, 0);
    assert!(flat.is_err());
}
