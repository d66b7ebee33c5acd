//! Latency-aware selection benchmark: probes a latency model of ResNet-56 and VGG-16-BN
//! (CIFAR shapes, batch 32), then prunes them (L1 scores of the producers' weights, global
//! ranking) three ways and measures every pruned model's forward time against the dense
//! model's, in inference form (batch norms folded) unless `--unfolded`:
//!
//! - `per-group`: the same fraction of every group removed (30/50/70 %), kept counts as they
//!   fall (the surgery benchmark's setting);
//! - `mac budget`: global selection to the MAC fraction the latency selection reached, so the
//!   two have (about) the same MACs;
//! - `latency budget`: [`PruneTarget::LatencyBudget`] at 0.7/0.5/0.3 with hardware-aware
//!   rounding.
//!
//! Columns: MAC ratio (dense / pruned), measured speed-up, speed-up / MAC ratio, the predicted
//! and measured latency fractions and the prediction error. Every pruned model is timed in
//! turn with the dense model (fastest of `reps` runs each, the probe keeps the fastest too),
//! so that the phases of a shared machine affect both sides of a ratio, and all of them in two
//! rounds, keeping the fastest of both (a slow phase lasts seconds, as long as one model's
//! runs).
//!
//! `cargo bench -p xprune-benches --profile dev --bench latency -- --backend flex [--quick]
//! [--models resnet56,vgg16bn] [--unfolded] [--points N]`

use std::sync::Arc;
use std::time::Instant;
use xprune::burn::tensor::{Device, Distribution, Tensor};
use xprune::criteria::WeightNorm;
use xprune::graph::Graph;
use xprune::surgery::{ChannelGroups, count, prune};
use xprune::{
    LatencyModel, ProbeOptions, PruneTarget, Pruner, Scope, Selection, inference_form,
    prune::select,
};
use xprune_benches::{
    BenchOptions, Table, device, machine_line, speed_model, speed_model_name, time,
};

struct Args {
    models: Vec<&'static str>,
    fold: bool,
    points: usize,
    diagnose: bool,
}

fn parse(rest: &[String]) -> Args {
    let mut args = Args {
        models: vec!["ResNet-56", "VGG-16-BN"],
        fold: true,
        points: 8,
        diagnose: false,
    };
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--unfolded" => args.fold = false,
            "--diagnose" => args.diagnose = true,
            "--points" => {
                args.points = it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                    eprintln!("--points needs a number");
                    std::process::exit(2)
                })
            }
            "--models" => {
                args.models = it
                    .next()
                    .map(String::as_str)
                    .unwrap_or("")
                    .split(',')
                    .map(speed_model_name)
                    .collect()
            }
            other => {
                eprintln!("unknown argument {other} (--models, --unfolded, --points, --diagnose)");
                std::process::exit(2)
            }
        }
    }
    args
}

