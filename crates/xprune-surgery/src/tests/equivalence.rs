//! Property tests on flex: random seeded plans on every architecture; the pruned output equals
//! the masked output (1e-5 relative), and the pruned graph's parameter and MAC counts equal
//! hand-written formulas of the kept channel counts.

use super::nets::{concat_net, depthwise_net, flat_net, grouped_net, misaligned_net};
use super::util::{check_random_plans, kept, randomize_batch_norms};
use crate::{ChannelGroups, PrunePlan, count};
use burn::tensor::Device;
use xprune_graph::{FeatureShape, Graph};
use xprune_models::{
    ResNetCifarDepth, ResNetStem, VggDepth, lenet5, mlp, resnet_cifar, resnet18, vgg,
};

const SEEDS: [u64; 4] = [1, 2, 3, 4];

/// Checks random plans on `graph` and compares the counts of every pruned graph with
/// `formula(groups, plan) = (params, macs)`.
fn check(graph: &Graph, formula: impl Fn(&ChannelGroups, &PrunePlan) -> (u64, u64)) {
    let device = graph.device();
    let groups = ChannelGroups::new(graph);
    // The formula describes the unpruned graph too.
    let full = count(graph);
    assert_eq!(
        (full.params, full.macs),
        formula(&groups, &PrunePlan::new())
    );
    for (plan, pruned) in check_random_plans(graph, &SEEDS, &device) {
        let c = count(&pruned);
        assert_eq!((c.params, c.macs), formula(&groups, &plan), "plan {plan:?}");
    }
}

#[test]
fn mlp_random_plans() {
    let g = mlp(20, &[16, 12], 5, &Device::flex(), 1).unwrap();
    check(&g, |groups, plan| {
        let (h1, h2) = (kept(groups, plan, "fc1"), kept(groups, plan, "fc2"));
        (
            20 * h1 + h1 + h1 * h2 + h2 + h2 * 5 + 5,
            20 * h1 + h1 * h2 + h2 * 5,
        )
    });
}

#[test]
fn lenet_random_plans() {
    let g = lenet5(FeatureShape::spatial(1, 28, 28), 10, &Device::flex(), 2).unwrap();
    check(&g, |groups, plan| {
        let k = |n| kept(groups, plan, n);
        let (c1, c2, f1, f2) = (k("conv1"), k("conv2"), k("fc1"), k("fc2"));
        (
            25 * c1 + c1 + 25 * c1 * c2 + c2 + 25 * c2 * f1 + f1 + f1 * f2 + f2 + f2 * 10 + 10,
            28 * 28 * 25 * c1 + 10 * 10 * 25 * c1 * c2 + 25 * c2 * f1 + f1 * f2 + f2 * 10,
        )
    });
}

/// VGG counts: 3x3 convs with bias and batch norm, 2x2 pools, global pooling, one linear.
fn vgg_formula(cfg: &[usize], classes: u64) -> impl Fn(&ChannelGroups, &PrunePlan) -> (u64, u64) {
    move |groups, plan| {
        let (mut params, mut macs) = (0u64, 0u64);
        let (mut i, mut hw, mut prev) = (0usize, 32u64, 3u64);
        for &c in cfg {
            if c == 0 {
                hw /= 2;
                i += 1;
            } else {
                let k = kept(groups, plan, &format!("features.{i}"));
                params += 9 * prev * k + k + 2 * k;
                macs += 9 * prev * k * hw * hw;
                prev = k;
                i += 3;
            }
        }
        (params + prev * classes + classes, macs + prev * classes)
    }
}

const VGG11: [usize; 13] = [64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0];

#[test]
fn vgg11_bn_random_plans() {
    let device = Device::flex();
    let g = vgg(
        VggDepth::Vgg11,
        true,
        FeatureShape::spatial(3, 32, 32),
        10,
        0.125,
        &device,
        3,
    )
    .unwrap();
    let g = randomize_batch_norms(&g, 30);
    check(&g, vgg_formula(&VGG11, 10));
}

/// ResNet counts: 3x3 stem, basic blocks without biases, 1x1 projections where the width or
/// stride changes (every stage but the first), global pooling and one linear layer.
fn resnet_formula(
    stages: usize,
    blocks: usize,
    hw0: u64,
    classes: u64,
) -> impl Fn(&ChannelGroups, &PrunePlan) -> (u64, u64) {
    move |groups, plan| {
        let k = |n: &str| kept(groups, plan, n);
        let stem = k("conv1");
        let mut params = 27 * stem + 2 * stem;
        let mut macs = hw0 * hw0 * 27 * stem;
        let mut prev = stem;
        for s in 1..=stages {
            let width = if s == 1 {
                stem
            } else {
                k(&format!("layer{s}.0.conv2"))
            };
            let hw = hw0 >> (s - 1);
            for b in 0..blocks {
                let input = if b == 0 { prev } else { width };
                let m = k(&format!("layer{s}.{b}.conv1"));
                params += 9 * input * m + 2 * m + 9 * m * width + 2 * width;
                macs += hw * hw * (9 * input * m + 9 * m * width);
                if b == 0 && s > 1 {
                    params += input * width + 2 * width;
                    macs += hw * hw * input * width;
                }
            }
            prev = width;
        }
        (params + prev * classes + classes, macs + prev * classes)
    }
}

