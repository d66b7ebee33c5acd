//! `xprune toy`: the toy experiment of "Pruning by Explaining" (Yeom et al. 2021).
//!
//! For each 2-D data set (moons, circles, the 4-class spiral "mult"), an MLP
//! `2-1000-1000-1000-C` (ReLU, dropout after the first layer) is trained once. Then, for every
//! number `n` of reference samples per class and every seed, `n` fresh samples per class are
//! drawn, every criterion scores the 3000 hidden neurons, the 1000 lowest (global ranking with
//! the paper's per-layer normalisation) are removed at once, without fine-tuning, and the
//! pruned network is evaluated on the training data (the paper's table) and on fresh test
//! data.

use crate::args::{Global, ToyArgs};
use crate::cmd::device;
use crate::csv::Csv;
use crate::error::{CliError, Result, io};
use crate::plot::{Plot, Series};
use crate::progress::bar;
use std::collections::BTreeMap;
use std::time::Instant;
use xprune::burn::tensor::Device;
use xprune::criteria::{
    Criterion, Gradient, LrpCriterion, SampleAbs, SitePolicy, Taylor, WeightNorm,
};
use xprune::io::data::synthetic::{circles, moons, mult};
use xprune::lrp::{Composite, Group, InputMod, LayerKind, ParamMod, Propagation, Rule, Term};
use xprune::train::{Optimizer, TrainConfig, evaluate, train};
use xprune::{
    Dataset, FeatureShape, Graph, GraphBuilder, Normalization, PruneTarget, Pruner, Selection,
};

/// The paper's training accuracy after pruning (%), from the authors' result logs
/// (`output/tablestats.txt` of github.com/seulkiyeom/LRP_Pruning_toy_example), by data set,
/// criterion and n in 1, 5, 10, 20, 50, 100, 200.
pub const PAPER: [(&str, &str, [f64; 7]); 12] = [
    (
        "moons",
        "lrp",
        [85.01, 99.86, 99.85, 99.85, 99.85, 99.85, 99.85],
    ),
    (
        "moons",
        "weight",
        [99.60, 99.60, 99.60, 99.60, 99.60, 99.60, 99.60],
    ),
    (
        "moons",
        "gradient",
        [83.07, 86.17, 91.27, 85.87, 90.92, 93.53, 95.11],
    ),
    (
        "moons",
        "taylor",
        [79.80, 84.76, 91.33, 86.99, 92.22, 94.77, 95.90],
    ),
    (
        "circles",
        "lrp",
        [70.23, 99.98, 99.99, 100.0, 100.0, 100.0, 100.0],
    ),
    (
        "circles",
        "weight",
        [97.10, 97.10, 97.10, 97.10, 97.10, 97.10, 97.10],
    ),
    (
        "circles",
        "gradient",
        [69.21, 82.23, 83.89, 85.36, 85.90, 90.88, 92.51],
    ),
    (
        "circles",
        "taylor",
        [68.35, 87.18, 90.47, 91.87, 91.94, 97.04, 97.42],
    ),
    (
        "mult",
        "lrp",
        [62.98, 91.85, 91.93, 91.59, 91.39, 91.25, 91.20],
    ),
    (
        "mult",
        "weight",
        [91.00, 91.00, 91.00, 91.00, 91.00, 91.00, 91.00],
    ),
    (
        "mult",
        "gradient",
        [34.28, 67.96, 75.16, 77.39, 81.25, 82.68, 81.66],
    ),
    (
        "mult",
        "taylor",
        [34.28, 77.34, 81.58, 83.21, 84.90, 84.76, 85.07],
    ),
];

/// The n values of [`PAPER`].
pub const PAPER_N: [usize; 7] = [1, 5, 10, 20, 50, 100, 200];

/// Samples of a toy data set: `n` in total, balanced.
fn generate(name: &str, n: usize, seed: u64) -> Result<Dataset> {
    Ok(match name {
        "moons" => moons(n, 0.1, seed)?,
        "circles" => circles(n, 0.1, 0.3, seed)?,
        "mult" => mult(n, 4, 0.2, seed)?,
        other => {
            return Err(CliError::Usage(format!(
                "unknown toy data set `{other}` (moons, circles, mult)"
            )));
        }
    })
}

fn classes(name: &str) -> usize {
    if name == "mult" { 4 } else { 2 }
}

