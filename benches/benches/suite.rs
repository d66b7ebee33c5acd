//! The whole benchmark suite on chosen backends, one table: forward; forward + input gradient;
//! LRP (composites `epsilon` and `epsilon-plus-flat`); each criterion's scoring on a small
//! reference batch; surgery (groups, an L1 plan at 50 %, channel removal); and inference of
//! pruned models at 30/50/70 % of the channels of every group removed (L1 per group, also
//! with kept channels rounded to multiples of 8), speed-up and MAC ratio side by side.
//! Models: VGG-11-BN, ResNet-18 (CIFAR stem) and ResNet-56, CIFAR shapes, 10 classes.
//!
//! ```text
//! cargo bench -p xprune-benches --profile dev --bench suite -- --backend flex [--quick]
//!     [--batch 32|1] [--models vgg11bn,resnet18,resnet56] [--reference N] [--width W]
//!     [--shapley-permutations P] [--shapley-samples S] [--csv PATH]
//! ```
//!
//! `--csv` writes one row per measurement (`backend,model,batch,workload,median_ms,min_ms,
//! mac_ratio,speedup`), the input of `benches/compare/torch_compare.py`.

use std::fmt::Write as _;
use std::process::exit;
use xprune::burn::module::Module;
use xprune::burn::tensor::{Device, Tensor, TensorData};
use xprune::criteria::{Criterion, ScoringContext};
use xprune::graph::tensor_util::int_tensor;
use xprune::lrp::{Attributor, Composite, Target};
use xprune::models::{ResNetCifarDepth, ResNetStem, VggDepth, resnet_cifar, resnet18, vgg};
use xprune::prune::{Scope, Selection, select};
use xprune::surgery::{count, prune};
use xprune::{
    ChannelGroups, Dataset, FeatureRelevance, FeatureShape, Graph, LrpCriterion, RandomCriterion,
    Shapley, Taylor, WeightNorm,
};
use xprune_benches::{BenchOptions, Table, Timing, device, machine_line, time};

const MODELS: [&str; 3] = ["vgg11bn", "resnet18", "resnet56"];
const RATIOS: [f64; 3] = [0.3, 0.5, 0.7];

struct Args {
    batch: usize,
    models: Vec<String>,
    reference: usize,
    width: f32,
    shapley_permutations: usize,
    shapley_samples: usize,
    csv: Option<String>,
}

fn parse(rest: &[String]) -> Args {
    let mut args = Args {
        batch: 32,
        models: MODELS.iter().map(|s| s.to_string()).collect(),
        reference: 16,
        width: 1.0,
        shapley_permutations: 1,
        shapley_samples: 4,
        csv: None,
    };
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next().cloned().unwrap_or_else(|| {
                eprintln!("{a} needs a value");
                exit(2)
            })
        };
        match a.as_str() {
            "--batch" => args.batch = number(a, &value()),
            "--reference" => args.reference = number(a, &value()),
            "--width" => args.width = value().parse().unwrap_or_else(|_| bad(a)),
            "--shapley-permutations" => args.shapley_permutations = number(a, &value()),
            "--shapley-samples" => args.shapley_samples = number(a, &value()),
            "--models" | "--model" => {
                args.models = value().split(',').map(|s| s.trim().to_string()).collect();
                if let Some(m) = args.models.iter().find(|m| !MODELS.contains(&m.as_str())) {
                    eprintln!("unknown model {m} (known: {})", MODELS.join(", "));
                    exit(2)
                }
            }
            "--csv" => args.csv = Some(value()),
            other => {
                eprintln!(
                    "unknown argument {other} (--batch, --models, --reference, --width, \
                     --shapley-permutations, --shapley-samples, --csv)"
                );
                exit(2)
            }
        }
    }
    args
}

fn number(flag: &str, v: &str) -> usize {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => n,
        _ => bad(flag),
    }
}

fn bad<T>(flag: &str) -> T {
    eprintln!("bad value for {flag}");
    exit(2)
}

