//! Scoring on several devices gives the single-device scores: exactly on devices of one kind
//! (the work is dealt round-robin and folded in order), within float tolerance for flex with
//! the software-Vulkan wgpu device, and the same selection either way.

use xprune::burn::tensor::Device;
use xprune::io::data::synthetic::shapes10;
use xprune::models::{ResNetCifarDepth, resnet_cifar};
use xprune::prune::select;
use xprune::{
    Criterion, FeatureRelevance, FeatureShape, Gradient, Graph, LrpCriterion, Pruner, Scores,
    Selection, Shapley, Taylor,
};
use xprune_tests::wgpu_device;

fn model() -> Graph {
    resnet_cifar(
        ResNetCifarDepth::ResNet20,
        FeatureShape::spatial(3, 32, 32),
        10,
        0.25,
        &Device::flex(),
        7,
    )
    .unwrap()
}

/// The criteria that split work across devices, by name. ResNet-20 at width 0.25 has groups
/// of 4, 8 and 16 channels: Shapley solves the first exactly and samples permutations of the
/// others.
fn criteria() -> Vec<(&'static str, Box<dyn Criterion>)> {
    vec![
        ("lrp", Box::new(LrpCriterion::default())),
        ("frs", Box::new(FeatureRelevance::default())),
        ("gradient", Box::new(Gradient::default())),
        ("taylor", Box::new(Taylor::default())),
        (
            "shapley",
            Box::new(Shapley {
                antithetic: true,
                truncation: Some(0.05),
                exact_max_channels: 4,
                ..Shapley::with_permutations(2)
            }),
        ),
        (
            "shapley-adaptive",
            Box::new(Shapley {
                permutations: 2,
                max_permutations: 4,
                exact_max_channels: 4,
                ..Shapley::default()
            }),
        ),
    ]
}

fn score(graph: &Graph, c: &dyn Criterion, devices: Vec<Device>) -> Scores {
    let data = shapes10(12, 3).unwrap();
    // 12 samples in batches of 5: 3 batches, uneven shares.
    let pruner = Pruner::new(c).batch_size(5).seed(5).devices(devices);
    pruner.score(graph, Some(&data)).unwrap().1
}

fn max_rel(a: &Scores, b: &Scores) -> f64 {
    let mut worst: f64 = 0.0;
    for (_, group) in a.iter() {
        let (name, values) = (&group.name, &group.values);
        let other = b.by_name(name).expect("same groups");
        let scale = values.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
        for (x, y) in values.iter().zip(other) {
            worst = worst.max((x - y).abs() / scale);
        }
    }
    worst
}

#[test]
fn several_flex_devices_give_the_single_device_scores_exactly() {
    let graph = model();
    let flex = Device::flex();
    for (name, c) in criteria() {
        let one = score(&graph, c.as_ref(), Vec::new());
        for n in [2, 3] {
            let many = score(&graph, c.as_ref(), vec![flex.clone(); n]);
            assert_eq!(one, many, "{name} on {n} devices");
        }
    }
}

#[test]
fn flex_with_wgpu_gives_the_flex_scores_and_selection() {
    let Some(wgpu) = wgpu_device() else { return };
    let graph = model();
    let groups = xprune::ChannelGroups::new(&graph);
    let flex = Device::flex();
    // LRP, Taylor (the gradient criteria's shared pass) and Shapley: the others split the same
    // way, and the software Vulkan device is slow to compile their kernels.
    let chosen = criteria()
        .into_iter()
        .filter(|(name, _)| ["lrp", "taylor", "shapley"].contains(name));
    for (name, c) in chosen {
        let one = score(&graph, c.as_ref(), Vec::new());
        let mixed = score(&graph, c.as_ref(), vec![flex.clone(), wgpu.clone()]);
        let rel = max_rel(&one, &mixed);
        assert!(
            rel < 1e-3,
            "{name}: flex+wgpu differs from flex by {rel:.2e}"
        );
        for ratio in [0.3, 0.5] {
            let sel = Selection::ratio(ratio);
            let a = select(&graph, &groups, &one, &sel).unwrap();
            let b = select(&graph, &groups, &mixed, &sel).unwrap();
            assert_eq!(a, b, "{name}: selection at {ratio}");
        }
    }
}

#[test]
fn one_shot_pruning_on_several_devices_removes_the_same_channels() {
    let graph = model();
    let flex = Device::flex();
    let data = shapes10(12, 3).unwrap();
    let run = |devices: Vec<Device>| {
        Pruner::new(LrpCriterion::default())
            .selection(Selection::ratio(0.4))
            .batch_size(4)
            .devices(devices)
            .one_shot(&graph, Some(&data))
            .unwrap()
    };
    let one = run(Vec::new());
    let two = run(vec![flex.clone(), flex]);
    assert_eq!(one.removed, two.removed);
    assert_eq!(one.pruned, two.pruned);
}
