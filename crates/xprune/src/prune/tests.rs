//! Tests of selection and the pruner.

use super::*;
use crate::criteria::{RandomCriterion, Scores, WeightNorm};
use burn::tensor::{Device, Distribution, Tensor};
use xprune_graph::{FeatureShape, Graph};
use xprune_models::{ResNetCifarDepth, VggDepth, mlp, resnet_cifar, vgg};
use xprune_surgery::{ChannelGroups, count};

fn device() -> Device {
    Device::flex()
}

/// Scores equal to the channel index (channel 0 least important) in every group.
fn index_scores(groups: &ChannelGroups) -> Scores {
    let mut s = Scores::new("index");
    for g in groups.prunable() {
        s.insert(
            groups,
            g.id(),
            (0..g.channels()).map(|k| k as f64).collect(),
        )
        .unwrap();
    }
    s
}

fn small_vgg() -> Graph {
    vgg(
        VggDepth::Vgg11,
        true,
        FeatureShape::spatial(3, 32, 32),
        10,
        0.125,
        &device(),
        1,
    )
    .unwrap()
}

#[test]
fn global_ratio_removes_the_lowest_channels() {
    let g = mlp(2, &[8, 4], 3, &device(), 0).unwrap();
    let groups = ChannelGroups::new(&g);
    let mut s = Scores::new("hand");
    let a = groups.find("fc1").unwrap().id();
    let b = groups.find("fc2").unwrap().id();
    s.insert(&groups, a, vec![0.1, 5.0, 0.2, 6.0, 7.0, 8.0, 9.0, 0.3])
        .unwrap();
    s.insert(&groups, b, vec![0.15, 4.0, 4.0, 4.0]).unwrap();
    // 12 channels * 0.34 = 4 channels: 0.1, 0.15, 0.2, 0.3
    let plan = select(&g, &groups, &s, &Selection::ratio(0.34)).unwrap();
    let r = plan.resolve(&groups).unwrap();
    assert_eq!(r.removed(a), &[0, 2, 7]);
    assert_eq!(r.removed(b), &[0]);
    // per group: 34% of 8 = 2, of 4 = 1
    let plan = select(
        &g,
        &groups,
        &s,
        &Selection::ratio(0.34).scope(Scope::PerGroup),
    )
    .unwrap();
    let r = plan.resolve(&groups).unwrap();
    assert_eq!(r.removed(a), &[0, 2]);
    assert_eq!(r.removed(b), &[0]);
    // L1 normalisation changes the global ranking: fc2's scores are then comparable.
    let plan = select(
        &g,
        &groups,
        &s,
        &Selection::ratio(0.34).normalization(Normalization::Max),
    )
    .unwrap();
    assert_eq!(plan.removed_channels(), 4);
}

#[test]
fn floors_and_rounding_hold() {
    let g = small_vgg();
    let groups = ChannelGroups::new(&g);
    let s = index_scores(&groups);
    let sel = Selection::ratio(0.9).min_channels(3).round_to(4);
    let plan = select(&g, &groups, &s, &sel).unwrap();
    let pruned = xprune_surgery::prune(&g, &groups, &plan).unwrap();
    let after = ChannelGroups::new(&pruned);
    for grp in after.prunable() {
        assert!(
            grp.channels() >= 3,
            "{} keeps {}",
            grp.name(),
            grp.channels()
        );
        let before = groups.find(grp.name()).unwrap().channels();
        assert!(
            grp.channels() == before || grp.channels() % 4 == 0,
            "{} keeps {}",
            grp.name(),
            grp.channels()
        );
    }
}

#[test]
fn budgets_are_met_exactly() {
    let g = resnet_cifar(
        ResNetCifarDepth::ResNet20,
        FeatureShape::spatial(3, 32, 32),
        10,
        0.5,
        &device(),
        2,
    )
    .unwrap();
    let groups = ChannelGroups::new(&g);
    let s = index_scores(&groups);
    let before = count(&g);
    for (target, scope) in [
        (PruneTarget::MacBudget(0.5), Scope::Global),
        (PruneTarget::MacBudget(0.6), Scope::PerGroup),
        (PruneTarget::ParamBudget(0.4), Scope::Global),
    ] {
        let sel = Selection::default().target(target).scope(scope);
        let plan = select(&g, &groups, &s, &sel).unwrap();
        let pruned = xprune_surgery::prune(&g, &groups, &plan).unwrap();
        let after = count(&pruned);
        let resolved = plan.resolve(&groups).unwrap();
        // the structural estimate equals the real count
        assert_eq!(
            counts_after(&g, &groups, &resolved),
            (after.params, after.macs)
        );
        match target {
            PruneTarget::MacBudget(b) => assert!(after.macs as f64 <= b * before.macs as f64),
            PruneTarget::ParamBudget(b) => assert!(after.params as f64 <= b * before.params as f64),
            _ => unreachable!(),
        }
    }
}