/// `2 - width - width - width - classes` as the authors' code builds it: ReLU and dropout
/// (0.5) after the first layer, ReLU after the second, and no non-linearity between the third
/// hidden layer and the output (their `OrderedDict` repeats the key `nonlin2`, so the third
/// ReLU silently replaces the second entry and disappears).
fn toy_mlp(width: usize, classes: usize, device: &Device, seed: u64) -> Result<Graph> {
    let mut b = GraphBuilder::new(FeatureShape::flat(2), device).seed(seed);
    let x = b.linear("linear1", b.input(), width)?;
    let x = b.relu("relu1", x)?;
    let x = b.dropout("dropout1", x, 0.5)?;
    let x = b.linear("linear2", x, width)?;
    let x = b.relu("relu2", x)?;
    let x = b.linear("linear3", x, width)?;
    let out = b.linear("output", x, classes)?;
    Ok(b.build(out)?)
}

/// The z+ rule as the authors' toy code applies it: positive weights, the input as it is
/// (signed: the output layer's input has no ReLU), no bias. On non-negative inputs it equals
/// Zennit's z+ without biases. A custom [`Rule`] in a few lines.
#[derive(Debug)]
struct AuthorsZPlus;

impl Rule for AuthorsZPlus {
    fn name(&self) -> String {
        "z-plus (authors' toy code)".into()
    }

    fn propagation(&self) -> Propagation {
        Propagation::Terms {
            groups: vec![Group::new(vec![Term::new(
                InputMod::Identity,
                ParamMod::Positive,
                ParamMod::Zero,
            )])],
            epsilon: 1e-9,
        }
    }
}

/// The criteria of the paper with their per-layer normalisation and measuring points, as in
/// the authors' code: LRP and weight normalised by the layer's sum, gradient and Taylor by the
/// L2 norm of absolute values, measured at the linear layers' outputs (before the ReLU), with
/// the absolute value of the batch mean (the `-batch` forms) as the authors' code computes them.
fn criteria() -> Vec<(&'static str, Box<dyn Criterion>, Normalization)> {
    let zplus = Composite::new("z-plus-authors").rule_for_kind(LayerKind::Dense, AuthorsZPlus);
    vec![
        (
            "lrp",
            Box::new(LrpCriterion::with_composite(zplus)),
            Normalization::L1,
        ),
        ("weight", Box::new(WeightNorm::l1()), Normalization::L1),
        (
            "gradient",
            Box::new(Gradient {
                sites: SitePolicy::ProducerOutputs,
                abs: SampleAbs::OfBatchMean,
            }),
            Normalization::L2,
        ),
        (
            "taylor",
            Box::new(Taylor {
                sites: SitePolicy::ProducerOutputs,
                abs: SampleAbs::OfBatchMean,
            }),
            Normalization::L2,
        ),
    ]
}

/// Dataset -> criterion -> n -> (train accuracies, test accuracies) over seeds, in percent.
type Results = BTreeMap<String, BTreeMap<String, BTreeMap<usize, (Vec<f64>, Vec<f64>)>>>;

fn mean_std(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64
    } else {
        0.0
    };
    (m, var.sqrt())
}

