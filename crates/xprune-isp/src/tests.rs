//! Tests of the gate layout, the differentiable MAC count and the ISP phases.

use crate::{GateLayout, Isp, IspConfig, PhaseConfig, SoftMacs};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use xprune_graph::{FeatureShape, Graph};
use xprune_models as models;
use xprune_surgery::{ChannelGroups, GroupOptions, count_after, prune};

const IMAGE: FeatureShape = FeatureShape::Spatial([3, 32, 32]);

fn zoo(device: &Device) -> Vec<(&'static str, Graph)> {
    use models::ResNetCifarDepth::ResNet20;
    vec![
        (
            "resnet20",
            models::resnet_cifar(ResNet20, IMAGE, 10, 0.5, device, 1).unwrap(),
        ),
        (
            "vgg11",
            models::vgg(models::VggDepth::Vgg11, true, IMAGE, 10, 0.25, device, 2).unwrap(),
        ),
        ("lenet5", models::lenet5(IMAGE, 10, device, 3).unwrap()),
        (
            "mobilenet_v3",
            models::mobilenet_v3_like(IMAGE, 10, 0.5, device, 4).unwrap(),
        ),
        (
            "efficientnet",
            models::efficientnet_like(IMAGE, 10, 0.5, device, 5).unwrap(),
        ),
        (
            "shufflenet",
            models::shufflenet_like(IMAGE, 10, 0.5, device, 6).unwrap(),
        ),
        (
            "regnet",
            models::regnet_like(IMAGE, 10, 0.5, device, 7).unwrap(),
        ),
        (
            "convnext",
            models::convnext_like(IMAGE, 10, 0.5, device, 8).unwrap(),
        ),
        ("misc", models::misc_net(IMAGE, 10, 1.0, device, 9).unwrap()),
    ]
}

/// Random hard gates (each closed with probability `p_closed`, at least one open per group).
fn random_gates(layout: &GateLayout, p_closed: f32, seed: u64) -> Vec<Vec<bool>> {
    let mut rng = StdRng::seed_from_u64(seed);
    layout
        .groups()
        .iter()
        .map(|g| {
            let mut open: Vec<bool> = (0..g.channels)
                .map(|_| rng.random::<f32>() >= p_closed)
                .collect();
            if open.iter().all(|o| !o) {
                open[0] = true;
            }
            open
        })
        .collect()
}

fn tensors(open: &[Vec<bool>], device: &Device) -> Vec<Tensor<1>> {
    open.iter()
        .map(|o| {
            let v: Vec<f32> = o.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect();
            let n = v.len();
            Tensor::from_data(TensorData::new(v, [n]), device)
        })
        .collect()
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_data().try_to_vec::<f32>().unwrap()[0] as f64
}

#[test]
fn the_soft_mac_count_equals_the_exact_count_on_hard_gates_across_the_zoo() {
    let device = Device::flex();
    for (name, graph) in zoo(&device) {
        let options = GroupOptions::default().prune_normalized(true);
        let groups = ChannelGroups::with_options(&graph, &options);
        let layout = GateLayout::new(&graph, &groups).unwrap();
        let macs =
            SoftMacs::new(&graph, &groups, &layout).unwrap_or_else(|e| panic!("{name}: {e}"));
        let all = tensors(
            &layout
                .groups()
                .iter()
                .map(|g| vec![true; g.channels])
                .collect::<Vec<_>>(),
            &device,
        );
        let full = scalar(macs.kept(&all).unwrap());
        assert!(
            (full - graph.macs() as f64).abs() <= 1e-6 * graph.macs() as f64,
            "{name}: all gates open gives {full}, the graph has {}",
            graph.macs()
        );
        for (trial, p) in [0.2f32, 0.5, 0.8].into_iter().enumerate() {
            let open = random_gates(&layout, p, 11 + trial as u64);
            let logits: Vec<Vec<f32>> = open
                .iter()
                .map(|o| o.iter().map(|&b| if b { 1.0 } else { -1.0 }).collect())
                .collect();
            let plan = layout.plan(&open, &logits).unwrap();
            let resolved = plan.resolve(&groups).unwrap();
            let exact = count_after(&graph, &groups, &resolved).macs as f64;
            let soft = scalar(macs.kept(&tensors(&open, &device)).unwrap());
            assert!(
                (soft - exact).abs() <= 1e-5 * exact.max(1.0),
                "{name}, {p} closed: soft {soft}, exact {exact}"
            );
            // And the exact count is the pruned graph's own count.
            let pruned = prune(&graph, &groups, &plan).unwrap();
            assert_eq!(pruned.macs() as f64, exact, "{name}");
        }
    }
}