#[test]
fn bad_configurations_are_errors_and_leave_the_model_alone() {
    let g = small_vgg();
    let groups = ChannelGroups::new(&g);
    let s = index_scores(&groups);
    for sel in [
        Selection::ratio(1.0),
        Selection::ratio(-0.1),
        Selection::ratio(f64::NAN),
        Selection::default().target(PruneTarget::MacBudget(0.0)),
        Selection::ratio(0.5).min_channels(0),
        Selection::ratio(0.5).round_to(0),
    ] {
        assert!(
            matches!(select(&g, &groups, &s, &sel), Err(PruneError::Config(_))),
            "{sel:?}"
        );
    }
    let mut pruner = Pruner::new(WeightNorm::l1()).selection(Selection::ratio(1.5));
    let before = count(&g);
    assert!(pruner.one_shot(&g, None).is_err());
    assert_eq!(count(&g), before);
    // Scores from another graph are rejected.
    let other = mlp(2, &[8], 3, &device(), 0).unwrap();
    let other_groups = ChannelGroups::new(&other);
    let err = select(
        &g,
        &groups,
        &index_scores(&other_groups),
        &Selection::ratio(0.3),
    )
    .unwrap_err();
    assert!(err.to_string().contains("score"), "{err}");
}

#[test]
fn one_shot_and_iterative_pruning() {
    let g = small_vgg();
    let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device());
    let mut one = Pruner::new(WeightNorm::l1()).selection(Selection::ratio(0.5));
    let out = one.one_shot(&g, None).unwrap();
    assert_eq!(out.steps.len(), 1);
    assert!(out.mac_reduction() > 1.5, "{}", out.mac_reduction());
    assert_eq!(out.graph.forward(x.clone()).unwrap().dims(), vec![2, 10]);
    // The removed original channels, replayed as one plan on the original graph, give the
    // same network.
    let groups = ChannelGroups::new(&g);
    let replay = xprune_surgery::prune(&g, &groups, &out.original_plan()).unwrap();
    let a = out.graph.forward(x.clone()).unwrap().to_vec();
    let b = replay.forward(x.clone()).unwrap().to_vec();
    assert_eq!(a, b);

    let mut calls = 0;
    let mut it = Pruner::new(RandomCriterion)
        .selection(Selection::ratio(0.5))
        .seed(3);
    let out = it
        .iterative(&g, None, 4, |graph, step| {
            calls += 1;
            assert_eq!(step.step, calls);
            Ok(graph)
        })
        .unwrap();
    assert_eq!(calls, 4);
    assert_eq!(out.steps.len(), 4);
    let total: usize = ChannelGroups::new(&g)
        .prunable()
        .map(|g| g.channels())
        .sum();
    let removed: usize = out.removed.values().map(|v| v.len()).sum();
    assert_eq!(removed, (0.5 * total as f64).round() as usize);
    let replay = xprune_surgery::prune(&g, &groups, &out.original_plan()).unwrap();
    assert_eq!(count(&replay), out.pruned);
    // A failing fine-tune callback is an error naming the step.
    let mut failing = Pruner::new(WeightNorm::l1()).selection(Selection::ratio(0.3));
    let err = failing
        .iterative(&g, None, 2, |_, _| Err("diverged".into()))
        .unwrap_err();
    assert!(
        err.to_string().contains("step 1") && err.to_string().contains("diverged"),
        "{err}"
    );
}

