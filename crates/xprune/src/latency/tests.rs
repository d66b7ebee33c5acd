//! Tests of latency models. Nothing here asserts on a measured time: the probe's structure is
//! checked on a real run, the selection on a synthetic model whose times are a formula.

use super::*;
use crate::criteria::{Scores, WeightNorm};
use crate::prune::select;
use crate::{PruneError, PruneTarget, Pruner, Scope, Selection};
use burn::tensor::Device;
use std::collections::BTreeSet;
use std::sync::Arc;
use xprune_graph::{FeatureShape, Graph};
use xprune_models::{ResNetCifarDepth, VggDepth, resnet_cifar, vgg};
use xprune_surgery::{PrunePlan, prune, shapes_after};

fn device() -> Device {
    Device::flex()
}

fn small_resnet() -> Graph {
    resnet_cifar(
        ResNetCifarDepth::ResNet20,
        FeatureShape::spatial(3, 8, 8),
        4,
        0.5,
        &device(),
        1,
    )
    .unwrap()
}

fn small_vgg() -> Graph {
    vgg(
        VggDepth::Vgg11,
        true,
        FeatureShape::spatial(3, 32, 32),
        4,
        0.125,
        &device(),
        2,
    )
    .unwrap()
}

fn quick() -> ProbeOptions {
    ProbeOptions {
        batch: 2,
        warmup: 0,
        reps: 1,
        points: 4,
        sweeps: 1,
        inference_form: false,
        seed: 3,
    }
}

/// Replaces every measured time by a formula of the counts with steps: `s(c) = ceil(c / 4)`
/// (counts that are not multiples of 4 cost as much as the next multiple), `s(c)` for lines
/// and `s(a) * s(b) / 4` for grids (a convolution's work in blocks of 4 channels).
fn synthetic(mut model: LatencyModel, graph: &Graph) -> LatencyModel {
    let stair = |c: usize| c.div_ceil(4) as f64;
    for n in &mut model.nodes {
        n.table = n.table.with_times(|a, b| match (a, b) {
            (0, 0) => 0.5,
            (0, c) | (c, 0) => stair(c),
            (a, b) => stair(a) * stair(b) / 4.0,
        });
    }
    model.nodes_ms = 0.0;
    model.dense_ms = 0.0;
    let dense = model.predict(graph).unwrap();
    model.nodes_ms = dense;
    model.dense_ms = 2.0 * dense;
    model
}

#[test]
fn tables_interpolate_between_measured_counts() {
    let line = LatencyTable::Line {
        axis: Axis::Output,
        counts: vec![2, 4, 8],
        ms: vec![1.0, 3.0, 5.0],
    };
    assert_eq!(line.at("n", 99, 4).unwrap(), 3.0);
    assert!((line.at("n", 99, 6).unwrap() - 4.0).abs() < 1e-12);
    // below the smallest count: the smallest time; above the largest: an error
    assert_eq!(line.at("n", 0, 1).unwrap(), 1.0);
    let err = line.at("conv", 0, 9).unwrap_err();
    assert!(matches!(
        err,
        LatencyError::OutOfRange {
            channels: 9,
            max: 8,
            ..
        }
    ));
    assert!(err.to_string().contains("conv"));
    let grid = LatencyTable::Grid {
        inputs: vec![1, 3],
        outputs: vec![2, 4],
        ms: vec![1.0, 2.0, 3.0, 6.0],
    };
    assert_eq!(grid.at("n", 3, 4).unwrap(), 6.0);
    // bilinear: at (2, 3) the mean of the four corners
    assert!((grid.at("n", 2, 3).unwrap() - 3.0).abs() < 1e-12);
    let input = LatencyTable::Line {
        axis: Axis::Input,
        counts: vec![4, 8],
        ms: vec![2.0, 4.0],
    };
    assert!((input.at("fc", 6, 10).unwrap() - 3.0).abs() < 1e-12);
}

