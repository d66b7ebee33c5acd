//! Attribution over graphs: conservation, z+ non-negativity, targets, composites, per-node
//! relevance, agreement with layer-by-layer propagation, and backend independence.

mod common;

use burn::tensor::{Device, Tensor};
use common::{Rng, host, tensor};
use xprune_graph::tensor_util::int_tensor;
use xprune_graph::{Activation, Conv2dSpec, FeatureShape, Graph, GraphBuilder, Layer, Padding};
use xprune_lrp::prelude::*;
use xprune_lrp::{Attributor, Composite, LayerKind, LrpError, Target, attribute};

fn device() -> Device {
    Device::flex()
}

/// conv - relu - max pool - conv (stride 2, asymmetric padding) - relu - avg pool - flatten -
/// linear - relu - linear; no biases.
fn chain(seed: u64, d: &Device) -> Graph {
    let mut b = GraphBuilder::new(FeatureShape::spatial(3, 12, 12), d).seed(seed);
    let x = b
        .conv2d("conv1", 0, Conv2dSpec::new(6, 3).padding(1).no_bias())
        .unwrap();
    let x = b.relu("relu1", x).unwrap();
    let x = b.max_pool2d("pool1", x, 2, 2).unwrap();
    let x = b
        .conv2d(
            "conv2",
            x,
            Conv2dSpec::new(8, 3)
                .stride(2)
                .with_padding(Padding::Explicit([0, 1, 1, 0]))
                .no_bias(),
        )
        .unwrap();
    let x = b.relu("relu2", x).unwrap();
    let x = b.avg_pool2d("pool2", x, 3, 1).unwrap();
    let x = b.flatten("flatten", x).unwrap();
    let x = b.linear_with_bias("fc1", x, 16, false).unwrap();
    let x = b.relu("relu3", x).unwrap();
    let x = b.linear_with_bias("fc2", x, 5, false).unwrap();
    b.build(x).unwrap()
}

/// A residual network with batch norms, an add, a concat and global pooling. With
/// `relu_branch`, the residual branch ends in a ReLU before the add (both summands are then
/// non-negative).
fn residual_with(seed: u64, d: &Device, relu_branch: bool) -> Graph {
    let mut b = GraphBuilder::new(FeatureShape::spatial(3, 10, 10), d).seed(seed);
    let x = b
        .conv2d("stem", 0, Conv2dSpec::new(6, 3).padding(1))
        .unwrap();
    let x = b.batch_norm("stem_bn", x).unwrap();
    let x = b.relu("stem_relu", x).unwrap();
    let y = b
        .conv2d("a", x, Conv2dSpec::new(6, 3).padding(1).no_bias())
        .unwrap();
    let y = b.batch_norm("a_bn", y).unwrap();
    let y = b.relu("a_relu", y).unwrap();
    let mut y = b
        .conv2d("b", y, Conv2dSpec::new(6, 3).padding(1).groups(2))
        .unwrap();
    if relu_branch {
        y = b.relu("b_relu", y).unwrap();
    }
    let s = b.add("add", &[x, y]).unwrap();
    let s = b.relu("add_relu", s).unwrap();
    let z = b.conv2d("branch", s, Conv2dSpec::new(4, 1)).unwrap();
    let z = b.relu("branch_relu", z).unwrap();
    let c = b.concat("cat", &[s, z]).unwrap();
    let c = b.max_pool2d("pool", c, 2, 2).unwrap();
    let g = b.global_avg_pool("gap", c).unwrap();
    let f = b.flatten("flatten", g).unwrap();
    let o = b.linear("fc", f, 7).unwrap();
    let graph = b.build(o).unwrap();
    // non-trivial batch-norm statistics
    let mut rng = Rng::new(seed + 100);
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
                    "gamma" | "running_var" => {
                        burn::tensor::TensorData::new(rng.vec(n, 0.5, 1.5), [n])
                    }
                    "beta" | "running_mean" => {
                        burn::tensor::TensorData::new(rng.vec(n, -0.3, 0.3), [n])
                    }
                    _ => data,
                })
            },
            d,
            std::path::Path::new("test"),
        )
        .unwrap()
}

fn residual(seed: u64, d: &Device) -> Graph {
    residual_with(seed, d, false)
}

fn images(batch: usize, shape: [usize; 3], lo: f32, hi: f32, seed: u64, d: &Device) -> Tensor<4> {
    let mut rng = Rng::new(seed);
    tensor(
        rng.vec(batch * shape.iter().product::<usize>(), lo, hi),
        [batch, shape[0], shape[1], shape[2]],
        d,
    )
}

