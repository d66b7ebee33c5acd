//! Scoring on several devices: how LRP and Shapley scoring time scales with the devices the
//! work is dealt to (`Pruner::devices`), on ResNet-20 (CIFAR shapes, width 0.5) with 128
//! reference samples of the Shapes-10 set.
//!
//! Rows: one flex device (the baseline), two flex workers (two threads on the same CPU,
//! which shows what splitting costs or gains when the device itself already uses every core),
//! and with `--backend wgpu` also flex + wgpu and wgpu alone. Every configuration is run in
//! turn with the baseline (fastest of `reps` each) and the scores are checked equal to the
//! baseline's (exactly for flex workers, within 1e-3 relative with wgpu).
//!
//! `cargo bench -p xprune-benches --profile dev --bench devices -- [--quick] [--backend
//! flex,wgpu] [--criteria lrp,shapley]`

use std::time::Instant;
use xprune::burn::tensor::Device;
use xprune::io::data::synthetic::shapes10;
use xprune::models::{ResNetCifarDepth, resnet_cifar};
use xprune::{Criterion, FeatureShape, LrpCriterion, Pruner, Scores, Shapley};
use xprune_benches::{BenchOptions, Table, device, machine_line};

fn max_rel(a: &Scores, b: &Scores) -> f64 {
    let mut worst: f64 = 0.0;
    for (_, g) in a.iter() {
        let other = b.by_name(&g.name).expect("same groups");
        let scale = g
            .values
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()))
            .max(1e-12);
        for (x, y) in g.values.iter().zip(other) {
            worst = worst.max((x - y).abs() / scale);
        }
    }
    worst
}

fn main() {
    let opts = BenchOptions::from_args();
    let (_, reps) = opts.reps();
    let reps = reps.clamp(2, 5);
    let flex = Device::flex();
    let wgpu = opts
        .backends
        .iter()
        .find(|b| b.name() == "wgpu")
        .map(|b| device(*b));
    let samples = if opts.quick { 32 } else { 128 };
    println!(
        "# scoring on several devices\n{}, ResNet-20 width 0.5, {samples} reference samples, \
         batch 16, fastest of {reps} runs (every configuration in turn with one flex device)",
        machine_line()
    );
    let graph = resnet_cifar(
        ResNetCifarDepth::ResNet20,
        FeatureShape::spatial(3, 32, 32),
        10,
        0.5,
        &flex,
        1,
    )
    .expect("model builds");
    let data = shapes10(samples, 2).expect("data");
    let chosen: Vec<String> = match opts.rest.iter().position(|a| a == "--criteria") {
        Some(i) => opts
            .rest
            .get(i + 1)
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        None => vec!["lrp".into(), "shapley".into()],
    };
    let criteria: Vec<(&str, Box<dyn Criterion>)> = vec![
        ("lrp", Box::new(LrpCriterion::default())),
        (
            "shapley (4 permutations)",
            Box::new(Shapley {
                exact_max_channels: 0,
                ..Shapley::with_permutations(4)
            }),
        ),
    ];
    let criteria: Vec<_> = criteria
        .into_iter()
        .filter(|(name, _)| chosen.iter().any(|c| name.starts_with(c.as_str())))
        .collect();
    let mut configs: Vec<(&str, Vec<Device>)> = vec![("flex x 2", vec![flex.clone(); 2])];
    if let Some(w) = &wgpu {
        configs.push(("flex + wgpu", vec![flex.clone(), w.clone()]));
        configs.push(("wgpu", vec![w.clone()]));
    }
    let mut table = Table::new(&[
        "criterion",
        "devices",
        "s",
        "one flex s",
        "speed-up",
        "max rel. diff",
    ]);
    for (name, criterion) in &criteria {
        let run = |devices: &[Device]| {
            let pruner = Pruner::new(criterion.as_ref())
                .batch_size(16)
                .devices(devices.to_vec());
            let t = Instant::now();
            let (_, scores) = pruner.score(&graph, Some(&data)).expect("scores");
            (t.elapsed().as_secs_f64(), scores)
        };
        let (_, reference) = run(&[]); // warm-up, and the reference scores
        for (label, devices) in &configs {
            let (mut best, mut best_one) = (f64::INFINITY, f64::INFINITY);
            let mut diff: f64 = 0.0;
            for _ in 0..reps {
                let (t, scores) = run(devices);
                best = best.min(t);
                diff = diff.max(max_rel(&reference, &scores));
                best_one = best_one.min(run(&[]).0);
            }
            let row = vec![
                name.to_string(),
                label.to_string(),
                format!("{best:.2}"),
                format!("{best_one:.2}"),
                format!("{:.2}", best_one / best),
                format!("{diff:.1e}"),
            ];
            eprintln!("{}", row.join(" | "));
            table.row(row);
        }
    }
    println!("\n{table}\n{}", table.markdown());
}