#[test]
fn gradual_pruning_removes_channels_while_training() {
    use crate::criteria::FeatureRelevance;
    use crate::train::{Optimizer, TrainConfig, evaluate};
    use xprune_io::data::synthetic::moons;
    let train_set = moons(400, 0.1, 1).unwrap();
    let test_set = moons(400, 0.1, 2).unwrap();
    let g = mlp(2, &[32, 32], 2, &device(), 3).unwrap();
    let config = TrainConfig::new(12, 32, 0.01)
        .optimizer(Optimizer::adam())
        .seed(4);
    let reference = train_set.per_class(10, 0).unwrap();
    let mut events = Vec::new();
    let mut pruner = Pruner::new(FeatureRelevance::default())
        .selection(Selection::default().min_channels(4))
        .on_progress(move |p| {
            if let PruneProgress::Pruned { step, removed, .. } = p {
                events.push((*step, *removed));
            }
        });
    let before = g.clone();
    let out = pruner
        .gradual(
            &g,
            &train_set,
            Some(&reference),
            &config,
            GradualSchedule::new(2, 8, 6),
        )
        .unwrap();
    // Events after epochs 2, 4, 6, 8: 4 x 6 channels.
    assert_eq!(out.outcome.steps.len(), 4);
    for (i, s) in out.outcome.steps.iter().enumerate() {
        assert_eq!(s.step, i + 1);
        assert_eq!(s.plan.removed_channels(), 6);
        assert_eq!(
            s.before.params,
            if i == 0 {
                count(&g).params
            } else {
                out.outcome.steps[i - 1].after.params
            }
        );
    }
    let groups = ChannelGroups::new(&out.outcome.graph);
    let left: usize = groups.prunable().map(|g| g.channels()).sum();
    assert_eq!(left, 64 - 24);
    let removed: usize = out.outcome.removed.values().map(Vec::len).sum();
    assert_eq!(removed, 24);
    assert!(groups.prunable().all(|g| g.channels() >= 4));
    assert_eq!(out.outcome.pruned, count(&out.outcome.graph));
    assert!(out.outcome.param_reduction() > 1.0);
    // Training went on for all 12 epochs on the smaller model and learned the task.
    assert_eq!(out.trained.history.len(), 12);
    let acc = evaluate(&out.outcome.graph, &test_set, 400)
        .unwrap()
        .accuracy;
    assert!(acc > 0.9, "accuracy after gradual pruning {acc}");
    // The caller's graph is untouched.
    assert_eq!(count(&g), count(&before));
    // Bad schedules are errors.
    for bad in [
        GradualSchedule::new(0, 8, 6),
        GradualSchedule::new(2, 20, 6),
        GradualSchedule::new(2, 8, 0),
    ] {
        let e = pruner
            .gradual(&g, &train_set, None, &config, bad)
            .unwrap_err();
        assert!(matches!(e, PruneError::Config(_)), "{e}");
    }
    // Floors saturate the schedule: events beyond them remove nothing.
    let mut strict = Pruner::new(WeightNorm::l1()).selection(Selection::default().min_channels(30));
    let out = strict
        .gradual(&g, &train_set, None, &config, GradualSchedule::new(2, 8, 6))
        .unwrap();
    let per_event: Vec<usize> = out
        .outcome
        .steps
        .iter()
        .map(|s| s.plan.removed_channels())
        .collect();
    assert_eq!(per_event, vec![4, 0, 0, 0]);
    assert!(
        ChannelGroups::new(&out.outcome.graph)
            .prunable()
            .all(|g| g.channels() == 30)
    );
}

#[test]
fn fractions_of_groups_round_robustly() {
    // 0.29 * 100 = 28.999999999999996 in floating point.
    assert_eq!(fraction_of(0.29, 100), 29);
    assert_eq!(fraction_of(0.57, 100), 57);
    assert_eq!(fraction_of(0.35, 10), 3);
    assert_eq!(fraction_of(0.5, 10), 5);
    assert_eq!(fraction_of(0.999, 10), 9);
    assert_eq!(fraction_of(0.0, 10), 0);
    assert_eq!(fraction_of(f64::NAN, 10), 0);
    assert_eq!(fraction_of(2.0, 10), 10);
    let g = mlp(2, &[100], 3, &device(), 0).unwrap();
    let groups = ChannelGroups::new(&g);
    let s = index_scores(&groups);
    let plan = select(
        &g,
        &groups,
        &s,
        &Selection::ratio(0.29).scope(Scope::PerGroup),
    )
    .unwrap();
    assert_eq!(plan.removed_channels(), 29);
}