fn sums_per_sample(a: &Activation) -> Vec<f64> {
    let b = a.batch();
    let v = a.to_vec();
    let n = v.len() / b;
    (0..b)
        .map(|s| v[s * n..(s + 1) * n].iter().map(|x| *x as f64).sum())
        .collect()
}

/// Nodes of `residual` that every path from the input to the output crosses.
const CUTS: [&str; 10] = [
    "input",
    "stem",
    "stem_relu",
    "add",
    "add_relu",
    "cat",
    "pool",
    "gap",
    "flatten",
    "fc",
];

/// Composites whose rules conserve relevance without biases. (Alpha-beta conserves only where
/// an output has both positive and negative contributions: an output whose inputs all meet
/// non-negative weights gives `alpha * R`; see `alpha_beta_conserves_with_both_parts`.)
fn conserving_composites() -> Vec<Composite> {
    let eps0 = Epsilon::new(1e-9).unwrap();
    vec![
        Composite::epsilon(eps0),
        Composite::epsilon_plus(eps0),
        Composite::epsilon_plus_flat(eps0),
        Composite::epsilon_gamma_box(eps0, Gamma::default(), ZBox::new(-1.0, 1.0).unwrap()),
        Composite::new("w-square first")
            .rule_for_kind(LayerKind::Convolution, Gamma::new(0.5).unwrap())
            .rule_for_kind(LayerKind::Dense, ZPlus)
            .first_layer(&[LayerKind::Convolution], WSquare),
    ]
}

#[test]
fn relevance_is_conserved_without_biases() {
    let d = device();
    for (name, graph) in [("chain", chain(1, &d)), ("residual", residual(2, &d))] {
        let shape = match graph.input_shape() {
            FeatureShape::Spatial(s) => s,
            _ => unreachable!(),
        };
        let x = images(3, shape, -1.0, 1.0, 5, &d);
        for composite in conserving_composites() {
            // no biases, every stabiliser (epsilon and the rules' own) close to 0
            let composite = composite.ignore_bias(true).stabilizer(1e-9).unwrap();
            let a = attribute(
                &graph,
                x.clone(),
                Target::Labels(int_tensor(vec![0, 3, 4], &d)),
                &composite,
            )
            .unwrap();
            for (s, total) in sums_per_sample(&a.input).into_iter().enumerate() {
                assert!(
                    (total - 1.0).abs() < 1e-4,
                    "{name}, {}: sample {s} input relevance sums to {total}, expected 1; per node: {:?}",
                    composite.name(),
                    a.nodes
                        .iter()
                        .enumerate()
                        .filter_map(|(i, r)| r
                            .as_ref()
                            .map(|r| (graph.name(i).to_string(), sums_per_sample(r)[s])))
                        .collect::<Vec<_>>()
                );
            }
            // every node that all relevance flows through conserves as well (ReLU, pooling,
            // add, concat, flatten)
            for (id, r) in a.nodes.iter().enumerate() {
                let Some(r) = r else { continue };
                if name == "residual" && !CUTS.contains(&graph.name(id)) {
                    continue;
                }
                for total in sums_per_sample(r) {
                    assert!(
                        (total - 1.0).abs() < 1e-4,
                        "{name}, {}: node `{}` relevance sums to {total}",
                        composite.name(),
                        graph.name(id)
                    );
                }
            }
        }
    }
}

#[test]
fn conservation_holds_for_the_target_logit_and_custom_relevance() {
    let d = device();
    let graph = chain(3, &d);
    let x = images(2, [3, 12, 12], 0.0, 1.0, 6, &d);
    let composite = Composite::epsilon_plus(Epsilon::new(1e-9).unwrap()).ignore_bias(true);
    let labels = int_tensor(vec![1, 2], &d);
    let a = attribute(
        &graph,
        x.clone(),
        Target::LabelLogits(labels.clone()),
        &composite,
    )
    .unwrap();
    let logits = host(&a.logits);
    let one = attribute(&graph, x.clone(), Target::Labels(labels), &composite).unwrap();
    for (s, total) in sums_per_sample(&a.input).into_iter().enumerate() {
        let logit = logits[s * 5 + [1, 2][s]];
        assert!(
            (total - logit).abs() < 1e-4 * logit.abs().max(1.0),
            "sample {s}: {total} vs logit {logit}"
        );
    }
    // relevance is linear in the initial relevance
    let scaled: Vec<f64> = one
        .input
        .to_vec()
        .iter()
        .enumerate()
        .map(|(i, v)| *v as f64 * logits[(i / 432) * 5 + [1, 2][i / 432]])
        .collect();
    assert!(
        common::rel_err(
            &a.input
                .to_vec()
                .iter()
                .map(|v| *v as f64)
                .collect::<Vec<_>>(),
            &scaled
        ) < 1e-5
    );
    let custom = tensor(
        vec![0.5, -1.0, 0.0, 2.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0],
        [2, 5],
        &d,
    );
    let c = attribute(&graph, x, Target::Custom(custom), &composite).unwrap();
    let sums = sums_per_sample(&c.input);
    assert!(
        (sums[0] - 2.5).abs() < 1e-4 && (sums[1] - 3.0).abs() < 1e-4,
        "{sums:?}"
    );
}