#[test]
fn the_probe_measures_every_node_on_the_grid_its_groups_allow() {
    let graph = small_resnet();
    let groups = ChannelGroups::new(&graph);
    let model = LatencyModel::probe(&graph, &groups, &quick()).unwrap();
    assert_eq!(model.nodes.len(), graph.len());
    assert_eq!(model.fingerprint, LatencyModel::fingerprint(&graph));
    assert!(model.dense_ms > 0.0 && model.nodes_ms > 0.0);
    // the input takes no time
    assert_eq!(model.nodes[0].table, LatencyTable::Constant(0.0));
    for (node, info) in model.nodes.iter().zip(graph.nodes()) {
        assert_eq!(node.name, info.name);
        let input = info
            .inputs
            .first()
            .map_or(0, |&i| graph.nodes()[i].shape.channels());
        match &node.table {
            LatencyTable::Grid {
                inputs, outputs, ..
            } => {
                assert_eq!(inputs.last(), Some(&input), "{}", node.name);
                assert_eq!(
                    outputs.last(),
                    Some(&info.shape.channels()),
                    "{}",
                    node.name
                );
                assert_eq!(node.kind, "conv2d", "{}", node.name);
            }
            LatencyTable::Line { axis, counts, .. } => {
                let top = match axis {
                    Axis::Input => input,
                    Axis::Output => info.shape.channels(),
                };
                assert_eq!(counts.last(), Some(&top), "{}", node.name);
            }
            LatencyTable::Constant(_) => {}
        }
    }
    // the block-internal convolutions mix two prunable groups: a grid
    let conv = model
        .nodes
        .iter()
        .find(|n| n.name == "layer1.0.conv2")
        .unwrap();
    assert!(matches!(conv.table, LatencyTable::Grid { .. }));
    // the classifier's output is pinned: a line over its inputs
    let fc = model.nodes.last().unwrap();
    assert!(matches!(
        fc.table,
        LatencyTable::Line {
            axis: Axis::Input,
            ..
        }
    ));
    // the dense prediction is the measured dense time
    let p = model.predict(&graph).unwrap();
    assert!((p - model.dense_ms).abs() <= 1e-9 * model.dense_ms);
    // every group's measured counts end at its size
    for g in groups.prunable() {
        let m = model.groups.iter().find(|m| m.name == g.name()).unwrap();
        assert_eq!(m.kept.last(), Some(&g.channels()));
    }
}

#[test]
fn inference_form_models_give_folded_batch_norms_no_time() {
    let graph = small_vgg();
    let groups = ChannelGroups::new(&graph);
    let options = ProbeOptions {
        inference_form: true,
        ..quick()
    };
    let model = LatencyModel::probe(&graph, &groups, &options).unwrap();
    let bns: Vec<_> = model
        .nodes
        .iter()
        .filter(|n| n.kind == "batch_norm")
        .collect();
    assert!(!bns.is_empty());
    for bn in bns {
        assert_eq!(bn.table, LatencyTable::Constant(0.0), "{}", bn.name);
    }
}

#[test]
fn predictions_of_a_pruned_graph_equal_those_of_its_planned_shapes() {
    let graph = small_resnet();
    let groups = ChannelGroups::new(&graph);
    let model = synthetic(
        LatencyModel::probe(&graph, &groups, &quick()).unwrap(),
        &graph,
    );
    let g = groups.prunable().nth(2).unwrap();
    let plan = PrunePlan::new().remove(g.id(), [0, 2, 3]);
    let pruned = prune(&graph, &groups, &plan).unwrap();
    let shapes = shapes_after(&graph, &groups, &plan.resolve(&groups).unwrap());
    let a = model.predict(&pruned).unwrap();
    let b = model.predict_shapes(&graph, &shapes).unwrap();
    assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    assert!(a < model.predict(&graph).unwrap());
    // another graph does not fit
    let other = small_vgg();
    let err = model.predict(&other).unwrap_err();
    assert!(matches!(err, LatencyError::Mismatch(_)), "{err}");
}

#[test]
fn efficient_counts_skip_counts_that_cost_as_much_as_larger_ones() {
    let graph = small_resnet();
    let groups = ChannelGroups::new(&graph);
    let options = ProbeOptions {
        points: 8,
        ..quick()
    };
    let model = synthetic(
        LatencyModel::probe(&graph, &groups, &options).unwrap(),
        &graph,
    );
    let efficient = model.efficient_counts(&graph, &groups).unwrap();
    for g in groups.prunable() {
        let e = &efficient[g.name()];
        assert_eq!(e.last(), Some(&g.channels()));
        assert!(e.windows(2).all(|w| w[0] < w[1]));
        let measured = &model
            .groups
            .iter()
            .find(|m| m.name == g.name())
            .unwrap()
            .kept;
        assert!(
            e.iter().all(|k| measured.contains(k)),
            "{e:?} of {measured:?}"
        );
    }
    // a 16-channel group measured at 2, 4, ..., 16 whose nodes all follow the staircase:
    // the odd steps (2, 6, 10, 14) cost as much as the next multiple of 4
    let (name, e) = efficient
        .iter()
        .find(|(name, _)| groups.find(name).is_some_and(|g| g.channels() == 16))
        .expect("a 16-channel group");
    assert!(
        !e.contains(&6) && !e.contains(&10) && !e.contains(&14),
        "{name}: {e:?}"
    );
}

