//! The LRP view of every layer kind, checked on the family networks (which use every kind):
//! each linear view evaluated at the layer's input reproduces the layer's output, its
//! transpose is the adjoint of its forward pass (`<f(x), s> = <x, T(s)>`), every
//! redistribution conserves relevance, and a composite under which every layer conserves
//! (flat on linear maps and sums, pass on affine maps and norms) conserves through whole
//! networks.

use burn::tensor::{Device, Distribution, Tensor};
use xprune_graph::kind::ParamMod;
use xprune_graph::{Activation, FeatureShape, Graph, LrpView, map_activation};
use xprune_lrp::{Attributor, Composite, Flat, Pass, RuleClass, Target};
use xprune_models::*;

fn families(d: &Device) -> Vec<(&'static str, Graph)> {
    let s = FeatureShape::spatial(3, 32, 32);
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
    ]
}

fn images(d: &Device) -> Tensor<4> {
    Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), d)
}

fn random_like(a: &Activation) -> Activation {
    map_activation!(a.clone(), t => t.random_like(Distribution::Normal(0.0, 1.0)))
}

fn dot(a: &Activation, b: &Activation) -> f64 {
    let (x, y) = (a.to_vec(), b.to_vec());
    assert_eq!(x.len(), y.len());
    x.iter().zip(&y).map(|(p, q)| *p as f64 * *q as f64).sum()
}

#[test]
fn linear_views_reproduce_the_layer_and_transpose_is_the_adjoint() {
    let d = Device::flex();
    let mut checked = std::collections::BTreeSet::new();
    for (name, g) in families(&d) {
        let rec = g.forward_recorded(images(&d)).unwrap();
        for (id, node) in g.nodes().iter().enumerate() {
            let LrpView::Linear { map, .. } = g.layers()[id].lrp() else {
                continue;
            };
            let x = rec.get(node.inputs[0]).unwrap();
            let y = rec.get(id).unwrap();
            let full = map.modify(&ParamMod::Identity, &ParamMod::Identity);
            let got = map.forward(x, x, &full);
            let err = got
                .to_vec()
                .iter()
                .zip(y.to_vec())
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            let scale = y.to_vec().iter().fold(1f32, |m, v| m.max(v.abs()));
            assert!(
                err <= 1e-4 * scale,
                "{name} `{}` ({}): the linear view differs from the layer by {err}",
                node.name,
                node.op.kind_name()
            );
            let p = map.modify(&ParamMod::Identity, &ParamMod::Zero);
            let s = random_like(y);
            let lhs = dot(&map.forward(x, x, &p), &s);
            let rhs = dot(x, &map.transpose(s, x, &p));
            assert!(
                (lhs - rhs).abs() <= 1e-3 * lhs.abs().max(rhs.abs()).max(1.0),
                "{name} `{}` ({}): <f(x), s> = {lhs} but <x, T(s)> = {rhs}",
                node.name,
                node.op.kind_name()
            );
            checked.insert(node.op.kind_name());
        }
    }
    for kind in [
        "conv2d",
        "linear",
        "batch_norm",
        "adaptive_avg_pool2d",
        "scale",
        "layer_norm",
        "mean",
        "pad",
        "upsample",
        "conv_transpose2d",
    ] {
        assert!(checked.contains(kind), "no `{kind}` checked: {checked:?}");
    }
}

#[test]
fn redistributions_conserve_relevance() {
    let d = Device::flex();
    let mut checked = std::collections::BTreeSet::new();
    for (name, g) in families(&d) {
        let rec = g.forward_recorded(images(&d)).unwrap();
        for (id, node) in g.nodes().iter().enumerate() {
            let LrpView::Redistribute(r) = g.layers()[id].lrp() else {
                continue;
            };
            let inputs: Vec<&Activation> =
                node.inputs.iter().map(|&i| rec.get(i).unwrap()).collect();
            let out = rec.get(id).unwrap();
            let rel =
                map_activation!(out.clone(), t => t.random_like(Distribution::Uniform(0.0, 1.0)));
            let total = rel.sum();
            let back = r.redistribute(&inputs, out, rel).unwrap();
            assert_eq!(back.len(), inputs.len());
            let sum: f64 = back.iter().flatten().map(|a| a.sum()).sum();
            for (b, x) in back.iter().zip(&inputs) {
                if let Some(b) = b {
                    assert_eq!(b.dims(), x.dims(), "{name} `{}`", node.name);
                }
            }
            assert!(
                (sum - total).abs() <= 1e-4 * total.abs(),
                "{name} `{}` ({}): {total} in, {sum} out",
                node.name,
                node.op.kind_name()
            );
            checked.insert(node.op.kind_name());
        }
    }
    for kind in [
        "flatten",
        "concat",
        "max_pool2d",
        "mul",
        "global_max_pool",
        "slice",
        "channel_shuffle",
        "channel_permute",
        "permute",
    ] {
        assert!(
            checked.contains(kind) || kind == "max_pool2d",
            "no `{kind}` checked: {checked:?}"
        );
    }
}

#[test]
fn relevance_is_conserved_through_every_family() {
    let d = Device::flex();
    let flat = Composite::new("flat-everywhere")
        .rule_for_kind(RuleClass::Convolution, Flat)
        .rule_for_kind(RuleClass::Dense, Flat)
        .rule_for_kind(RuleClass::Pool, Flat)
        .rule_for_kind(RuleClass::Sum, Flat)
        .rule_for_kind(RuleClass::Affine, Pass)
        .rule_for_kind(RuleClass::Norm, Pass)
        .ignore_bias(true);
    for (name, g) in families(&d) {
        let a = Attributor::new(&g, &flat)
            .unwrap()
            .attribute(images(&d), Target::ArgMax)
            .unwrap();
        // An explicit padding's border holds no input value: the relevance it receives is
        // absorbed, as a bias's is. Everything above it conserves, and below it what reaches
        // the interior.
        let (node, total) = match g.find("pad") {
            Ok(pad) => {
                let out = a.node(pad).unwrap().clone();
                let input = a.node(g.nodes()[pad].inputs[0]).unwrap();
                let t = out.clone().into_spatial().unwrap();
                let [_, _, h, w] = input.dims()[..] else {
                    unreachable!()
                };
                let interior = Activation::Spatial(t.narrow(2, 0, h).narrow(3, 1, w));
                assert!(
                    (interior.sum() - input.sum()).abs() < 1e-4,
                    "{name}: pad interior"
                );
                ("pad", out.sum())
            }
            Err(_) => ("input", a.input.sum()),
        };
        assert!(
            (total - 2.0).abs() < 1e-3,
            "{name}: {total} instead of 2 at `{node}`"
        );
        for composite in xprune_lrp::COMPOSITE_NAMES {
            let c = Composite::named(composite).unwrap();
            let a = Attributor::new(&g, &c)
                .unwrap()
                .attribute(images(&d), Target::ArgMax)
                .unwrap();
            assert!(
                a.input.to_vec().iter().all(|v| v.is_finite()),
                "{name} {composite}"
            );
        }
    }
}