/// z+ keeps relevance non-negative through every layer whose inputs are non-negative or that it
/// applies to. (The norm rule of an add whose summand can be negative — a residual branch
/// ending in a batch norm — can make relevance negative; that is the norm rule, not z+.)
#[test]
fn z_plus_relevance_is_non_negative_everywhere() {
    let d = device();
    let composite = Composite::new("z-plus everywhere")
        .rule_for_kind(LayerKind::Convolution, ZPlus)
        .rule_for_kind(LayerKind::Dense, ZPlus);
    for (name, graph) in [
        ("chain", chain(4, &d)),
        ("residual", residual_with(5, &d, true)),
    ] {
        let shape = match graph.input_shape() {
            FeatureShape::Spatial(s) => s,
            _ => unreachable!(),
        };
        for (lo, hi) in [(0.0, 1.0), (-1.0, 1.0)] {
            let x = images(2, shape, lo, hi, 7, &d);
            let a = attribute(&graph, x, Target::ArgMax, &composite).unwrap();
            let mut positive = 0;
            for (id, r) in a.nodes.iter().enumerate() {
                let Some(r) = r else { continue };
                let v = r.to_vec();
                let min = v.iter().fold(f32::INFINITY, |m, x| m.min(*x));
                positive += v.iter().filter(|x| **x > 0.0).count();
                assert!(
                    min >= -1e-7,
                    "{name}: node `{}` has relevance {min} < 0",
                    graph.name(id)
                );
            }
            assert!(positive > 0, "{name}: some relevance is positive");
        }
    }
}

#[test]
fn graph_attribution_equals_layer_by_layer_propagation() {
    let d = device();
    let mut b = GraphBuilder::new(FeatureShape::spatial(2, 8, 8), &d).seed(9);
    let c1 = b.conv2d("c1", 0, Conv2dSpec::new(4, 3).padding(1)).unwrap();
    let r1 = b.relu("r1", c1).unwrap();
    let c2 = b
        .conv2d("c2", r1, Conv2dSpec::new(4, 3).stride(2).padding(1))
        .unwrap();
    let r2 = b.relu("r2", c2).unwrap();
    let g = b.global_avg_pool("gap", r2).unwrap();
    let f = b.flatten("flat", g).unwrap();
    let o = b.linear("fc", f, 3).unwrap();
    let graph = b.build(o).unwrap();
    let x = images(2, [2, 8, 8], -1.0, 1.0, 8, &d);
    let composite = Composite::named("epsilon-plus-flat").unwrap();
    let a = attribute(&graph, x.clone(), Target::Class(2), &composite).unwrap();

    let layer = |name: &str| graph.layer(graph.find(name).unwrap()).unwrap();
    let (
        Layer::Conv2d(conv1),
        Layer::Conv2d(conv2),
        Layer::Linear(fc),
        Layer::AdaptiveAvgPool2d(gap),
    ) = (layer("c1"), layer("c2"), layer("fc"), layer("gap"))
    else {
        panic!("layer kinds")
    };
    let h1 = conv1.forward(x.clone());
    let a1 = burn::tensor::activation::relu(h1);
    let h2 = conv2.forward(a1.clone());
    let a2 = burn::tensor::activation::relu(h2);
    let p = gap.forward(a2.clone());
    let flat = p.clone().reshape([2, 4]);
    let r = tensor(vec![0.0, 0.0, 1.0, 0.0, 0.0, 1.0], [2, 3], &d);
    let r = fc.relevance(&flat, r, &Epsilon::default()).unwrap();
    let r = gap.relevance(&a2, r.reshape([2, 4, 1, 1]), &Norm).unwrap();
    let r = conv2.relevance(&a1, r, &ZPlus).unwrap();
    let r = conv1.relevance(&x, r, &Flat).unwrap();
    let got: Vec<f64> = a.input.to_vec().iter().map(|v| *v as f64).collect();
    assert!(common::rel_err(&got, &host(&r)) < 1e-5);
    // per-node relevance is readable by name and per channel
    let at_c2 = a.by_name(&graph, "c2").unwrap().unwrap();
    assert_eq!(at_c2.dims(), vec![2, 4, 4, 4]);
    assert_eq!(
        a.channel_relevance(graph.find("c2").unwrap())
            .unwrap()
            .dims(),
        [2, 4]
    );
    assert_eq!(a.node(0).unwrap().to_vec(), a.input.to_vec());
}