#[test]
fn resnet20_random_plans() {
    let device = Device::flex();
    let g = resnet_cifar(
        ResNetCifarDepth::ResNet20,
        FeatureShape::spatial(3, 32, 32),
        10,
        0.5,
        &device,
        4,
    )
    .unwrap();
    let g = randomize_batch_norms(&g, 40);
    check(&g, resnet_formula(3, 3, 32, 10));
}

#[test]
fn resnet18_random_plans() {
    let device = Device::flex();
    let g = resnet18(
        ResNetStem::Cifar,
        FeatureShape::spatial(3, 32, 32),
        10,
        0.125,
        &device,
        5,
    )
    .unwrap();
    let g = randomize_batch_norms(&g, 50);
    check(&g, resnet_formula(4, 2, 32, 10));
}

#[test]
fn resnet18_imagenet_stem_random_plans() {
    // 7x7 stride-2 stem and a padded 3x3 max pool: 64x64 -> 32x32 -> 16x16 into the stages.
    let device = Device::flex();
    let g = resnet18(
        ResNetStem::ImageNet,
        FeatureShape::spatial(3, 64, 64),
        10,
        0.0625,
        &device,
        6,
    )
    .unwrap();
    let g = randomize_batch_norms(&g, 60);
    check_random_plans(&g, &SEEDS, &device);
}

#[test]
fn concat_net_random_plans() {
    let g = randomize_batch_norms(&concat_net(&Device::flex(), 7), 70);
    check(&g, |groups, plan| {
        let k = |n| kept(groups, plan, n);
        let (a, b, d, f1) = (k("a"), k("b"), k("d"), k("fc1"));
        (
            2 * (27 * a + a)
                + 2 * a
                + 2 * (3 * b + b)
                + 9 * (a + b) * d
                + d
                + 2 * d
                + 16 * (a + b + d) * f1
                + f1
                + 3 * f1
                + 3,
            64 * (2 * 27 * a + 2 * 3 * b + 9 * (a + b) * d) + 16 * (a + b + d) * f1 + 3 * f1,
        )
    });
}

#[test]
fn depthwise_net_random_plans() {
    let g = randomize_batch_norms(&depthwise_net(&Device::flex(), 8), 80);
    check(&g, |groups, plan| {
        let k = |n| kept(groups, plan, n);
        let (s, p1, p2) = (k("stem"), k("pw1"), k("pw2"));
        (
            27 * s
                + s
                + 2 * s
                + 9 * s
                + s
                + 2 * s
                + s * p1
                + p1
                + 2 * p1
                + 9 * p1
                + p1
                + 2 * p1
                + p1 * p2
                + 2 * p2
                + 9 * p2
                + 2 * p2
                + 5 * p2
                + 5,
            64 * 27 * s
                + 64 * 9 * s
                + 64 * s * p1
                + 16 * 9 * p1
                + 16 * p1 * p2
                + 16 * 9 * p2
                + 5 * p2,
        )
    });
}

#[test]
fn grouped_net_random_plans() {
    let g = grouped_net(&Device::flex(), 9);
    check(&g, |groups, plan| {
        let c2 = kept(groups, plan, "c2");
        (
            (4 * 9 * 8 + 8) + (12 * 2 * 9 + 12) + 12 * c2 + c2 + 2 * c2 + 2,
            36 * 8 * 36 + 36 * 12 * 18 + 36 * 12 * c2 + 2 * c2,
        )
    });
}

#[test]
fn misaligned_net_random_plans() {
    let g = misaligned_net(&Device::flex(), 10);
    check(&g, |groups, plan| {
        // a (channels 0, 1 of the group), b (2, 3) and d (all four) are one group.
        let removed: Vec<usize> = plan
            .entries()
            .iter()
            .filter(|p| p.group == "a".into())
            .flat_map(|p| p.remove.clone())
            .collect();
        let part =
            |lo: usize| (2 - removed.iter().filter(|&&k| k >= lo && k < lo + 2).count()) as u64;
        let (a, b) = (part(0), part(2));
        let s = a + b;
        let e = kept(groups, plan, "e");
        (
            4 * a + 4 * b + 4 * s + 9 * s * e + e + 2 * e + 2,
            75 * a + 75 * b + 75 * s + 81 * s * e + 2 * e,
        )
    });
}