pub fn run(g: &Global, a: &ToyArgs) -> Result<()> {
    if a.seeds == 0 || a.samples.is_empty() || a.samples.contains(&0) {
        return Err(CliError::Usage(
            "give at least one seed and sample counts of at least 1".into(),
        ));
    }
    if a.prune >= 3 * a.width {
        return Err(CliError::Usage(format!(
            "cannot remove {} of {} hidden neurons",
            a.prune,
            3 * a.width
        )));
    }
    let dev = device(&g.backend)?;
    std::fs::create_dir_all(&a.output).map_err(io(&a.output))?;
    let started = Instant::now();
    let mut raw = Csv::new(&[
        "dataset",
        "criterion",
        "n",
        "seed",
        "train_accuracy",
        "test_accuracy",
        "removed_linear1",
        "removed_linear2",
        "removed_linear3",
    ]);
    let mut summary = Csv::new(&[
        "dataset",
        "criterion",
        "n",
        "train_mean",
        "train_std",
        "test_mean",
        "test_std",
        "paper_train",
    ]);
    // dataset -> criterion -> n -> train accuracies
    let mut results: Results = BTreeMap::new();
    for ds in &a.datasets {
        let c = classes(ds);
        let train_set = generate(ds, 1000, 0)?;
        let test_set = generate(ds, 2000, 1)?;
        let model = toy_mlp(a.width, c, &dev, g.seed)?;
        let optimizer = match a.optimizer.as_str() {
            "sgd" => Optimizer::sgd(0.9),
            "adam" => Optimizer::adam(),
            other => {
                return Err(CliError::Usage(format!(
                    "unknown optimizer `{other}` (sgd, adam)"
                )));
            }
        };
        let config = TrainConfig::new(a.epochs, a.train_batch, a.lr)
            .optimizer(optimizer)
            .seed(g.seed);
        let t0 = Instant::now();
        let trained = train(&model, &train_set, &config)?.graph;
        let base_train = evaluate(&trained, &train_set, 1000)?.accuracy;
        let base_test = evaluate(&trained, &test_set, 1000)?.accuracy;
        println!(
            "{ds}: MLP 2-{w}-{w}-{w}-{c} trained in {:.0} s: train {:.2}%, test {:.2}%",
            t0.elapsed().as_secs_f64(),
            100.0 * base_train,
            100.0 * base_test,
            w = a.width
        );
        let crits = criteria();
        let progress = bar(
            (a.samples.len() * a.seeds * crits.len()) as u64,
            format!("{ds}: pruning"),
            g.quiet,
        );
        for &n in &a.samples {
            for seed in 0..a.seeds {
                let reference = generate(ds, n * c, 1000 + seed as u64)?;
                for (name, criterion, norm) in &crits {
                    let sel = Selection::default()
                        .target(PruneTarget::Channels(a.prune))
                        .normalization(*norm);
                    let mut pruner = Pruner::new(criterion.as_ref())
                        .selection(sel)
                        .batch_size(1000)
                        .seed(seed as u64);
                    let outcome = pruner.one_shot(&trained, Some(&reference))?;
                    let tr = evaluate(&outcome.graph, &train_set, 1000)?.accuracy;
                    let te = evaluate(&outcome.graph, &test_set, 1000)?.accuracy;
                    let removed =
                        |layer: &str| outcome.removed.get(layer).map_or(0, Vec::len).to_string();
                    raw.row(vec![
                        ds.clone(),
                        name.to_string(),
                        n.to_string(),
                        seed.to_string(),
                        format!("{tr:.4}"),
                        format!("{te:.4}"),
                        removed("linear1"),
                        removed("linear2"),
                        removed("linear3"),
                    ]);
                    let e = results
                        .entry(ds.clone())
                        .or_default()
                        .entry(name.to_string())
                        .or_default()
                        .entry(n)
                        .or_default();
                    e.0.push(100.0 * tr);
                    e.1.push(100.0 * te);
                    progress.inc(1);
                }
            }
        }
        progress.finish_and_clear();
    }
    raw.write(&a.output.join("toy.csv"))?;
    println!(
        "\ntraining accuracy (%) after removing {} of {} hidden neurons, mean over {} seeds (paper in brackets)",
        a.prune,
        3 * a.width,
        a.seeds
    );
    for (ds, per_crit) in &results {
        println!("\n{ds}");
        print!("{:<10}", "n");
        for n in &a.samples {
            print!("{n:>16}");
        }
        println!();
        let mut series = Vec::new();
        for (crit, per_n) in per_crit {
            print!("{crit:<10}");
            let mut points = Vec::new();
            for (n, (tr, te)) in per_n {
                let (m, s) = mean_std(tr);
                let (tm, ts) = mean_std(te);
                let paper = PAPER
                    .iter()
                    .find(|(d, c, _)| d == ds && c == crit)
                    .and_then(|(_, _, v)| PAPER_N.iter().position(|p| p == n).map(|i| v[i]));
                let cell = match paper {
                    Some(p) => format!("{m:.1} ({p:.1})"),
                    None => format!("{m:.1}"),
                };
                print!("{cell:>16}");
                summary.row(vec![
                    ds.clone(),
                    crit.clone(),
                    n.to_string(),
                    format!("{m:.2}"),
                    format!("{s:.2}"),
                    format!("{tm:.2}"),
                    format!("{ts:.2}"),
                    paper.map(|p| format!("{p:.2}")).unwrap_or_default(),
                ]);
                points.push((*n as f64, m));
            }
            println!();
            series.push(Series {
                name: crit.clone(),
                points,
                dashed: false,
            });
        }
        Plot {
            title: format!(
                "{ds}: training accuracy after pruning {} of {} neurons",
                a.prune,
                3 * a.width
            ),
            x_label: "reference samples per class".into(),
            y_label: "training accuracy (%)".into(),
            series,
            log_x: true,
        }
        .write(&a.output.join(format!("toy_{ds}.svg")))?;
    }
    summary.write(&a.output.join("toy_summary.csv"))?;
    println!(
        "\nwrote toy.csv, toy_summary.csv and toy_<dataset>.svg to {} ({:.0} s)",
        a.output.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
