//! `xprune sweep`: accuracy against pruning ratio per criterion, in mask mode (no surgery, no
//! fine-tuning), as CSV and SVG.

use crate::args::{CriterionArgs, Global, SweepArgs};
use crate::cmd::{device, scoring_devices};
use crate::csv::Csv;
use crate::error::{CliError, Result, io};
use crate::load;
use crate::plot::{Plot, Series};
use crate::progress::bar;
use xprune::criteria::Needs;
use xprune::graph::tensor_util::to_vec_int;
use xprune::prune::select;
use xprune::surgery::ChannelGroups;
use xprune::{ChannelMasks, Dataset, Graph, PruneTarget, Pruner, Selection};

/// Accuracy of `graph` on `data` with `masks` applied.
pub fn masked_accuracy(
    graph: &Graph,
    data: &Dataset,
    masks: &ChannelMasks,
    batch: usize,
) -> Result<f64> {
    let dev = graph.device();
    let mut correct = 0usize;
    for idx in data.batch_indices(batch) {
        let b = data.batch(&idx, &dev)?;
        let logits = graph.forward_masked(b.inputs, masks)?.flatten();
        let pred = to_vec_int(&logits.argmax(1).reshape([idx.len()]));
        let labels = to_vec_int(&b.labels);
        correct += pred.iter().zip(&labels).filter(|(p, l)| p == l).count();
    }
    Ok(correct as f64 / data.len().max(1) as f64)
}

pub fn run(g: &Global, a: &SweepArgs) -> Result<()> {
    let dev = device(&g.backend)?;
    let devices = scoring_devices(g)?;
    let graph = load::model(&a.model.model, &dev)?;
    let data = load::dataset(&a.data)?;
    load::check_fit(&graph, &data, &a.data)?;
    let eval = load::dataset(&a.eval)?;
    load::check_fit(&graph, &eval, &a.eval)?;
    if a.criteria.is_empty() || a.ratios.is_empty() {
        return Err(CliError::Usage(
            "give at least one criterion (--criteria) and one ratio (--ratios)".into(),
        ));
    }
    for r in &a.ratios {
        Selection::ratio(*r).validate()?;
    }
    // Every name is checked before the first (slow) scoring pass.
    let mut criteria = Vec::with_capacity(a.criteria.len());
    for name in &a.criteria {
        let args = CriterionArgs {
            criterion: name.clone(),
            composite: None,
            permutations: a.permutations,
            tolerance: xprune::criteria::shapley::DEFAULT_TOLERANCE,
            max_permutations: xprune::criteria::shapley::DEFAULT_MAX_PERMUTATIONS,
            exact_max_channels: 10,
            isp_budget: None,
            isp_epochs: vec![3, 5, 30],
            per_class: None,
            pin: Vec::new(),
            prune_normalized: false,
        };
        criteria.push((
            name.trim().to_string(),
            load::criterion(name, &args, g.quiet)?,
        ));
    }
    std::fs::create_dir_all(&a.output).map_err(io(&a.output))?;
    let groups = ChannelGroups::new(&graph);
    let base = masked_accuracy(&graph, &eval, &ChannelMasks::new(), g.batch_size)?;
    let mut csv = Csv::new(&["criterion", "ratio", "accuracy"]);
    let mut series = Vec::new();
    let progress = bar(
        (a.criteria.len() * a.ratios.len()) as u64,
        "sweeping",
        g.quiet,
    );
    for (name, criterion) in criteria {
        let reference = (criterion.needs() > Needs::Weights).then_some(&data);
        let pruner = Pruner::new(criterion)
            .batch_size(g.batch_size)
            .devices(devices.clone())
            .seed(g.seed);
        progress.set_message(format!("scoring ({name})"));
        let (_, scores) = pruner.score(&graph, reference)?;
        let mut points = vec![(0.0, base)];
        for &ratio in &a.ratios {
            let sel = Selection {
                scope: load::scope(a.scope),
                normalization: load::normalization(a.normalize),
                target: PruneTarget::ChannelRatio(ratio),
                ..Selection::default()
            };
            let plan = select(&graph, &groups, &scores, &sel)?;
            let masks = plan.masks(&graph, &groups, &dev)?;
            let acc = masked_accuracy(&graph, &eval, &masks, g.batch_size)?;
            csv.row(vec![name.clone(), format!("{ratio}"), format!("{acc:.4}")]);
            points.push((ratio, acc));
            progress.inc(1);
        }
        series.push(Series {
            name: name.clone(),
            points,
            dashed: false,
        });
    }
    progress.finish_and_clear();
    let csv_path = a.output.join("sweep.csv");
    csv.write(&csv_path)?;
    Plot {
        title: "Accuracy after pruning, without fine-tuning".into(),
        x_label: "fraction of channels removed".into(),
        y_label: "accuracy".into(),
        series,
        log_x: false,
    }
    .write(&a.output.join("sweep.svg"))?;
    println!("unpruned accuracy {base:.4}");
    for row in csv.rows() {
        println!("{:<10} ratio {:<5} accuracy {}", row[0], row[1], row[2]);
    }
    println!("wrote {} and sweep.svg", csv_path.display());
    Ok(())
}
