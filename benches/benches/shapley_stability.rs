//! How stable Shapley rankings are, and what stability costs: the Shapes-10 CNN of
//! `docs/cli.md` (conv 16-32-32 with batch norm, fc 64), trained here, scored with 5 images
//! per class. Per group, a reference estimate with many antithetic draws is compared
//! (Spearman correlation of the values) with fixed sampling (the old default, 5 pairs) and
//! with the default adaptive sampling, over several seeds; the table gives the correlations,
//! the draws, the coalition evaluations (each a masked pass over the reference images) and
//! the time.
//!
//! `cargo bench -p xprune-benches --bench shapley_stability -- [--quick]`

use std::time::Instant;
use xprune::criteria::{Criterion, Scores, ScoringContext, Shapley};
use xprune::graph::tensor_util::to_vec_int;
use xprune::io::data::synthetic::shapes10;
use xprune::prune::select;
use xprune::surgery::ChannelGroups;
use xprune::train::{LrSchedule, Optimizer, ScheduleUnit, TrainConfig, evaluate, train};
use xprune::{
    ChannelMasks, Conv2dSpec, Dataset, FeatureShape, Graph, GraphBuilder, Scope, Selection,
};
use xprune_benches::{BenchOptions, Table, device, machine_line};

/// The example CNN of `docs/cli.md`, trained on `images` Shapes-10 images for `epochs`.
fn shapes_cnn(dev: &xprune::burn::tensor::Device, images: usize, epochs: usize) -> Graph {
    let mut b = GraphBuilder::new(FeatureShape::spatial(3, 32, 32), dev).seed(0);
    let mut x = b.input();
    for (i, c) in [16, 32, 32].into_iter().enumerate() {
        x = b
            .conv2d(
                format!("conv{}", i + 1),
                x,
                Conv2dSpec::new(c, 3).padding(1),
            )
            .unwrap();
        x = b.batch_norm(format!("bn{}", i + 1), x).unwrap();
        x = b.relu(format!("relu{}", i + 1), x).unwrap();
        x = b.max_pool2d(format!("pool{}", i + 1), x, 2, 2).unwrap();
    }
    let x = b.flatten("flatten", x).unwrap();
    let x = b.linear("fc1", x, 64).unwrap();
    let x = b.relu("relu4", x).unwrap();
    let out = b.linear("fc2", x, 10).unwrap();
    let config = TrainConfig::new(epochs, 64, 3e-3)
        .optimizer(Optimizer::adam())
        .schedule(LrSchedule::Cosine { min_lr: 1e-4 }, ScheduleUnit::Step)
        .drop_last(true)
        .seed(0);
    train(
        &b.build(out).unwrap(),
        &shapes10(images, 1).unwrap(),
        &config,
    )
    .unwrap()
    .graph
}

/// Ranks (0 = smallest), ties by index.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|a, b| v[*a].total_cmp(&v[*b]).then(a.cmp(b)));
    let mut r = vec![0.0; v.len()];
    for (rank, i) in idx.into_iter().enumerate() {
        r[i] = rank as f64;
    }
    r
}

/// Spearman correlation: the Pearson correlation of the ranks.
fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma) * (x - ma)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb) * (y - mb)).sum();
    cov / (va * vb).sqrt()
}