#[test]
fn flat_net_random_plans() {
    let g = randomize_batch_norms(&flat_net(&Device::flex(), 11), 110);
    check(&g, |groups, plan| {
        let (c, f1) = (kept(groups, plan, "conv"), kept(groups, plan, "fc1"));
        (
            18 * c + c + 2 * 9 * c + 9 * c * f1 + f1 + 3 * f1 + 3,
            36 * 18 * c + 9 * c * f1 + 3 * f1,
        )
    });
}

/// Every family network (inverted residuals with squeeze-and-excitation, channel split and
/// shuffle, grouped convolutions, channels-last blocks with layer norm and layer scale, and
/// every remaining kind): random plans give pruned == masked, and the structural count after
/// the plan equals the pruned graph's count.
#[test]
fn family_networks_random_plans() {
    let d = Device::flex();
    let s = FeatureShape::spatial(3, 32, 32);
    let nets = [
        (
            "mobilenet_v3_like",
            xprune_models::mobilenet_v3_like(s, 10, 0.5, &d, 1).unwrap(),
        ),
        (
            "efficientnet_like",
            xprune_models::efficientnet_like(s, 10, 0.5, &d, 2).unwrap(),
        ),
        (
            "shufflenet_like",
            xprune_models::shufflenet_like(s, 10, 0.5, &d, 3).unwrap(),
        ),
        (
            "regnet_like",
            xprune_models::regnet_like(s, 10, 1.0, &d, 4).unwrap(),
        ),
        (
            "convnext_like",
            xprune_models::convnext_like(s, 10, 1.0, &d, 5).unwrap(),
        ),
        (
            "misc_net",
            xprune_models::misc_net(s, 10, 1.0, &d, 6).unwrap(),
        ),
    ];
    for (name, g) in nets {
        let g = randomize_batch_norms(&g, 7);
        let groups = ChannelGroups::new(&g);
        assert!(
            groups.prunable().count() > 0,
            "{name}: nothing prunable\n{groups}"
        );
        for (plan, pruned) in check_random_plans(&g, &[1, 2, 3, 4, 5, 6], &d) {
            let resolved = plan.resolve(&groups).unwrap();
            let (estimate, real) = (crate::count_after(&g, &groups, &resolved), count(&pruned));
            assert_eq!(
                (estimate.params, estimate.buffers, estimate.macs),
                (real.params, real.buffers, real.macs),
                "{name}: plan {plan:?}"
            );
        }
    }
}

/// A vision transformer: each block's heads are one group (a head's query, key and value
/// columns with its rows of the output projection: one channel of the group per head), each
/// block's MLP neurons another, and the embedding width, which runs through every residual
/// add and layer norm, is pinned. Random plans give pruned == masked, and the counts equal the
/// formula of the kept heads and neurons.
#[test]
fn vit_random_plans() {
    let d = Device::flex();
    let config = xprune_models::VitConfig {
        patch: 4,
        dim: 16,
        depth: 2,
        heads: 4,
        mlp_dim: 24,
    };
    let g = xprune_models::vit(FeatureShape::spatial(3, 16, 16), 5, config, &d, 3).unwrap();
    let groups = ChannelGroups::new(&g);
    let block = |i: usize| format!("encoder.layers.encoder_layer_{i}");
    for i in 0..2 {
        let heads = groups
            .find(&format!("{}.self_attention.q", block(i)))
            .unwrap_or_else(|| panic!("no head group:\n{groups}"));
        assert_eq!(heads.channels(), 4, "one channel per head:\n{groups}");
        assert!(heads.is_prunable(), "heads are prunable:\n{groups}");
        let mlp = groups.find(&format!("{}.mlp.0", block(i))).unwrap();
        assert_eq!(mlp.channels(), 24);
        assert!(mlp.is_prunable());
    }
    let width = groups.find("conv_proj").unwrap();
    assert!(
        !width.is_prunable(),
        "the embedding width is pinned:\n{groups}"
    );
    let (c, hd, l, classes) = (16u64, 4u64, 17u64, 5u64);
    check(&g, |groups, plan| {
        let (mut params, mut macs) = (0, 0);
        // patch embedding, class token, position embedding, final norm, head
        params += c * 3 * 16 + c + c + l * c + 2 * c + c * classes + classes;
        macs += 16 * c * 3 * 16 + c * classes;
        for i in 0..2 {
            let h = kept(groups, plan, &format!("{}.self_attention.q", block(i))) * hd;
            let m = kept(groups, plan, &format!("{}.mlp.0", block(i)));
            params += 2 * c + 3 * (c * h + h) + h * c + c + 2 * c + c * m + m + m * c + c;
            macs += l * 3 * c * h + 2 * l * l * h + l * h * c + 2 * l * c * m;
        }
        (params, macs)
    });
}
