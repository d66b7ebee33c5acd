//! `xprune prune`: score, select, remove; write the smaller model and the plan.

use crate::args::{CriterionArgs, Global, PruneArgs};
use crate::cmd::{device, scoring_devices};
use crate::error::{CliError, Result, io};
use crate::load;
use crate::progress::bar;
use serde_json::json;
use std::sync::Arc;
use xprune::criteria::Needs;
use xprune::graph::ChannelFlow;
use xprune::latency::DeviceTimer;
use xprune::prune::PruneProgress;
use xprune::surgery::{ChannelGroups, NodeRemovals};
use xprune::{Graph, LatencyModel, LayerTimer, ProbeOptions, PruneOutcome, Pruner, RunnerTimer};

/// The plan as JSON: removed channel indices by group, and removed output/input indices of
/// every changed node, by node name; `groups` are the original graph's groups the pruner
/// used.
pub fn plan_json(
    graph: &Graph,
    groups: &ChannelGroups,
    outcome: &PruneOutcome,
    criterion: &str,
) -> Result<serde_json::Value> {
    let resolved = outcome.original_plan().resolve(groups)?;
    let removals = NodeRemovals::new(graph, groups, &resolved);
    let mut layers = serde_json::Map::new();
    for (id, info) in graph.nodes().iter().enumerate() {
        let inputs: Vec<_> = info
            .inputs
            .iter()
            .map(|&i| graph.nodes()[i].shape)
            .collect();
        // Input columns are removed from the layers that mix their inputs (the others lose
        // their inputs' channels with their outputs).
        let mixes = matches!(info.op.flow(&inputs, info.shape), ChannelFlow::Mix { .. });
        let (out, inp) = (
            removals.output(id),
            if mixes { removals.input(id) } else { &[][..] },
        );
        if out.is_empty() && inp.is_empty() {
            continue;
        }
        let mut entry = serde_json::Map::new();
        entry.insert("kind".into(), json!(info.op.kind_name()));
        if !out.is_empty() {
            entry.insert("removed_outputs".into(), json!(out));
        }
        if !inp.is_empty() {
            entry.insert("removed_inputs".into(), json!(inp));
        }
        layers.insert(info.name.clone(), serde_json::Value::Object(entry));
    }
    Ok(json!({
        "criterion": criterion,
        "groups": outcome.removed,
        "layers": layers,
        "before": { "params": outcome.original.params, "macs": outcome.original.macs },
        "after": { "params": outcome.pruned.params, "macs": outcome.pruned.macs },
    }))
}

pub fn run(g: &Global, a: &PruneArgs) -> Result<()> {
    let dev = device(&g.backend)?;
    let devices = scoring_devices(g)?;
    let graph = load::model(&a.model.model, &dev)?;
    // ISP learns its gates for the MAC budget the selection targets.
    let criterion_args = CriterionArgs {
        isp_budget: a.criterion.isp_budget.or(a.select.mac_budget),
        ..a.criterion.clone()
    };
    let criterion = load::criterion(&a.criterion.criterion, &criterion_args, g.quiet)?;
    let mut selection = load::selection(&a.select)?;
    load::check_model_output(&a.output)?;
    let data = match &a.data {
        Some(p) => {
            let d = load::dataset(p)?;
            load::check_fit(&graph, &d, p)?;
            Some(load::reference(d, a.criterion.per_class, g.seed)?)
        }
        None if criterion.needs() > Needs::Weights => {
            return Err(CliError::Usage(format!(
                "criterion `{}` needs reference data: give --data D.npz",
                criterion.name()
            )));
        }
        None => None,
    };
    let name = criterion.name();
    let progress = bar(1, format!("scoring ({name})"), g.quiet);
    let bar_handle = progress.clone();
    let mut pruner = Pruner::new(criterion)
        .pin(a.criterion.pin.clone())
        .prune_normalized(a.criterion.prune_normalized)
        .batch_size(g.batch_size)
        .devices(devices.clone())
        .seed(g.seed)
        .on_progress(move |p| {
            if let PruneProgress::Pruned { .. } = p {
                bar_handle.inc(1);
            }
        });
    // A latency budget's model is probed on the groups the pruner will use, on this device or
    // by the runner.
    let options = ProbeOptions {
        batch: a.select.latency_batch,
        inference_form: a.fold_batch_norms,
        seed: g.seed,
        ..ProbeOptions::default()
    };
    let mut runner = match &a.select.latency_runner {
        Some(command) => {
            let command: Vec<String> = command.split_whitespace().map(String::from).collect();
            Some(RunnerTimer::spawn(&command, &options)?)
        }
        None => None,
    };
    let latency = match a.select.latency_budget {
        Some(_) => {
            let groups = pruner.groups(&graph)?;
            progress.set_message("probing latency (once per model and device)");
            let model = latency_model(g, a, &graph, &groups, &options, runner.as_mut());
            progress.set_message(format!("scoring ({name})"));
            let model = model?;
            selection = selection.latency_model(model.clone());
            selection.validate()?;
            Some(model)
        }
        None => None,
    };
    pruner = pruner.selection(selection);
    let outcome = pruner.one_shot(&graph, data.as_ref());
    progress.finish_and_clear();
    let outcome = outcome?;
    let folded = match a.fold_batch_norms {
        true => Some(xprune::inference_form(&outcome.graph)?),
        false => None,
    };
    load::save_model(
        folded.as_ref().map_or(&outcome.graph, |f| &f.graph),
        &a.output,
    )?;
    if let Some(plan) = &a.plan {
        let json = plan_json(&graph, &pruner.groups(&graph)?, &outcome, &name)?;
        std::fs::write(plan, serde_json::to_string_pretty(&json).expect("json"))
            .map_err(io(plan))?;
    }
    let removed: usize = outcome.removed.values().map(|v| v.len()).sum();
    println!(
        "removed {removed} channels with {name}: {} -> {} parameters, {} -> {} MACs ({:.2}x fewer); wrote {}",
        outcome.original.params,
        outcome.pruned.params,
        outcome.original.macs,
        outcome.pruned.macs,
        outcome.mac_reduction(),
        a.output.display()
    );
    if let Some(model) = &latency {
        report_latency(model, &graph, &outcome.graph, a, &options, runner.as_mut())?;
    }
    if let Some(f) = folded {
        println!(
            "inference form: {} batch norms folded, {} nodes removed, {} parameters",
            f.folded.len(),
            f.removed.len(),
            xprune::surgery::count(&f.graph).params
        );
    }
    Ok(())
}

