//! `xprune prune`: score, select, remove; write the smaller model and the plan.

use crate::args::{CriterionArgs, Global, PruneArgs};
use crate::cmd::device;
use crate::error::{CliError, Result, io};
use crate::load;
use crate::progress::bar;
use serde_json::json;
use xprune::criteria::Needs;
use xprune::graph::ChannelFlow;
use xprune::prune::PruneProgress;
use xprune::surgery::{ChannelGroups, NodeRemovals};
use xprune::{Graph, PruneOutcome, Pruner};

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
    let graph = load::model(&a.model.model, &dev)?;
    // ISP learns its gates for the MAC budget the selection targets.
    let criterion_args = CriterionArgs {
        isp_budget: a.criterion.isp_budget.or(a.select.mac_budget),
        ..a.criterion.clone()
    };
    let criterion = load::criterion(&a.criterion.criterion, &criterion_args, g.quiet)?;
    let selection = load::selection(&a.select)?;
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
        .selection(selection)
        .pin(a.criterion.pin.clone())
        .prune_normalized(a.criterion.prune_normalized)
        .batch_size(g.batch_size)
        .seed(g.seed)
        .on_progress(move |p| {
            if let PruneProgress::Pruned { .. } = p {
                bar_handle.inc(1);
            }
        });
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