#[test]
fn the_soft_mac_count_is_differentiable_with_the_finite_difference_gradient() {
    let device = Device::flex().autodiff();
    use models::ResNetCifarDepth::ResNet20;
    let graph = models::resnet_cifar(ResNet20, IMAGE, 10, 0.25, &Device::flex(), 1).unwrap();
    let groups = ChannelGroups::new(&graph);
    let layout = GateLayout::new(&graph, &groups).unwrap();
    let macs = SoftMacs::new(&graph, &groups, &layout).unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let values: Vec<Vec<f32>> = layout
        .groups()
        .iter()
        .map(|g| (0..g.channels).map(|_| rng.random::<f32>()).collect())
        .collect();
    let make = |v: &[Vec<f32>]| -> Vec<Tensor<1>> {
        v.iter()
            .map(|x| {
                Tensor::<1>::from_data(TensorData::new(x.clone(), [x.len()]), &device)
                    .require_grad()
            })
            .collect()
    };
    let gates = make(&values);
    let kept = macs.kept(&gates).unwrap();
    let grads = kept.backward();
    for (gi, k) in [(0usize, 0usize), (1, 2), (layout.len() - 1, 1)] {
        let g = gates[gi]
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()[k];
        // Multilinear in every single gate: the central difference is exact up to rounding.
        let at = |delta: f32| {
            let mut v = values.clone();
            v[gi][k] += delta;
            scalar(macs.kept(&make(&v)).unwrap().detach())
        };
        let fd = (at(0.25) - at(-0.25)) / 0.5;
        assert!(
            (g as f64 - fd).abs() <= 1e-3 * fd.abs().max(1.0),
            "gate {gi}/{k}: autodiff {g}, finite difference {fd}"
        );
        assert!(g > 0.0, "closing a gate must lower the MACs");
    }
}