/// The latency model of `--latency-budget`: read from its file if it fits, else probed and
/// written there.
fn latency_model(
    g: &Global,
    a: &PruneArgs,
    graph: &Graph,
    groups: &ChannelGroups,
    options: &ProbeOptions,
    runner: Option<&mut RunnerTimer>,
) -> Result<Arc<LatencyModel>> {
    let path = a
        .select
        .latency_model
        .clone()
        .unwrap_or_else(|| a.output.with_extension("latency.json"));
    let (model, probed) = match runner {
        Some(timer) => LatencyModel::probe_or_load_with(&path, graph, groups, options, timer)?,
        None => LatencyModel::probe_or_load(&path, graph, groups, options)?,
    };
    if !g.quiet {
        eprintln!(
            "latency model: {} {} (dense {:.2} ms per batch of {})",
            if probed { "probed and wrote" } else { "read" },
            path.display(),
            model.dense_ms,
            model.batch
        );
    }
    let scale = model.scale();
    if !(0.8..=1.25).contains(&scale) {
        eprintln!(
            "warning: the nodes of this model timed alone take {:.2}x the time of its whole \
             forward pass; latency predictions for pruned versions may be off by as much",
            1.0 / scale
        );
    }
    Ok(Arc::new(model))
}

/// Prints the predicted and the measured latency of the dense and the pruned model (their
/// inference forms with --fold-batch-norms), at the latency model's batch size, measured on
/// this device or by the runner.
fn report_latency(
    model: &LatencyModel,
    dense: &Graph,
    pruned: &Graph,
    a: &PruneArgs,
    options: &ProbeOptions,
    runner: Option<&mut RunnerTimer>,
) -> Result<()> {
    let predicted = (model.predict(dense)?, model.predict(pruned)?);
    let deployed = |graph: &Graph| -> Result<Graph> {
        Ok(match a.fold_batch_norms {
            true => xprune::inference_form(graph)?.graph,
            false => graph.clone(),
        })
    };
    let (dense, pruned) = (deployed(dense)?, deployed(pruned)?);
    // Timed in turn, the fastest of five rounds kept, so that other load on the machine slows
    // both; on this device one run after a warm-up per round, by the runner its own runs.
    let mut device;
    let timer: &mut dyn LayerTimer = match runner {
        Some(runner) => runner,
        None => {
            let once = ProbeOptions {
                warmup: 1,
                reps: 1,
                ..options.clone()
            };
            device = DeviceTimer::new(dense.device(), &once);
            &mut device
        }
    };
    let mut measured = (f64::INFINITY, f64::INFINITY);
    for _ in 0..5 {
        measured.0 = measured.0.min(timer.time_graph(&dense)?);
        measured.1 = measured.1.min(timer.time_graph(&pruned)?);
    }
    print_latency(model.batch, predicted, measured);
    Ok(())
}

/// The line of `report_latency`.
fn print_latency(batch: usize, predicted: (f64, f64), measured: (f64, f64)) {
    println!(
        "latency per batch of {batch}: predicted {:.2} -> {:.2} ms ({:.3} of dense), measured \
         {:.2} -> {:.2} ms ({:.3})",
        predicted.0,
        predicted.1,
        predicted.1 / predicted.0,
        measured.0,
        measured.1,
        measured.1 / measured.0
    );
}