fn model(name: &str, width: f32, device: &Device) -> Graph {
    let shape = FeatureShape::spatial(3, 32, 32);
    let g = match name {
        "vgg11bn" => vgg(VggDepth::Vgg11, true, shape, 10, width, device, 1),
        "resnet18" => resnet18(ResNetStem::Cifar, shape, 10, width, device, 1),
        "resnet56" => resnet_cifar(ResNetCifarDepth::ResNet56, shape, 10, width, device, 1),
        _ => unreachable!("checked when parsing"),
    };
    g.unwrap_or_else(|e| {
        eprintln!("{name}: {e}");
        exit(1)
    })
}

/// Deterministic pseudo-random values in `[-0.5, 0.5)`.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// One measurement.
struct Row {
    backend: String,
    model: String,
    batch: usize,
    workload: String,
    timing: Timing,
    mac_ratio: Option<f64>,
    speedup: Option<f64>,
    note: String,
}

/// Collects rows and prints progress as they come.
struct Results {
    rows: Vec<Row>,
}

impl Results {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        backend: &str,
        model: &str,
        batch: usize,
        workload: impl Into<String>,
        timing: Timing,
        mac_ratio: Option<f64>,
        speedup: Option<f64>,
        note: impl Into<String>,
    ) {
        let row = Row {
            backend: backend.into(),
            model: model.into(),
            batch,
            workload: workload.into(),
            timing,
            mac_ratio,
            speedup,
            note: note.into(),
        };
        eprintln!(
            "{} {} b{} {}: {:.2} ms {}",
            row.backend,
            row.model,
            row.batch,
            row.workload,
            row.timing.ms(),
            row.note
        );
        self.rows.push(row);
    }

    fn table(&self) -> Table {
        let mut t = Table::new(&[
            "backend",
            "model",
            "batch",
            "workload",
            "median ms",
            "min ms",
            "MAC ratio",
            "speed-up",
            "speed-up / MAC ratio",
            "note",
        ]);
        let opt = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.2}"));
        for r in &self.rows {
            let per_mac = r.mac_ratio.zip(r.speedup).map(|(m, s)| s / m);
            t.row(vec![
                r.backend.clone(),
                r.model.clone(),
                r.batch.to_string(),
                r.workload.clone(),
                format!("{:.2}", r.timing.ms()),
                format!("{:.2}", r.timing.min.as_secs_f64() * 1e3),
                opt(r.mac_ratio),
                opt(r.speedup),
                opt(per_mac),
                r.note.clone(),
            ]);
        }
        t
    }

    fn csv(&self) -> String {
        let mut out =
            String::from("backend,model,batch,workload,median_ms,min_ms,mac_ratio,speedup\n");
        let opt = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.4}"));
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{},{},{},{},{:.4},{:.4},{},{}",
                r.backend,
                r.model,
                r.batch,
                r.workload,
                r.timing.ms(),
                r.timing.min.as_secs_f64() * 1e3,
                opt(r.mac_ratio),
                opt(r.speedup)
            );
        }
        out
    }
}

/// Groups with every prunable group pinned except the last single-producer group (the last
/// convolution whose output channels are not tied to a residual sum): the Shapley workload.
/// One group, late in the network, keeps full-size networks benchmarkable; the cost per
/// group scales with its channels and with the cost of the network after it.
fn one_group(graph: &Graph) -> (ChannelGroups, String) {
    let all = ChannelGroups::new(graph);
    let keep = all
        .prunable()
        .filter(|g| g.producers().len() == 1)
        .max_by_key(|g| g.producers()[0])
        .expect("the reference models have a single-producer group");
    let pinned: Vec<String> = all
        .prunable()
        .filter(|g| g.id() != keep.id())
        .flat_map(|g| g.producers())
        .map(|p| graph.nodes()[p].name.clone())
        .collect();
    let groups = ChannelGroups::with_pinned(graph, &pinned).expect("producers are graph nodes");
    (
        groups,
        format!("group {} ({} ch)", keep.name(), keep.channels()),
    )
}