#[test]
fn gate_masks_on_hard_gates_equal_the_pruned_graph() {
    let device = Device::flex();
    let x = Tensor::<4>::random(
        [4, 3, 32, 32],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    for (name, graph) in zoo(&device) {
        let groups = ChannelGroups::new(&graph);
        let layout = GateLayout::new(&graph, &groups).unwrap();
        let open = random_gates(&layout, 0.4, 5);
        let logits: Vec<Vec<f32>> = open
            .iter()
            .map(|o| o.iter().map(|&b| if b { 1.0 } else { -1.0 }).collect())
            .collect();
        let plan = layout.plan(&open, &logits).unwrap();
        let masks = layout
            .masks(&graph, &groups, &tensors(&open, &device))
            .unwrap();
        let masked = graph.forward_masked(x.clone(), &masks).unwrap().to_vec();
        let pruned = prune(&graph, &groups, &plan)
            .unwrap()
            .forward(x.clone())
            .unwrap()
            .to_vec();
        let scale = masked.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        let diff = masked
            .iter()
            .zip(&pruned)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(diff <= 1e-4 * scale, "{name}: masked vs pruned {diff}");
    }
}

#[test]
fn a_group_with_every_gate_closed_keeps_its_strongest_channel() {
    let device = Device::flex();
    let graph = models::lenet5(IMAGE, 10, &device, 3).unwrap();
    let groups = ChannelGroups::new(&graph);
    let layout = GateLayout::new(&graph, &groups).unwrap();
    let open: Vec<Vec<bool>> = layout
        .groups()
        .iter()
        .map(|g| vec![false; g.channels])
        .collect();
    let logits: Vec<Vec<f32>> = layout
        .groups()
        .iter()
        .map(|g| (0..g.channels).map(|k| -((k as f32 - 2.0).abs())).collect())
        .collect();
    let plan = layout.plan(&open, &logits).unwrap();
    for (entry, g) in plan.entries().iter().zip(layout.groups()) {
        assert_eq!(entry.remove.len(), g.channels - 1);
        assert!(
            !entry.remove.contains(&2),
            "channel 2 has the highest logit"
        );
    }
    assert!(layout.plan(&open[1..], &logits).is_err());
}

fn tiny_setup() -> (Graph, ChannelGroups, xprune_graph::Dataset) {
    use models::ResNetCifarDepth::ResNet20;
    let device = Device::flex();
    let data = xprune_io::data::synthetic::shapes10(160, 1).unwrap();
    let graph = models::resnet_cifar(ResNet20, IMAGE, 10, 0.25, &device, 1).unwrap();
    let groups = ChannelGroups::new(&graph);
    (graph, groups, data)
}

fn quick(budget: f64) -> IspConfig {
    IspConfig {
        budget,
        predictor: PhaseConfig::new(2, 32, 2e-3),
        selector: PhaseConfig::new(2, 32, 2e-3),
        gates: PhaseConfig::new(8, 32, 0.2),
        budget_weight: 4.0,
        seed: 7,
        ..IspConfig::default()
    }
}

#[test]
fn isp_learns_gates_that_meet_the_budget_and_returns_a_valid_plan() {
    let (graph, groups, data) = tiny_setup();
    let reports = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = reports.clone();
    let isp = Isp::new(quick(0.5)).on_progress(move |p| sink.lock().unwrap().push(*p));
    let outcome = isp.run(&graph, &groups, &data).unwrap();
    assert_eq!(outcome.phases.len(), 3);
    for p in &outcome.phases {
        assert!(p.epoch_losses.iter().all(|l| l.is_finite()), "{p:?}");
    }
    let pred = &outcome.phases[0].epoch_losses;
    assert!(
        pred[pred.len() - 1] < pred[0],
        "the predictor's KL falls: {pred:?}"
    );
    assert!(
        outcome.kept_fraction <= 0.5 * 1.1 && outcome.kept_fraction > 0.05,
        "kept {}",
        outcome.kept_fraction
    );
    assert!(!outcome.plan.is_empty());
    let pruned = prune(&graph, &groups, &outcome.plan).unwrap();
    let ratio = pruned.macs() as f64 / graph.macs() as f64;
    assert!((ratio - outcome.kept_fraction).abs() < 1e-12);
    let reports = reports.lock().unwrap();
    let phases: Vec<crate::Phase> = reports.iter().map(|r| r.phase).collect();
    assert_eq!(phases.first(), Some(&crate::Phase::Predictor));
    assert_eq!(phases.last(), Some(&crate::Phase::Gates));
    let last = reports.last().unwrap();
    assert_eq!(last.step, last.steps);
    assert!(last.kept.is_some());
    // Deterministic: the same seed gives the same plan.
    let again = Isp::new(quick(0.5)).run(&graph, &groups, &data).unwrap();
    assert_eq!(again.plan, outcome.plan);
}

#[test]
fn isp_refuses_what_it_cannot_handle_with_named_errors() {
    let device = Device::flex();
    let (graph, groups, data) = tiny_setup();
    let bad = |config: IspConfig| {
        Isp::new(config)
            .run(&graph, &groups, &data)
            .unwrap_err()
            .to_string()
    };
    assert!(bad(IspConfig::with_budget(0.0)).contains("budget"));
    assert!(bad(IspConfig::with_budget(1.5)).contains("budget"));
    assert!(
        bad(IspConfig {
            sigma: (3.0, 2.0),
            ..IspConfig::default()
        })
        .contains("width range")
    );
    assert!(
        bad(IspConfig {
            feature_node: Some("fc".into()),
            ..IspConfig::default()
        })
        .contains("feature node `fc`")
    );
    let mlp = models::mlp(2, &[16], 2, &device, 0).unwrap();
    let mlp_groups = ChannelGroups::new(&mlp);
    let moons = xprune_io::data::synthetic::moons(16, 0.1, 0).unwrap();
    let err = Isp::default()
        .run(&mlp, &mlp_groups, &moons)
        .unwrap_err()
        .to_string();
    assert!(err.contains("image input"), "{err}");
    let other = xprune_io::data::synthetic::moons(16, 0.1, 0).unwrap();
    let err = Isp::default()
        .run(&graph, &groups, &other)
        .unwrap_err()
        .to_string();
    assert!(err.contains("samples of the graph's input"), "{err}");
}

#[test]
fn isp_is_a_criterion_whose_scores_are_the_gate_logits() {
    use xprune_criteria::{Criterion, ScoringContext};
    let (graph, groups, data) = tiny_setup();
    let device = Device::flex();
    let isp = Isp::new(quick(0.5));
    let ctx = ScoringContext::new(&graph, &groups, &device)
        .with_data(&data)
        .with_seed(7);
    let scores = isp.score(&ctx).unwrap();
    assert_eq!(scores.criterion(), "isp");
    let outcome = Isp::new(quick(0.5)).run(&graph, &groups, &data).unwrap();
    for (g, l) in outcome.layout.groups().iter().zip(&outcome.logits) {
        let s = scores.get(g.id).unwrap();
        let l: Vec<f64> = l.iter().map(|&v| v as f64).collect();
        assert_eq!(s, l.as_slice(), "group {}", g.name);
    }
}