#[test]
fn a_latency_budget_is_met_with_efficient_counts() {
    let graph = small_resnet();
    let groups = ChannelGroups::new(&graph);
    let model = Arc::new(synthetic(
        LatencyModel::probe(&graph, &groups, &quick()).unwrap(),
        &graph,
    ));
    let (_, scores) = Pruner::new(WeightNorm::l1()).score(&graph, None).unwrap();
    let dense = model.predict(&graph).unwrap();
    let efficient = model.efficient_counts(&graph, &groups).unwrap();
    for scope in [Scope::Global, Scope::PerGroup] {
        for budget in [0.9, 0.6, 0.4] {
            let sel = Selection::default()
                .scope(scope)
                .target(PruneTarget::LatencyBudget(budget))
                .latency_model(model.clone());
            let plan = select(&graph, &groups, &scores, &sel).unwrap();
            let pruned = prune(&graph, &groups, &plan).unwrap();
            let p = model.predict(&pruned).unwrap();
            assert!(
                p <= budget * dense * (1.0 + 1e-9),
                "{scope:?} {budget}: {p} of {dense}"
            );
            assert!(
                p >= 0.25 * budget * dense,
                "{scope:?} {budget}: removed far too much"
            );
            let after = ChannelGroups::new(&pruned);
            for g in groups.prunable() {
                let kept = after.find(g.name()).map_or(g.channels(), |a| a.channels());
                assert!(
                    efficient[g.name()].contains(&kept),
                    "{scope:?} {budget}: `{}` keeps {kept}, not in {:?}",
                    g.name(),
                    efficient[g.name()]
                );
            }
        }
    }
    // a budget of 1 removes nothing
    let sel = Selection::default()
        .target(PruneTarget::LatencyBudget(1.0))
        .latency_model(model.clone());
    assert!(select(&graph, &groups, &scores, &sel).unwrap().is_empty());
}

#[test]
fn iterative_pruning_reaches_a_latency_budget() {
    let graph = small_resnet();
    let groups = ChannelGroups::new(&graph);
    let model = Arc::new(synthetic(
        LatencyModel::probe(&graph, &groups, &quick()).unwrap(),
        &graph,
    ));
    let dense = model.predict(&graph).unwrap();
    let sel = Selection::default()
        .target(PruneTarget::LatencyBudget(0.5))
        .latency_model(model.clone());
    let mut pruner = Pruner::new(WeightNorm::l1()).selection(sel);
    let out = pruner.iterative(&graph, None, 2, |g, _| Ok(g)).unwrap();
    let p = model.predict(&out.graph).unwrap();
    assert!(p <= 0.5 * dense * (1.0 + 1e-9), "{p} of {dense}");
}

#[test]
fn latency_budgets_need_a_model_and_no_round_to() {
    let graph = small_resnet();
    let groups = ChannelGroups::new(&graph);
    let scores: Scores = Pruner::new(WeightNorm::l1()).score(&graph, None).unwrap().1;
    let sel = Selection::default().target(PruneTarget::LatencyBudget(0.5));
    let err = select(&graph, &groups, &scores, &sel).unwrap_err();
    assert!(err.to_string().contains("latency model"), "{err}");
    let model = LatencyModel::probe(&graph, &groups, &quick()).unwrap();
    let sel = sel.latency_model(model).round_to(4);
    let err = select(&graph, &groups, &scores, &sel).unwrap_err();
    assert!(matches!(err, PruneError::Config(_)) && err.to_string().contains("round_to"));
    for bad in [0.0, 1.5, f64::NAN] {
        let sel = Selection::default()
            .target(PruneTarget::LatencyBudget(bad))
            .latency_model(LatencyModel::probe(&graph, &groups, &quick()).unwrap());
        assert!(
            matches!(sel.validate(), Err(PruneError::Config(_))),
            "{bad}"
        );
    }
    // a model of another graph is a named mismatch, not a panic
    let other = small_vgg();
    let other_groups = ChannelGroups::new(&other);
    let other_model = LatencyModel::probe(&other, &other_groups, &quick()).unwrap();
    let sel = Selection::default()
        .target(PruneTarget::LatencyBudget(0.5))
        .latency_model(other_model);
    let err = select(&graph, &groups, &scores, &sel).unwrap_err();
    assert!(
        matches!(err, PruneError::Latency(LatencyError::Mismatch(_))),
        "{err}"
    );
}