fn main() {
    let opts = BenchOptions::from_args();
    let args = parse(&opts.rest);
    // Cheap workloads (a pass or two) and expensive ones (scoring, surgery).
    let (warmup, reps) = if opts.quick { (1, 3) } else { (2, 7) };
    let (slow_warmup, slow_reps) = if opts.quick { (1, 1) } else { (1, 3) };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "# xprune benchmark suite\n# {}; batch {}; {} reference samples for scoring; width {}; \
         median of {reps} ({slow_reps} for scoring and surgery) after {warmup} warm-up; \
         {threads} threads available",
        machine_line(),
        args.batch,
        args.reference,
        args.width,
    );
    let mut results = Results { rows: Vec::new() };
    for backend in &opts.backends {
        let dev = device(*backend);
        let be = backend.to_string();
        for name in &args.models {
            let graph = model(name, args.width, &dev);
            let b = args.batch;
            let dims = graph.input_shape().batch_dims(b);
            let x = Tensor::<4>::from_data(
                TensorData::new(
                    values(dims.iter().product(), 7),
                    [dims[0], dims[1], dims[2], dims[3]],
                ),
                &dev,
            );
            let labels: Vec<i64> = (0..b as i64).map(|i| i % 10).collect();
            let labels_t = int_tensor(labels.clone(), &dev);

            // Forward.
            let fwd = time(&dev, warmup, reps, || {
                graph.forward(x.clone()).expect("forward");
            });
            results.add(&be, name, b, "forward", fwd, None, None, "");

            // Forward + input gradient (the baseline of an explanation).
            let ad = dev.clone().autodiff();
            let graph_ad = graph.clone().fork(&ad).no_grad();
            let mut one_hot = vec![0.0f32; b * 10];
            for (i, l) in labels.iter().enumerate() {
                one_hot[i * 10 + *l as usize] = 1.0;
            }
            let one_hot = Tensor::<2>::from_data(TensorData::new(one_hot, [b, 10]), &ad);
            let x_data = x.to_data();
            let grad = time(&dev, warmup, reps, || {
                let xa = Tensor::<4>::from_data(x_data.clone(), &ad).require_grad();
                let logits = graph_ad.logits(xa.clone()).expect("forward");
                let grads = (logits * one_hot.clone()).sum().backward();
                let g = xa.grad(&grads).expect("input gradient");
                let _: f32 = g.sum().into_scalar();
            });
            results.add(
                &be,
                name,
                b,
                "forward+input-grad",
                grad,
                None,
                None,
                format!("{:.2} x forward", grad.ms() / fwd.ms()),
            );

            // LRP per composite (batch norms folded once, outside the timer).
            for composite in ["epsilon", "epsilon-plus-flat"] {
                let c = Composite::named(composite).expect("built-in composite");
                let attributor = Attributor::new(&graph, &c)
                    .expect("attributor")
                    .keep_nodes(false);
                let t = time(&dev, warmup, reps, || {
                    let a = attributor
                        .attribute(x.clone(), Target::Labels(labels_t.clone()))
                        .expect("attribution");
                    let _: f32 = a.input.flatten().sum().into_scalar();
                });
                results.add(
                    &be,
                    name,
                    b,
                    format!("lrp {composite}"),
                    t,
                    None,
                    None,
                    format!("{:.2} x forward+input-grad", t.ms() / grad.ms()),
                );
            }

            // Scoring on a small reference batch.
            let n = args.reference;
            let data = Dataset::new(
                values(n * 3 * 32 * 32, 11),
                (0..n as i64).map(|i| i % 10).collect(),
                FeatureShape::spatial(3, 32, 32),
                10,
            )
            .expect("reference data");
            let groups = ChannelGroups::new(&graph);
            let (shapley_groups, shapley_note) = one_group(&graph);
            let shapley = Shapley {
                permutations: args.shapley_permutations,
                tolerance: None,
                antithetic: false,
                ..Shapley::default()
            };
            let criteria: Vec<(&str, Box<dyn Criterion>, &ChannelGroups, String)> = vec![
                (
                    "l1",
                    Box::new(WeightNorm::l1()),
                    &groups,
                    "all groups".into(),
                ),
                (
                    "taylor",
                    Box::new(Taylor::default()),
                    &groups,
                    "all groups".into(),
                ),
                (
                    "lrp",
                    Box::new(LrpCriterion::default()),
                    &groups,
                    "all groups".into(),
                ),
                (
                    "frs",
                    Box::new(FeatureRelevance::default()),
                    &groups,
                    "all groups".into(),
                ),
                (
                    "shapley",
                    Box::new(shapley),
                    &shapley_groups,
                    format!(
                        "{shapley_note}, {} permutation(s)",
                        args.shapley_permutations
                    ),
                ),
                (
                    "random",
                    Box::new(RandomCriterion),
                    &groups,
                    "all groups".into(),
                ),
            ];
            let shapley_data = data
                .subset(&(0..args.shapley_samples.min(n)).collect::<Vec<_>>())
                .expect("reference subset");
            for (cname, criterion, g, note) in &criteria {
                // Shapley: fewer samples, and no warm-up run (its kernels are the forward
                // pass's, already warm); it is by far the most expensive workload.
                let (d, w) = if *cname == "shapley" {
                    (&shapley_data, 0)
                } else {
                    (&data, slow_warmup)
                };
                let ctx = ScoringContext::new(&graph, g, &dev)
                    .with_data(d)
                    .with_batch_size(n)
                    .with_seed(3);
                let t = time(&dev, w, slow_reps, || {
                    criterion.score(&ctx).expect("scoring");
                });
                results.add(
                    &be,
                    name,
                    d.len(),
                    format!("score {cname}"),
                    t,
                    None,
                    None,
                    note.clone(),
                );
            }

            // Surgery: groups, an L1 plan at 50 % per group, removal.
            let t_groups = time(&dev, warmup, reps, || {
                let _ = ChannelGroups::new(&graph);
            });
            results.add(&be, name, b, "surgery groups", t_groups, None, None, "");
            let l1 = WeightNorm::l1();
            let ctx = ScoringContext::new(&graph, &groups, &dev);
            let half = Selection::ratio(0.5).scope(Scope::PerGroup);
            let t_plan = time(&dev, warmup, reps, || {
                let scores = l1.score(&ctx).expect("l1");
                select(&graph, &groups, &scores, &half).expect("selection");
            });
            results.add(&be, name, b, "surgery plan l1 50%", t_plan, None, None, "");
            let plan = select(&graph, &groups, &l1.score(&ctx).expect("l1"), &half).expect("plan");
            let t_prune = time(&dev, warmup, reps, || {
                prune(&graph, &groups, &plan).expect("prune");
            });
            results.add(&be, name, b, "surgery prune 50%", t_prune, None, None, "");

            // Inference of pruned models.
            let full = count(&graph);
            let scores = l1.score(&ctx).expect("l1");
            for round in [1usize, 8] {
                for ratio in RATIOS {
                    let sel = Selection::ratio(ratio)
                        .scope(Scope::PerGroup)
                        .round_to(round);
                    let plan = select(&graph, &groups, &scores, &sel).expect("plan");
                    let pruned = prune(&graph, &groups, &plan).expect("prune");
                    let c = count(&pruned);
                    let t = time(&dev, warmup, reps, || {
                        pruned.forward(x.clone()).expect("forward");
                    });
                    let mac_ratio = full.mac_ratio(&c);
                    let suffix = if round == 1 {
                        String::new()
                    } else {
                        format!(" r{round}")
                    };
                    results.add(
                        &be,
                        name,
                        b,
                        format!("pruned {:.0}%{suffix} forward", ratio * 100.0),
                        t,
                        Some(mac_ratio),
                        Some(fwd.ms() / t.ms()),
                        format!("{:.1} MMAC/sample", c.macs as f64 / 1e6),
                    );
                }
            }
        }
    }
    let table = results.table();
    println!("\n{table}\n{}", table.markdown());
    if let Some(path) = &args.csv {
        if let Err(e) = std::fs::write(path, results.csv()) {
            eprintln!("cannot write {path}: {e}");
            exit(1)
        }
        eprintln!("wrote {path}");
    }
}
