//! `xprune demo`: the whole pipeline on the embedded synthetic image set.
//!
//! 1. Train a small CNN on six classes of Shapes-10 (the source task).
//! 2. Transfer it to a few-shot task: the four other classes, with 10 labelled images per
//!    class; the classifier is replaced and the network fine-tuned on those 40 images.
//! 3. Prune the transferred model with every criterion at several ratios, scoring on the 40
//!    labelled images only, and measure accuracy on held-out images of the four classes,
//!    without and with a short fine-tuning on the same 40 images.

use crate::args::{DemoArgs, Global};
use crate::cmd::{device, scoring_devices};
use crate::csv::Csv;
use crate::error::{Result, io};
use crate::plot::{Plot, Series};
use crate::progress::bar;
use std::time::Instant;
use xprune::burn::tensor::Device;
use xprune::criteria::{
    Criterion, FeatureRelevance, Gradient, LrpCriterion, RandomCriterion, Shapley, Taylor,
    WeightNorm,
};
use xprune::graph::kinds::linear::LinearOp;
use xprune::graph::{Initializer, OpSpec};
use xprune::io::data::synthetic::{SHAPES10_CLASSES, shapes10};
use xprune::train::{LrSchedule, Optimizer, ScheduleUnit, TrainConfig, evaluate};
use xprune::{
    Conv2dSpec, Dataset, FeatureShape, Graph, GraphBuilder, Normalization, Pruner, Selection,
};

/// The demo CNN: four 3x3 conv-bn-relu blocks (16, 32, 64, 64 channels), three 2x2 max pools,
/// global average pooling and a linear classifier.
pub fn demo_cnn(classes: usize, device: &Device, seed: u64) -> Result<Graph> {
    let mut b = GraphBuilder::new(FeatureShape::spatial(3, 32, 32), device).seed(seed);
    let mut x = b.input();
    for (i, c) in [16, 32, 64, 64].into_iter().enumerate() {
        x = b.conv2d(
            format!("conv{}", i + 1),
            x,
            Conv2dSpec::new(c, 3).padding(1),
        )?;
        x = b.batch_norm(format!("bn{}", i + 1), x)?;
        x = b.relu(format!("relu{}", i + 1), x)?;
        if i < 3 {
            x = b.max_pool2d(format!("pool{}", i + 1), x, 2, 2)?;
        }
    }
    let x = b.global_avg_pool("gap", x)?;
    let x = b.flatten("flatten", x)?;
    let out = b.linear("fc", x, classes)?;
    Ok(b.build(out)?)
}

/// The graph with its output layer replaced by a new, seeded linear layer of `classes`
/// outputs.
pub fn new_head(graph: &Graph, classes: usize, seed: u64) -> Result<Graph> {
    let (input, mut defs, out) = graph.to_node_defs();
    let in_features = match &graph.nodes()[out].op {
        OpSpec::Linear(l) => l.in_features,
        other => {
            return Err(crate::error::CliError::Usage(format!(
                "the demo needs a graph ending in a linear layer, found {other:?}"
            )));
        }
    };
    let op = OpSpec::Linear(LinearOp {
        in_features,
        out_features: classes,
        bias: true,
    });
    defs[out].layer = op.init(&mut Initializer::new(seed), &graph.device());
    Ok(Graph::from_nodes(input, defs, out)?)
}

/// Every built-in criterion; Shapley with 10 antithetic pairs of orders per group (2 in a
/// quick run).
fn criteria(quick: bool) -> Vec<(&'static str, Box<dyn Criterion>)> {
    vec![
        ("random", Box::new(RandomCriterion)),
        ("l1", Box::new(WeightNorm::l1())),
        ("gradient", Box::new(Gradient::default())),
        ("taylor", Box::new(Taylor::default())),
        ("lrp", Box::new(LrpCriterion::default())),
        ("frs", Box::new(FeatureRelevance::default())),
        (
            "shapley",
            Box::new(Shapley {
                permutations: if quick { 2 } else { 10 },
                tolerance: None,
                antithetic: true,
                ..Shapley::default()
            }),
        ),
    ]
}