#[test]
fn bad_probe_options_are_errors() {
    let graph = small_resnet();
    let groups = ChannelGroups::new(&graph);
    for options in [
        ProbeOptions {
            batch: 0,
            ..quick()
        },
        ProbeOptions { reps: 0, ..quick() },
        ProbeOptions {
            points: 1,
            ..quick()
        },
        ProbeOptions {
            points: 65,
            ..quick()
        },
        ProbeOptions {
            sweeps: 0,
            ..quick()
        },
    ] {
        let err = LatencyModel::probe(&graph, &groups, &options).unwrap_err();
        assert!(matches!(err, LatencyError::Config(_)), "{err}");
    }
}

#[test]
fn models_round_trip_through_files_and_bad_files_are_errors() {
    let graph = small_resnet();
    let groups = ChannelGroups::new(&graph);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latency.json");
    let (model, probed) = LatencyModel::probe_or_load(&path, &graph, &groups, &quick()).unwrap();
    assert!(probed);
    assert_eq!(LatencyModel::load(&path).unwrap(), model);
    // a second call reuses the file; another batch size probes again
    let (again, probed) = LatencyModel::probe_or_load(&path, &graph, &groups, &quick()).unwrap();
    assert!(!probed);
    assert_eq!(again, model);
    let batch4 = ProbeOptions {
        batch: 4,
        ..quick()
    };
    let (other, probed) = LatencyModel::probe_or_load(&path, &graph, &groups, &batch4).unwrap();
    assert!(probed && other.batch == 4);
    // corrupt files
    let text = std::fs::read_to_string(&path).unwrap();
    let cases = [
        ("truncated", text[..text.len() / 2].to_string()),
        (
            "version",
            text.replacen("\"version\": 1", "\"version\": 7", 1),
        ),
        ("not json", "\u{0}\u{1}garbage".to_string()),
    ];
    for (what, body) in cases {
        std::fs::write(&path, body).unwrap();
        let err = LatencyModel::load(&path).unwrap_err();
        assert!(matches!(err, LatencyError::Format { .. }), "{what}: {err}");
    }
    let mut bad = model.clone();
    if let Some(n) = bad
        .nodes
        .iter_mut()
        .find(|n| matches!(n.table, LatencyTable::Line { .. }))
        && let LatencyTable::Line { counts, .. } = &mut n.table
    {
        counts.reverse();
    }
    bad.save(&path).unwrap();
    let err = LatencyModel::load(&path).unwrap_err();
    assert!(err.to_string().contains("unsorted"), "{err}");
    let err = LatencyModel::load(dir.path().join("missing.json")).unwrap_err();
    assert!(matches!(err, LatencyError::Io { .. }), "{err}");
}

/// A runner that is a shell loop (no Python in CI): `answer` is run for every request with
/// `$b $w $r $p` (batch, warm-up, timed runs, path) set.
#[cfg(unix)]
fn shell_runner(answer: &str) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!("while read b w r p; do {answer}; done"),
    ]
}