#[test]
fn iterative_per_group_pruning_reaches_the_one_shot_count() {
    let g = mlp(2, &[10, 7], 3, &device(), 0).unwrap();
    let sel = Selection::ratio(0.5).scope(Scope::PerGroup);
    let one = Pruner::new(WeightNorm::l1())
        .selection(sel.clone())
        .one_shot(&g, None)
        .unwrap();
    let it = Pruner::new(WeightNorm::l1())
        .selection(sel)
        .iterative(&g, None, 5, |graph, _| Ok(graph))
        .unwrap();
    let lost = |out: &PruneOutcome, name: &str| out.removed.get(name).map_or(0, Vec::len);
    // 0.5 of 10 is 5 and of 7 is 3, in one shot as in five steps.
    assert_eq!(lost(&one, "fc1"), 5);
    assert_eq!(lost(&one, "fc2"), 3);
    assert_eq!(lost(&it, "fc1"), 5);
    assert_eq!(lost(&it, "fc2"), 3);
    // Cumulative targets of the original sizes: 1, 2, 3, 4, 5 of fc1 and 0, 1, 2, 2, 3 of
    // fc2 after each step.
    let per_step: Vec<usize> = it.steps.iter().map(|s| s.plan.removed_channels()).collect();
    assert_eq!(per_step, vec![1, 2, 2, 1, 2]);
    assert_eq!(it.pruned, one.pruned);
}

#[test]
fn gradual_pruning_per_group_removes_from_every_group() {
    use crate::train::{Optimizer, TrainConfig};
    use xprune_io::data::synthetic::moons;
    let train_set = moons(200, 0.1, 1).unwrap();
    let g = mlp(2, &[16, 12], 2, &device(), 3).unwrap();
    let config = TrainConfig::new(6, 32, 0.01)
        .optimizer(Optimizer::adam())
        .seed(4);
    let mut pruner = Pruner::new(WeightNorm::l1())
        .selection(Selection::default().scope(Scope::PerGroup).min_channels(8));
    let out = pruner
        .gradual(&g, &train_set, None, &config, GradualSchedule::new(2, 6, 3))
        .unwrap();
    // Three events of 3 channels per group; both stop at their floor of 8.
    let per_event: Vec<usize> = out
        .outcome
        .steps
        .iter()
        .map(|s| s.plan.removed_channels())
        .collect();
    assert_eq!(per_event, vec![6, 4, 2]);
    assert_eq!(out.outcome.removed["fc1"].len(), 8);
    assert_eq!(out.outcome.removed["fc2"].len(), 4);
    assert_eq!(out.trained.history.len(), 6);
}

#[test]
fn floors_that_block_the_target_are_errors() {
    let g = mlp(2, &[8, 4], 3, &device(), 0).unwrap();
    let groups = ChannelGroups::new(&g);
    let s = index_scores(&groups);
    // Per group: fc1 (8 channels) can lose its 2 while keeping 6, fc2 (4) cannot lose 1.
    let sel = Selection::ratio(0.25)
        .scope(Scope::PerGroup)
        .min_channels(6);
    let err = select(&g, &groups, &s, &sel).unwrap_err();
    assert!(matches!(err, PruneError::Unreachable(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("`fc2` (4 channels) should lose 1 but can lose 0"),
        "{text}"
    );
    assert!(!text.contains("`fc1`"), "{text}");
    // Globally: 6 of 12 should go, the floor of 5 lets 3 go (all from fc1).
    let sel = Selection::ratio(0.5).min_channels(5);
    let err = select(&g, &groups, &s, &sel).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("6 channels should go") && text.contains("only 3 can"),
        "{text}"
    );
    assert!(text.contains("`fc2` (4 channels)"), "{text}");
    // The pruner reports it and leaves the model alone.
    let before = count(&g);
    let err = Pruner::new(WeightNorm::l1())
        .selection(sel)
        .one_shot(&g, None)
        .unwrap_err();
    assert!(matches!(err, PruneError::Unreachable(_)), "{err}");
    assert_eq!(count(&g), before);
    // A floor that does not bind is no error.
    let sel = Selection::ratio(0.25).min_channels(5);
    assert_eq!(select(&g, &groups, &s, &sel).unwrap().removed_channels(), 3);
}