/// Per-criterion normalisation for global ranking (as in the papers: L1 for LRP and weight
/// norms, L2 otherwise).
fn normalization(name: &str) -> Normalization {
    match name {
        "lrp" | "l1" => Normalization::L1,
        _ => Normalization::L2,
    }
}

pub fn run(g: &Global, a: &DemoArgs) -> Result<()> {
    let started = Instant::now();
    let dev = device(&g.backend)?;
    let devices = scoring_devices(g)?;
    std::fs::create_dir_all(&a.output).map_err(io(&a.output))?;
    let (source_n, source_epochs, test_n, ft_epochs) = if a.quick {
        (600, 2, 200, 5)
    } else {
        (4800, 10, 1000, 30)
    };
    let source_classes: Vec<usize> = (0..6).collect();
    let target_classes: Vec<usize> = (6..10).collect();

    // 1. Source task.
    let all = shapes10(source_n * 10 / 6, g.seed)?;
    let source = all.select_classes(&source_classes)?;
    let source_test = shapes10(test_n * 10 / 6, g.seed + 1)?.select_classes(&source_classes)?;
    let model = demo_cnn(source_classes.len(), &dev, g.seed)?;
    println!(
        "source task: {} classes ({}), {} training images",
        source_classes.len(),
        source_classes
            .iter()
            .map(|c| SHAPES10_CLASSES[*c])
            .collect::<Vec<_>>()
            .join(", "),
        source.len()
    );
    let progress = bar(source_epochs as u64, "training on the source task", g.quiet);
    let config = TrainConfig::new(source_epochs, 64, 3e-3)
        .optimizer(Optimizer::adam())
        .schedule(LrSchedule::Cosine { min_lr: 1e-4 }, ScheduleUnit::Step)
        .drop_last(true)
        .seed(g.seed);
    let trained = xprune::train::Trainer::new(config)
        .devices(devices.clone())
        .on_progress(|p| {
            if p.kind == xprune::train::ProgressKind::EpochEnd {
                progress.inc(1);
            }
        })
        .fit(&model, &source)?;
    progress.finish_and_clear();
    let source_acc = evaluate(&trained.graph, &source_test, g.batch_size)?.accuracy;
    println!(
        "  trained in {:.1} s, test accuracy {:.1}%",
        trained.elapsed.as_secs_f64(),
        100.0 * source_acc
    );

    // 2. Few-shot transfer.
    let target_pool = shapes10(2000, g.seed + 2)?.select_classes(&target_classes)?;
    let few = target_pool.per_class(10, g.seed)?;
    let target_test = shapes10(test_n * 10 / 4, g.seed + 3)?.select_classes(&target_classes)?;
    let transferred = new_head(&trained.graph, target_classes.len(), g.seed + 4)?;
    let ft = |graph: &Graph, epochs: usize, data: &Dataset| -> Result<Graph> {
        let config = TrainConfig::new(epochs, 20, 1e-3)
            .optimizer(Optimizer::adam())
            .seed(g.seed + 5);
        Ok(xprune::train::Trainer::new(config)
            .devices(devices.clone())
            .fit(graph, data)?
            .graph)
    };
    let transferred = ft(&transferred, ft_epochs * 2, &few)?;
    let base_acc = evaluate(&transferred, &target_test, g.batch_size)?.accuracy;
    println!(
        "few-shot task: {} classes ({}), {} labelled images; test accuracy {:.1}%",
        target_classes.len(),
        target_classes
            .iter()
            .map(|c| SHAPES10_CLASSES[*c])
            .collect::<Vec<_>>()
            .join(", "),
        few.len(),
        100.0 * base_acc
    );

    // 3. Prune with every criterion.
    let ratios = [0.3, 0.5, 0.7];
    let mut csv = Csv::new(&[
        "criterion",
        "ratio",
        "fine_tuned",
        "accuracy",
        "mac_reduction",
        "params",
        "macs",
        "score_seconds",
    ]);
    let mut table = vec![];
    let mut series_no_ft = vec![];
    let mut series_ft = vec![];
    let criteria = criteria(a.quick);
    let progress = bar((criteria.len() * ratios.len()) as u64, "pruning", g.quiet);
    for (name, criterion) in criteria {
        progress.set_message(format!("pruning ({name})"));
        let scoring = Instant::now();
        let pruner = Pruner::new(criterion)
            .batch_size(g.batch_size)
            .devices(devices.clone())
            .seed(g.seed);
        let (groups, scores) = pruner.score(&transferred, Some(&few))?;
        let score_seconds = scoring.elapsed().as_secs_f64();
        let (mut pts, mut pts_ft) = (vec![(0.0, base_acc)], vec![(0.0, base_acc)]);
        let mut row = vec![name.to_string()];
        for &ratio in &ratios {
            let sel = Selection::ratio(ratio).normalization(normalization(name));
            let plan = xprune::prune::select(&transferred, &groups, &scores, &sel)?;
            let pruned = xprune::surgery::prune(&transferred, &groups, &plan)?;
            let counts = xprune::surgery::count(&pruned);
            let before = xprune::surgery::count(&transferred);
            let acc = evaluate(&pruned, &target_test, g.batch_size)?.accuracy;
            let tuned = ft(&pruned, ft_epochs, &few)?;
            let acc_ft = evaluate(&tuned, &target_test, g.batch_size)?.accuracy;
            for (tuned_flag, value) in [(false, acc), (true, acc_ft)] {
                csv.row(vec![
                    name.into(),
                    format!("{ratio}"),
                    tuned_flag.to_string(),
                    format!("{value:.4}"),
                    format!("{:.3}", before.mac_ratio(&counts)),
                    counts.params.to_string(),
                    counts.macs.to_string(),
                    format!("{score_seconds:.2}"),
                ]);
            }
            pts.push((ratio, acc));
            pts_ft.push((ratio, acc_ft));
            row.push(format!("{:.1} / {:.1}", 100.0 * acc, 100.0 * acc_ft));
            progress.inc(1);
        }
        row.push(format!("{score_seconds:.1}"));
        table.push(row);
        series_no_ft.push(Series {
            name: name.into(),
            points: pts,
            dashed: false,
        });
        series_ft.push(Series {
            name: name.into(),
            points: pts_ft,
            dashed: false,
        });
    }
    progress.finish_and_clear();
    csv.write(&a.output.join("demo.csv"))?;
    Plot {
        title: "Few-shot task: accuracy after pruning, no fine-tuning".into(),
        x_label: "fraction of channels removed".into(),
        y_label: "test accuracy".into(),
        series: series_no_ft,
        log_x: false,
    }
    .write(&a.output.join("demo_no_finetune.svg"))?;
    Plot {
        title: format!("Few-shot task: accuracy after pruning and {ft_epochs} epochs of fine-tuning on 40 images"),
        x_label: "fraction of channels removed".into(),
        y_label: "test accuracy".into(),
        series: series_ft,
        log_x: false,
    }
    .write(&a.output.join("demo_finetuned.svg"))?;
    println!("\ntest accuracy (%) on the few-shot task after pruning: without / with fine-tuning");
    println!("unpruned: {:.1}", 100.0 * base_acc);
    println!(
        "{:<10} {:>14} {:>14} {:>14} {:>10}",
        "criterion", "30%", "50%", "70%", "score s"
    );
    for row in &table {
        println!(
            "{:<10} {:>14} {:>14} {:>14} {:>10}",
            row[0], row[1], row[2], row[3], row[4]
        );
    }
    println!(
        "\nwrote demo.csv, demo_no_finetune.svg and demo_finetuned.svg to {} ({:.0} s in total)",
        a.output.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