#[cfg(unix)]
#[test]
fn a_runner_times_the_layers_it_is_sent_as_onnx_files() {
    let graph = small_resnet();
    let groups = ChannelGroups::new(&graph);
    let options = quick();
    // The request carries the batch and the repetitions.
    let mut timer =
        RunnerTimer::spawn(&shell_runner("echo $((b * 100 + w * 10 + r))"), &options).unwrap();
    let model = LatencyModel::probe_with(&graph, &groups, &options, &mut timer).unwrap();
    assert!(
        model.device.starts_with("runner: sh -c"),
        "{}",
        model.device
    );
    assert_eq!(model.dense_ms, 201.0);
    for node in &model.nodes[1..] {
        let times = node.table.times();
        assert!(
            times.iter().all(|&t| t == 201.0),
            "{}: {times:?}",
            node.name
        );
    }
    // The file is the layer at its kept counts: its size grows with them.
    let mut timer = RunnerTimer::spawn(&shell_runner("wc -c < \"$p\""), &options).unwrap();
    let model = LatencyModel::probe_with(&graph, &groups, &options, &mut timer).unwrap();
    let dense_bytes = xprune_io::onnx::export_onnx_bytes(&graph).unwrap().len();
    assert_eq!(model.dense_ms, dense_bytes as f64);
    let mut grids = 0;
    for node in &model.nodes {
        if let LatencyTable::Grid {
            inputs,
            outputs,
            ms,
        } = &node.table
        {
            grids += 1;
            let n = outputs.len();
            for i in 0..inputs.len() {
                for j in 0..n {
                    if j + 1 < n {
                        assert!(ms[i * n + j] < ms[i * n + j + 1], "{}", node.name);
                    }
                    if i + 1 < inputs.len() {
                        assert!(ms[i * n + j] < ms[(i + 1) * n + j], "{}", node.name);
                    }
                }
            }
        }
    }
    assert!(grids > 0);
}

#[cfg(unix)]
#[test]
fn every_sweep_measures_again_and_the_fastest_time_is_kept() {
    let graph = small_resnet();
    let groups = ChannelGroups::new(&graph);
    // Each answer is one less than the one before: later sweeps are faster.
    let countdown = shell_runner("n=$((${n:-100000} - 1)); echo $n");
    let times = |model: &LatencyModel| -> Vec<f64> {
        let nodes = model.nodes.iter().skip(1);
        nodes.flat_map(|n| n.table.times().to_vec()).collect()
    };
    for sweeps in [1, 2, 3] {
        let options = ProbeOptions { sweeps, ..quick() };
        let mut timer = RunnerTimer::spawn(&countdown, &options).unwrap();
        let model = LatencyModel::probe_with(&graph, &groups, &options, &mut timer).unwrap();
        // The dense pass opens every sweep; the layers of the last sweep come after it.
        let t = times(&model);
        assert!(t.iter().all(|&ms| ms < model.dense_ms), "{sweeps} sweeps");
        let distinct = t
            .iter()
            .map(|ms| ms.to_bits())
            .collect::<BTreeSet<_>>()
            .len();
        let per_sweep = 1 + distinct;
        assert_eq!(
            model.dense_ms,
            (99_999 - (sweeps - 1) * per_sweep) as f64,
            "{sweeps} sweeps"
        );
    }
}

#[cfg(unix)]
#[test]
fn a_failing_runner_is_a_named_error() {
    let graph = small_resnet();
    let groups = ChannelGroups::new(&graph);
    let options = quick();
    let probe = |command: Vec<String>| {
        RunnerTimer::spawn(&command, &options)
            .and_then(|mut timer| LatencyModel::probe_with(&graph, &groups, &options, &mut timer))
    };
    let message = |command: Vec<String>| probe(command).unwrap_err().to_string();
    let first = graph.name(1).to_string();
    // The dense pass is timed first, then the first layer, which this runner cannot run.
    let m = message(shell_runner(
        "n=$((${n:-0} + 1)); if [ $n -gt 1 ]; then echo error no kernel for this; else echo 1; fi",
    ));
    assert!(
        m.contains("no kernel for this") && m.contains(&first),
        "{m}"
    );
    let m = message(shell_runner("echo fast"));
    assert!(m.contains("`fast`, not a time"), "{m}");
    let m = message(shell_runner("echo -1"));
    assert!(m.contains("not a time"), "{m}");
    let m = message(vec!["true".into()]);
    assert!(
        m.contains("without an answer") || m.contains("did it exit"),
        "{m}"
    );
    let m = message(shell_runner("head -c 10000 /dev/zero | tr '\\0' 7"));
    assert!(m.contains("longer than"), "{m}");
    // A runner that hangs times out (and is killed: `sleep` itself, not a shell around it).
    let mut timer = RunnerTimer::spawn(&["sleep".to_string(), "30".to_string()], &options)
        .unwrap()
        .timeout(std::time::Duration::from_millis(300));
    let m = LatencyModel::probe_with(&graph, &groups, &options, &mut timer)
        .unwrap_err()
        .to_string();
    assert!(m.contains("no answer within 300ms"), "{m}");
    let m = message(vec!["/nonexistent/xprune-runner".into()]);
    assert!(m.contains("cannot start"), "{m}");
    assert!(matches!(probe(vec![]), Err(LatencyError::Config(_))));
}