fn main() {
    let opts = BenchOptions::from_args();
    let (images, epochs, seeds, reference_draws) = if opts.quick {
        (1000, 2, 2, 64)
    } else {
        (4000, 8, 5, 256)
    };
    let dev = device(opts.backends[0]);
    let t = Instant::now();
    let graph = shapes_cnn(&dev, images, epochs);
    let accuracy = evaluate(&graph, &shapes10(1000, 3).unwrap(), 100)
        .unwrap()
        .accuracy;
    println!(
        "# Shapley stability on the Shapes-10 CNN ({images} images, {epochs} epochs, test accuracy {accuracy:.3}, trained in {:.0} s)",
        t.elapsed().as_secs_f64()
    );
    println!("# {}", machine_line());
    let reference = shapes10(200, 2).unwrap().per_class(5, 0).unwrap();
    let groups = ChannelGroups::new(&graph);
    let score = |c: &Shapley, seed: u64| -> (Scores, f64) {
        let ctx = ScoringContext::new(&graph, &groups, &dev)
            .with_data(&reference)
            .with_batch_size(reference.len())
            .with_seed(seed);
        let t = Instant::now();
        let s = c.score(&ctx).unwrap();
        (s, t.elapsed().as_secs_f64())
    };
    let fixed = |p: usize| Shapley {
        tolerance: None,
        exact_max_channels: 0,
        ..Shapley::with_permutations(p)
    };
    let adaptive = Shapley {
        exact_max_channels: 0,
        ..Shapley::default()
    };
    let (truth, truth_s) = score(&fixed(reference_draws), 1000);
    println!("# reference: {reference_draws} antithetic pairs per group, {truth_s:.0} s");
    let mut table = Table::new(&[
        "sampling",
        "group",
        "channels",
        "Spearman with reference (mean, min)",
        "draws (mean)",
        "evaluations (mean)",
        "time per scoring, all groups (s)",
    ]);
    for (label, criterion) in [
        ("fixed, 5 pairs".to_string(), fixed(5)),
        (
            format!(
                "adaptive, tolerance {}, {}..{} pairs",
                adaptive.tolerance.unwrap(),
                adaptive.permutations,
                adaptive.max_permutations
            ),
            adaptive.clone(),
        ),
    ] {
        let runs: Vec<(Scores, f64)> = (0..seeds).map(|s| score(&criterion, s as u64)).collect();
        let time = runs.iter().map(|r| r.1).sum::<f64>() / seeds as f64;
        for (id, g) in truth.iter() {
            let rho: Vec<f64> = runs
                .iter()
                .map(|(s, _)| spearman(s.get(id).unwrap(), &g.values))
                .collect();
            let u: Vec<_> = runs
                .iter()
                .map(|(s, _)| s.uncertainty(id).unwrap())
                .collect();
            let mean = |f: &dyn Fn(usize) -> f64| (0..seeds).map(f).sum::<f64>() / seeds as f64;
            table.row(vec![
                label.clone(),
                g.name.clone(),
                g.values.len().to_string(),
                format!(
                    "{:.3}, {:.3}",
                    rho.iter().sum::<f64>() / seeds as f64,
                    rho.iter().cloned().fold(1.0, f64::min)
                ),
                format!("{:.0}", mean(&|i| u[i].draws as f64)),
                format!("{:.0}", mean(&|i| u[i].evaluations as f64)),
                format!("{time:.1}"),
            ]);
        }
    }
    println!("{}", table.markdown());
    equal_accuracy_check(&graph, &groups, &truth);
}

/// Accuracy of `graph` on `data` with `masks` applied.
fn masked_accuracy(graph: &Graph, data: &Dataset, masks: &ChannelMasks) -> f64 {
    let dev = graph.device();
    let mut correct = 0;
    for idx in data.batch_indices(100) {
        let b = data.batch(&idx, &dev).unwrap();
        let logits = graph.forward_masked(b.inputs, masks).unwrap().flatten();
        let pred = to_vec_int(&logits.argmax(1).reshape([idx.len()]));
        let labels = to_vec_int(&b.labels);
        correct += pred.iter().zip(&labels).filter(|(p, l)| p == l).count();
    }
    correct as f64 / data.len() as f64
}

/// The reported oddity (the same accuracy at 30 % and 50 % pruned per layer with Shapley
/// scores): per ratio, the channels removed per group, whether the removed sets grow with the
/// ratio, how many removed channels have a value of exactly zero, and the accuracy.
fn equal_accuracy_check(graph: &Graph, groups: &ChannelGroups, scores: &Scores) {
    let test = shapes10(1000, 3).unwrap();
    let mut table = Table::new(&[
        "ratio",
        "removed per group",
        "of which value exactly 0",
        "nested in the next ratio",
        "accuracy",
    ]);
    let ratios = [0.1, 0.3, 0.5, 0.7];
    let plans: Vec<_> = ratios
        .iter()
        .map(|r| {
            let sel = Selection {
                scope: Scope::PerGroup,
                ..Selection::ratio(*r)
            };
            select(graph, groups, scores, &sel).unwrap()
        })
        .collect();
    for (i, plan) in plans.iter().enumerate() {
        let resolved = plan.resolve(groups).unwrap();
        let mut removed = Vec::new();
        let mut zeros = Vec::new();
        for (id, g) in scores.iter() {
            let r = resolved.removed(id);
            removed.push(format!("{} {}/{}", g.name, r.len(), g.values.len()));
            zeros.push(
                r.iter()
                    .filter(|k| g.values[**k] == 0.0)
                    .count()
                    .to_string(),
            );
        }
        let nested = plans.get(i + 1).map_or("-".to_string(), |next| {
            let next = next.resolve(groups).unwrap();
            scores
                .iter()
                .all(|(id, _)| {
                    resolved
                        .removed(id)
                        .iter()
                        .all(|k| next.removed(id).contains(k))
                })
                .to_string()
        });
        let masks = plan.masks(graph, groups, &graph.device()).unwrap();
        table.row(vec![
            ratios[i].to_string(),
            removed.join(", "),
            zeros.join(", "),
            nested,
            format!("{:.4}", masked_accuracy(graph, &test, &masks)),
        ]);
    }
    println!("# per-group pruning with the reference Shapley values, masked, test set of 1000");
    println!("{}", table.markdown());
}
