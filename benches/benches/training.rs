//! Fine-tuning on `burn-train`: what one epoch of training costs in Burn's `Learner` (through
//! xprune's `Trainer`, as gradual pruning and fine-tuning after pruning use it), next to a
//! bare Burn loop (data loader, `TrainStep::step`, `ModuleOptimizer::step`, nothing else) on
//! the same model, data and optimizer, and how it scales with the devices of `burn-train`'s
//! multi-device strategy (`Trainer::devices`).
//!
//! LeNet-5 on Shapes-10 (3x32x32, 10 classes), Adam 2e-3, batch 32. Rows: the bare loop, the
//! `Trainer` on one flex device, on two flex devices (two workers on the same two CPU cores:
//! what splitting costs when one device already uses every core), and with `--backend wgpu`
//! also wgpu alone and flex + wgpu. Each row reports the fastest epoch of `reps` runs, the
//! ratio to the bare loop and the test accuracy after the last run (one epoch from the same
//! initial weights and seed, so the rows train the same amount).
//!
//! `cargo bench -p xprune-benches --profile dev --bench training -- [--quick] [--backend
//! flex,wgpu]`

use std::sync::Arc;
use std::time::Instant;
use xprune::burn::module::Module;
use xprune::burn::tensor::Device;
use xprune::graph::burn_train::TrainStep;
use xprune::graph::data_loader;
use xprune::io::data::synthetic::{SHAPES10_SHAPE, shapes10};
use xprune::models::lenet5;
use xprune::train::{Optimizer, TrainConfig, Trainer, evaluate};
use xprune::{Dataset, Graph};
use xprune_benches::{BenchOptions, Table, device, machine_line};

/// One epoch of a bare Burn loop; returns the seconds it took and the trained graph.
fn bare_epoch(
    graph: &Graph,
    data: &Arc<Dataset>,
    batch: usize,
    lr: f64,
    seed: u64,
) -> (f64, Graph) {
    let device = graph.device().without_autodiff();
    device.seed(seed);
    device.clone().autodiff().seed(seed);
    let mut optim = Optimizer::adam().init();
    let start = Instant::now();
    // As the `Learner` does: the module in training mode (on its device's autodiff twin),
    // the batches on the plain device.
    let mut model = graph.clone().valid().train();
    let loader = data_loader(data, batch, false, Some(seed), &device);
    for batch in loader.iter() {
        let out = TrainStep::step(&model, batch.expect("batch"));
        model = optim.step(lr, model, out.grads);
    }
    let model = model.valid();
    (start.elapsed().as_secs_f64(), model)
}

fn main() {
    let opts = BenchOptions::from_args();
    let (_, reps) = opts.reps();
    let reps = reps.clamp(2, 3);
    let flex = Device::flex();
    let wgpu = opts
        .backends
        .iter()
        .find(|b| b.name() == "wgpu")
        .map(|b| device(*b));
    let (n_train, n_test) = if opts.quick {
        (2000, 1000)
    } else {
        (8000, 2000)
    };
    let (batch, lr, seed) = (32, 2e-3, 1);
    println!(
        "# fine-tuning on burn-train\n{}, LeNet-5 on Shapes-10 ({n_train} training samples, \
         {n_test} test), Adam {lr}, batch {batch}, one epoch, fastest of {reps} runs",
        machine_line()
    );
    let train_set = shapes10(n_train, 1).expect("training data");
    let test_set = shapes10(n_test, 2).expect("test data");
    let graph = lenet5(SHAPES10_SHAPE, 10, &flex, 0).expect("model builds");
    let shared = Arc::new(train_set.clone());
    let config = TrainConfig::new(1, batch, lr)
        .optimizer(Optimizer::adam())
        .seed(seed);

    let mut table = Table::new(&["loop", "devices", "s / epoch", "vs bare loop", "test acc."]);
    let (mut bare, mut bare_model) = (f64::INFINITY, None);
    for _ in 0..reps {
        let (t, m) = bare_epoch(&graph, &shared, batch, lr, seed);
        bare = bare.min(t);
        bare_model = Some(m);
    }
    let acc = evaluate(&bare_model.expect("ran"), &test_set, 500)
        .expect("evaluates")
        .accuracy;
    table.row(vec![
        "bare Burn loop".into(),
        "flex".into(),
        format!("{bare:.2}"),
        "1.00".into(),
        format!("{:.1}%", 100.0 * acc),
    ]);
    eprintln!("bare loop: {bare:.2} s, {:.1}%", 100.0 * acc);

    let mut configs: Vec<(&str, Vec<Device>)> = vec![
        ("flex", vec![flex.clone()]),
        ("flex x 2", vec![flex.clone(); 2]),
    ];
    if let Some(w) = &wgpu {
        configs.push(("wgpu", vec![w.clone()]));
        configs.push(("flex + wgpu", vec![flex.clone(), w.clone()]));
    }
    for (label, devices) in &configs {
        let (mut best, mut acc) = (f64::INFINITY, 0.0);
        for _ in 0..reps {
            let start = Instant::now();
            let trained = Trainer::new(config.clone())
                .devices(devices.clone())
                .fit(&graph, &train_set)
                .expect("trains");
            best = best.min(start.elapsed().as_secs_f64());
            acc = evaluate(&trained.graph, &test_set, 500)
                .expect("evaluates")
                .accuracy;
        }
        let row = vec![
            "Trainer (burn-train Learner)".into(),
            label.to_string(),
            format!("{best:.2}"),
            format!("{:.2}", best / bare),
            format!("{:.1}%", 100.0 * acc),
        ];
        eprintln!("{}", row.join(" | "));
        table.row(row);
    }
    println!("\n{table}\n{}", table.markdown());
}
