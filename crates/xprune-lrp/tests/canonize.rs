//! The canonizer folds batch norms into the conv or linear layer before them without changing
//! the outputs, keeps node ids and names, and leaves the original graph untouched.

mod common;

use burn::tensor::{Device, TensorData};
use common::{Rng, host, rel_err, tensor};
use xprune_graph::{Conv2dSpec, FeatureShape, Graph, GraphBuilder, Layer};
use xprune_lrp::{canonize, foldable_batch_norms};

fn device() -> Device {
    Device::flex()
}

/// Random batch-norm statistics for every batch norm of a graph.
fn randomise_batch_norms(graph: &Graph, seed: u64) -> Graph {
    let mut rng = Rng::new(seed);
    graph
        .with_tensors(
            |name| {
                let (node, role) = name.rsplit_once('.').unwrap();
                let layer = graph.layer(graph.find(node).unwrap()).unwrap();
                let data = layer
                    .params()
                    .into_iter()
                    .find(|p| p.role == role)
                    .unwrap()
                    .data;
                let n = data.num_elements();
                Ok(match role {
                    "gamma" => TensorData::new(rng.vec(n, -1.5, 1.5), [n]),
                    "running_var" => TensorData::new(rng.vec(n, 0.2, 2.0), [n]),
                    "beta" | "running_mean" => TensorData::new(rng.vec(n, -0.5, 0.5), [n]),
                    _ => data,
                })
            },
            &graph.device(),
            std::path::Path::new("test"),
        )
        .unwrap()
}

/// conv(bias)-bn, conv(no bias, groups)-bn, a conv feeding a bn and another node (not
/// foldable), a bn after an add (not foldable), linear-bn over features.
fn graph(d: &Device) -> Graph {
    let mut b = GraphBuilder::new(FeatureShape::spatial(4, 9, 9), d).seed(3);
    let x = b.conv2d("c1", 0, Conv2dSpec::new(6, 3).padding(1)).unwrap();
    let x = b.batch_norm("bn1", x).unwrap();
    let x = b.relu("r1", x).unwrap();
    let y = b
        .conv2d(
            "c2",
            x,
            Conv2dSpec::new(6, 3)
                .stride(2)
                .padding(1)
                .groups(3)
                .no_bias(),
        )
        .unwrap();
    let y = b.batch_norm("bn2", y).unwrap();
    let z = b
        .conv2d("c3", x, Conv2dSpec::new(6, 3).stride(2).padding(1))
        .unwrap();
    let zbn = b.batch_norm("bn3", z).unwrap();
    let s = b.add("add", &[y, zbn, z]).unwrap();
    let s = b.batch_norm("bn_add", s).unwrap();
    let s = b.relu("r2", s).unwrap();
    let g = b.global_avg_pool("gap", s).unwrap();
    let f = b.flatten("flat", g).unwrap();
    let l = b.linear("fc1", f, 8).unwrap();
    let l = b.batch_norm("bn_fc", l).unwrap();
    let l = b.relu("r3", l).unwrap();
    let o = b.linear("fc2", l, 3).unwrap();
    randomise_batch_norms(&b.build(o).unwrap(), 17)
}

#[test]
fn folding_keeps_outputs_ids_and_names() {
    let d = device();
    let g = graph(&d);
    let before: Vec<(String, Vec<f32>)> = g
        .named_tensors()
        .into_iter()
        .map(|(n, t)| (n, t.convert::<f32>().try_into_vec::<f32>().unwrap()))
        .collect();
    let pairs: Vec<(String, String)> = foldable_batch_norms(&g)
        .into_iter()
        .map(|(a, b)| (g.name(a).to_string(), g.name(b).to_string()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("c1".into(), "bn1".into()),
            ("c2".into(), "bn2".into()),
            ("fc1".into(), "bn_fc".into())
        ]
    );
    let c = canonize(&g).unwrap();
    assert_eq!(c.len(), g.len());
    for (a, b) in g.nodes().iter().zip(c.nodes()) {
        assert_eq!(a.name, b.name);
        assert_eq!(a.inputs, b.inputs);
        assert_eq!(a.shape, b.shape);
    }
    for name in ["bn1", "bn2", "bn_fc"] {
        assert!(
            matches!(c.layer(c.find(name).unwrap()).unwrap(), Layer::Identity(_)),
            "{name}"
        );
    }
    for name in ["bn3", "bn_add"] {
        assert!(
            matches!(c.layer(c.find(name).unwrap()).unwrap(), Layer::BatchNorm(_)),
            "{name}"
        );
    }
    // c2 had no bias; the folded one has
    assert!(
        matches!(c.layer(c.find("c2").unwrap()).unwrap(), Layer::Conv2d(conv) if conv.bias.is_some())
    );

    let mut rng = Rng::new(4);
    let x = tensor(rng.vec(3 * 4 * 9 * 9, -2.0, 2.0), [3, 4, 9, 9], &d);
    let ro = g.forward_recorded(x.clone()).unwrap();
    let rc = c.forward_recorded(x).unwrap();
    let max_diff = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
    };
    assert!(max_diff(&ro.output().to_vec(), &rc.output().to_vec()) < 1e-5);
    // the value after each folded batch norm is unchanged, at the same node id
    for name in ["bn1", "bn2", "bn_fc", "add", "r3"] {
        let id = g.find(name).unwrap();
        let a = ro.get(id).unwrap().to_vec();
        let b = rc.get(id).unwrap().to_vec();
        assert!(max_diff(&a, &b) < 1e-5, "{name}: {}", max_diff(&a, &b));
    }
    // the original is untouched
    let after: Vec<(String, Vec<f32>)> = g
        .named_tensors()
        .into_iter()
        .map(|(n, t)| (n, t.convert::<f32>().try_into_vec::<f32>().unwrap()))
        .collect();
    assert_eq!(before, after);
    assert!(matches!(
        g.layer(g.find("bn1").unwrap()).unwrap(),
        Layer::BatchNorm(_)
    ));
}

#[test]
fn folding_reference_models_keeps_their_outputs() {
    let d = device();
    let models = [
        xprune_models::vgg(
            xprune_models::VggDepth::Vgg11,
            true,
            FeatureShape::spatial(3, 32, 32),
            10,
            0.125,
            &d,
            1,
        )
        .unwrap(),
        xprune_models::resnet18(
            xprune_models::ResNetStem::ImageNet,
            FeatureShape::spatial(3, 32, 32),
            10,
            0.125,
            &d,
            2,
        )
        .unwrap(),
    ];
    for (i, m) in models.iter().enumerate() {
        let m = randomise_batch_norms(m, 30 + i as u64);
        let c = canonize(&m).unwrap();
        let bns = |g: &Graph| {
            g.layers()
                .iter()
                .filter(|l| matches!(l, Layer::BatchNorm(_)))
                .count()
        };
        assert!(bns(&m) > 0);
        assert_eq!(bns(&c), 0, "model {i}: every batch norm follows a conv");
        let mut rng = Rng::new(5);
        let x = tensor(rng.vec(2 * 3 * 32 * 32, -2.0, 2.0), [2, 3, 32, 32], &d);
        let a = host(&m.logits(x.clone()).unwrap());
        let b = host(&c.logits(x).unwrap());
        let scale = a.iter().fold(1.0f64, |s, v| s.max(v.abs()));
        assert!(
            rel_err(&b, &a) * scale < 1e-5 * scale.max(1.0),
            "model {i}: {}",
            rel_err(&b, &a)
        );
    }
}