#[test]
fn targets_are_checked() {
    let d = device();
    let graph = chain(6, &d);
    let x = images(2, [3, 12, 12], 0.0, 1.0, 9, &d);
    let composite = Composite::named("epsilon").unwrap();
    let attributor = Attributor::new(&graph, &composite).unwrap();
    let err = attributor
        .attribute(x.clone(), Target::Labels(int_tensor(vec![0, 5], &d)))
        .unwrap_err();
    assert!(matches!(err, LrpError::Target(_)));
    assert!(
        err.to_string().contains("label 5 of sample 1") && err.to_string().contains("5 outputs"),
        "{err}"
    );
    let err = attributor
        .attribute(x.clone(), Target::Labels(int_tensor(vec![0], &d)))
        .unwrap_err();
    assert!(
        err.to_string().contains("1 labels for a batch of 2"),
        "{err}"
    );
    let err = attributor
        .attribute(x.clone(), Target::Class(9))
        .unwrap_err();
    assert!(err.to_string().contains("label 9"), "{err}");
    let err = attributor
        .attribute(x.clone(), Target::Custom(Tensor::zeros([2, 4], &d)))
        .unwrap_err();
    assert!(
        err.to_string().contains("[2, 4]") && err.to_string().contains("[2, 5]"),
        "{err}"
    );
    let err = attributor
        .attribute(Tensor::<4>::zeros([2, 3, 11, 12], &d), Target::ArgMax)
        .unwrap_err();
    assert!(matches!(err, LrpError::Graph(_)), "{err}");
    // arg-max is the one-hot at the largest logit
    let a = attributor.attribute(x.clone(), Target::ArgMax).unwrap();
    let logits = host(&a.logits);
    let best: Vec<i64> = (0..2)
        .map(|s| {
            (0..5)
                .max_by(|i, j| logits[s * 5 + i].total_cmp(&logits[s * 5 + j]))
                .unwrap() as i64
        })
        .collect();
    let b = attributor
        .attribute(x, Target::labels_or_argmax(Some(int_tensor(best, &d))))
        .unwrap();
    assert_eq!(a.input.to_vec(), b.input.to_vec());
}