fn main() {
    let opts = BenchOptions::from_args();
    let args = parse(&opts.rest);
    let (warmup, reps) = opts.reps();
    let reps = reps.max(5);
    // Whole models are timed as often as the probe times a layer, in each of two rounds: a
    // ratio of two whole-model times is what the table reports.
    let model_reps = reps;
    let batch = 32;
    println!(
        "# latency-aware selection benchmark\n{}, batch {batch}, {}, probe {} points per \
         group in 2 sweeps, fastest of {reps} runs (pruned and dense in turn) in each of 2 \
         rounds",
        machine_line(),
        if args.fold {
            "inference form (batch norms folded)"
        } else {
            "unfolded graphs"
        },
        args.points,
    );
    let mut table = Table::new(&[
        "backend",
        "model",
        "selection",
        "MAC ratio",
        "ms",
        "speed-up",
        "speed-up / MAC ratio",
        "predicted fraction",
        "measured fraction",
        "error",
    ]);
    let mut probes = Table::new(&["backend", "model", "probe (s)", "dense ms", "scale"]);
    for backend in &opts.backends {
        let device = device(*backend);
        for name in &args.models {
            let graph = speed_model(name, 1.0, &device);
            let groups = ChannelGroups::new(&graph);
            let x = Tensor::<4>::random(
                graph.input_shape().batch_dims(batch),
                Distribution::Uniform(-1.0, 1.0),
                &device,
            );
            let deployed = |g: &Graph| {
                if args.fold {
                    inference_form(g).expect("inference form").graph
                } else {
                    g.clone()
                }
            };
            let dense_deployed = deployed(&graph);
            // The pruned and the dense model timed in turn, so that a slower phase of a shared
            // machine slows both: (fastest pruned ms, fastest dense ms of the same runs).
            let measure = |g: &Graph| {
                let g = deployed(g);
                let (mut best, mut best_dense) = (f64::INFINITY, f64::INFINITY);
                for _ in 0..model_reps {
                    let t = time(&device, warmup.min(1), 1, || {
                        g.forward(x.clone()).expect("forward runs");
                    });
                    best = best.min(t.ms());
                    let t = time(&device, 0, 1, || {
                        dense_deployed.forward(x.clone()).expect("forward runs");
                    });
                    best_dense = best_dense.min(t.ms());
                }
                (best, best_dense)
            };
            let options = ProbeOptions {
                batch,
                warmup: 1,
                reps: if opts.quick { 3 } else { 5 },
                points: args.points,
                sweeps: 2,
                inference_form: args.fold,
                seed: 0,
            };
            let t = Instant::now();
            let latency = LatencyModel::probe(&graph, &groups, &options).expect("probe runs");
            let probe_s = t.elapsed().as_secs_f64();
            probes.row(vec![
                backend.to_string(),
                name.to_string(),
                format!("{probe_s:.1}"),
                format!("{:.1}", latency.dense_ms),
                format!("{:.3}", latency.scale()),
            ]);
            let latency = Arc::new(latency);
            let dense_macs = count(&graph).macs as f64;
            let predicted_dense = latency.predict(&graph).expect("prediction");
            let (_, scores) = Pruner::new(WeightNorm::l1())
                .score(&graph, None)
                .expect("scores");
            // Plans first, then every pruned model timed against the dense one in two rounds
            // over all of them (fastest of both kept): a slow phase of a shared machine lasts
            // seconds, as long as one model's runs, and rarely meets the same model twice.
            let plan_of = |label: &str, sel: &Selection| match select(&graph, &groups, &scores, sel)
            {
                Ok(p) => Some(prune(&graph, &groups, &p).expect("plan applies")),
                Err(e) => {
                    eprintln!("{name} {label}: {e}");
                    None
                }
            };
            let mut plans: Vec<(String, Graph)> = Vec::new();
            if let Some(g) = plan_of("dense", &Selection::ratio(0.0)) {
                plans.push(("dense".into(), g));
            }
            for ratio in [0.3, 0.5, 0.7] {
                let label = format!("per-group {:.0} %", ratio * 100.0);
                let sel = Selection::ratio(ratio).scope(Scope::PerGroup);
                if let Some(g) = plan_of(&label, &sel) {
                    plans.push((label, g));
                }
            }
            for budget in [0.7, 0.5, 0.3] {
                let label = format!("latency budget {budget}");
                let sel = Selection::default()
                    .target(PruneTarget::LatencyBudget(budget))
                    .latency_model(latency.clone());
                let Some(pruned) = plan_of(&label, &sel) else {
                    continue;
                };
                let mac_ratio = dense_macs / count(&pruned).macs as f64;
                plans.push((label, pruned));
                let label = format!("mac budget {:.3}", 1.0 / mac_ratio);
                let sel = Selection::default().target(PruneTarget::MacBudget(1.0 / mac_ratio));
                if let Some(g) = plan_of(&label, &sel) {
                    plans.push((label, g));
                }
            }
            let mut best = vec![(f64::INFINITY, f64::INFINITY); plans.len()];
            for _round in 0..2 {
                for ((_, pruned), best) in plans.iter().zip(&mut best) {
                    let (ms, dense_ms) = measure(pruned);
                    *best = (best.0.min(ms), best.1.min(dense_ms));
                }
            }
            for ((label, pruned), (ms, dense_ms)) in plans.into_iter().zip(best) {
                let mac_ratio = dense_macs / count(&pruned).macs as f64;
                let speed = dense_ms / ms;
                let predicted = latency.predict(&pruned).expect("prediction") / predicted_dense;
                let measured = ms / dense_ms;
                if args.diagnose {
                    diagnose(&label, &pruned, &latency, &x, &device, reps);
                }
                table.row(vec![
                    backend.to_string(),
                    name.to_string(),
                    label,
                    format!("{mac_ratio:.2}"),
                    format!("{ms:.1}"),
                    format!("{speed:.2}"),
                    format!("{:.2}", speed / mac_ratio),
                    format!("{predicted:.3}"),
                    format!("{measured:.3}"),
                    format!("{:+.1} %", 100.0 * (predicted - measured) / measured),
                ]);
            }
        }
    }
    println!("\n{probes}\n{}", probes.markdown());
    println!("\n{table}\n{}", table.markdown());
}

/// Per layer kind: the latency model's time against the time of each node alone on the
/// inputs of a recorded forward pass (fastest of `reps`), and the whole forward pass against
/// the sum of the nodes: which part of a prediction error is the tables and which is running
/// the nodes together.
fn diagnose(
    label: &str,
    pruned: &Graph,
    latency: &LatencyModel,
    x: &Tensor<4>,
    device: &Device,
    reps: usize,
) {
    use std::collections::BTreeMap;
    let rec = pruned.forward_recorded(x.clone()).expect("forward runs");
    let mut kinds: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for (id, (info, node)) in pruned
        .nodes()
        .iter()
        .zip(&latency.nodes)
        .enumerate()
        .skip(1)
    {
        let input = info
            .inputs
            .first()
            .map_or(0, |&i| pruned.nodes()[i].shape.channels());
        let table = node
            .table
            .at(&node.name, input, info.shape.channels())
            .expect("in range");
        if table == 0.0 {
            continue; // folded away in inference form
        }
        let inputs: Vec<_> = info
            .inputs
            .iter()
            .map(|&i| rec.get(i).expect("recorded").clone())
            .collect();
        let layer = pruned.layer(id).expect("node exists");
        let t = time(device, 1, reps, || {
            layer
                .forward(inputs.clone(), false)
                .expect("the layer runs");
        });
        let e = kinds.entry(layer.kind_name()).or_default();
        e.0 += table;
        e.1 += t.min.as_secs_f64() * 1e3;
    }
    let mut t = Table::new(&["kind", "model ms", "alone on recorded inputs ms", "ratio"]);
    let (mut a, mut b) = (0.0, 0.0);
    for (k, (m, r)) in &kinds {
        a += m;
        b += r;
        t.row(vec![
            k.to_string(),
            format!("{m:.1}"),
            format!("{r:.1}"),
            format!("{:.2}", m / r),
        ]);
    }
    t.row(vec![
        "sum".into(),
        format!("{a:.1}"),
        format!("{b:.1}"),
        format!("{:.2}", a / b),
    ]);
    println!(
        "\n### {label}: latency model against nodes timed alone\n{}",
        t.markdown()
    );
}