#[test]
fn composites_resolve_by_kind_first_layer_and_name() {
    let d = device();
    let graph = residual(7, &d);
    let names = |c: &Composite| -> Vec<(String, String)> {
        let attributor = Attributor::new(&graph, c).unwrap();
        attributor
            .rules()
            .iter()
            .enumerate()
            .filter_map(|(id, r)| r.as_ref().map(|r| (graph.name(id).to_string(), r.name())))
            .collect()
    };
    let rule_of = |list: &[(String, String)], node: &str| {
        list.iter().find(|(n, _)| n == node).unwrap().1.clone()
    };
    let gb = names(&Composite::named("epsilon_gamma_box").unwrap());
    assert_eq!(rule_of(&gb, "stem"), "z-box");
    assert_eq!(rule_of(&gb, "a"), "gamma(0.25)");
    assert_eq!(rule_of(&gb, "fc"), "epsilon(0.000001)");
    assert_eq!(rule_of(&gb, "add"), "norm");
    assert_eq!(rule_of(&gb, "gap"), "norm");
    // folded batch norms became identities and take no rule
    assert!(gb.iter().all(|(n, _)| n != "stem_bn"));
    let flat = names(&Composite::named("epsilon-alpha2-beta1-flat").unwrap());
    assert_eq!(rule_of(&flat, "stem"), "flat");
    assert_eq!(rule_of(&flat, "b"), "alpha2-beta1");
    // without canonization the batch norms get pass (Zennit's base map)
    let raw = names(&Composite::named("epsilon-plus").unwrap().canonize(false));
    assert_eq!(rule_of(&raw, "stem_bn"), "pass");
    let custom = Composite::named("epsilon-plus")
        .unwrap()
        .rule_for_node("branch", WSquare)
        .rule_for_kind(LayerKind::Sum, Epsilon::new(0.1).unwrap())
        .ignore_bias(true);
    let c = names(&custom);
    assert_eq!(rule_of(&c, "branch"), "w-square (no bias)");
    assert_eq!(rule_of(&c, "add"), "epsilon(0.1) (no bias)");
    assert_eq!(rule_of(&c, "a"), "z-plus (no bias)");
    // errors
    let err = Composite::named("epsilon-minus").unwrap_err().to_string();
    assert!(
        err.contains("epsilon-minus") && err.contains("epsilon-plus-flat"),
        "{err}"
    );
    let err = Attributor::new(
        &graph,
        &Composite::named("epsilon")
            .unwrap()
            .rule_for_node("nope", Flat),
    )
    .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    let err = Attributor::new(&graph, &Composite::new("empty"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no rule for conv2d node `stem`"), "{err}");
    // a rule that cannot apply names the node
    let bad = Composite::named("epsilon")
        .unwrap()
        .rule_for_node("fc", Pass);
    let x = images(1, [3, 10, 10], 0.0, 1.0, 1, &d);
    let err = attribute(&graph, x, Target::ArgMax, &bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`fc`") || err.contains("fc"), "{err}");
    assert!(err.contains("pass"), "{err}");
}

#[test]
fn unfolded_batch_norm_and_kept_nodes() {
    let d = device();
    let graph = residual(8, &d);
    let x = images(2, [3, 10, 10], -1.0, 1.0, 2, &d);
    let composite = Composite::named("epsilon-plus").unwrap();
    let folded = Attributor::new(&graph, &composite).unwrap();
    let raw = Attributor::new(&graph, &composite.clone().canonize(false)).unwrap();
    let a = folded.attribute(x.clone(), Target::ArgMax).unwrap();
    let b = raw.attribute(x.clone(), Target::ArgMax).unwrap();
    assert!(common::rel_err(&host(&a.logits), &host(&b.logits)) < 1e-5);
    assert!(b.input.to_vec().iter().all(|v| v.is_finite()));
    // only the input kept
    let lean = Attributor::new(&graph, &composite)
        .unwrap()
        .keep_nodes(false);
    let c = lean.attribute(x, Target::ArgMax).unwrap();
    assert_eq!(c.input.to_vec(), a.input.to_vec());
    assert!(c.nodes[1..].iter().all(|n| n.is_none()));
}

#[test]
#[allow(deprecated)] // ndarray is deprecated upstream; it is still a backend users have
fn results_do_not_depend_on_the_backend() {
    let flex = Device::flex();
    let ndarray = Device::ndarray();
    let composite = Composite::named("epsilon-gamma-box").unwrap();
    let x = images(2, [3, 10, 10], 0.0, 1.0, 3, &flex);
    let a = attribute(&residual(9, &flex), x.clone(), Target::ArgMax, &composite).unwrap();
    let xn = x.to_device(&ndarray);
    let b = attribute(&residual(9, &ndarray), xn, Target::ArgMax, &composite).unwrap();
    let ga: Vec<f64> = a.input.to_vec().iter().map(|v| *v as f64).collect();
    let gb: Vec<f64> = b.input.to_vec().iter().map(|v| *v as f64).collect();
    assert!(common::rel_err(&ga, &gb) < 1e-4);
}

#[test]
fn alpha_beta_conserves_with_both_parts() {
    let d = device();
    let mut rng = Rng::new(21);
    // every input non-zero and every output with weights of both signs
    let (fin, fout) = (9, 4);
    let linear = burn::nn::Linear {
        weight: burn::module::Param::from_tensor(tensor(
            rng.vec(fin * fout, -1.0, 1.0),
            [fin, fout],
            &d,
        )),
        bias: None,
    };
    let x = tensor(rng.vec(2 * fin, 0.1, 1.0), [2, fin], &d);
    let r = tensor(rng.vec(2 * fout, 0.0, 1.0), [2, fout], &d);
    let total: f64 = host(&r).iter().sum();
    for (alpha, beta) in [(2.0, 1.0), (1.0, 0.0), (3.5, 2.5)] {
        let rule = AlphaBeta::new(alpha, beta)
            .unwrap()
            .with_stabilizer(1e-12)
            .unwrap();
        let rin = linear.relevance(&x, r.clone(), &rule).unwrap();
        let sum: f64 = host(&rin).iter().sum();
        assert!(
            (sum - total).abs() < 1e-5 * total,
            "alpha {alpha}, beta {beta}: {sum} vs {total}"
        );
    }
}
