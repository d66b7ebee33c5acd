//! The report of `docs/surgery.md` and `docs/onnx.md` on the CNN zoo: for each architecture of
//! `tests/fixtures/zoo/` (torchvision's definitions at reduced width, exported by PyTorch),
//! the imported graph's size, its channel groups (prunable and pinned, with the reasons), and
//! what removing 30% of the channels of every prunable group (lowest L1 norms first) does to
//! MACs; with pruning through layer norms allowed as a second row where it changes anything.
//!
//! `cargo run -p xprune --example zoo_report [-- DIR]`

use std::collections::BTreeMap;
use std::path::PathBuf;
use xprune::burn::tensor::Device;
use xprune::io::onnx::import_onnx;
use xprune::surgery::{PinReason, count, count_after};
use xprune::{ChannelGroups, Pruner, Scope, Selection, WeightNorm};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/zoo")
        });
    let device = Device::flex();
    let mut names: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".onnx").map(str::to_string))
        .filter(|n| !n.contains('.'))
        .collect();
    names.sort();
    println!(
        "| model | nodes | kinds | MACs | params | groups | prunable | pinned (why) | MACs after 30% per group | reduction |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for name in names {
        let started = std::time::Instant::now();
        let graph = import_onnx(dir.join(format!("{name}.onnx")), &device)?;
        let kinds: std::collections::BTreeSet<&str> =
            graph.nodes().iter().map(|n| n.op.kind_name()).collect();
        for allow in [false, true] {
            let pruner = Pruner::new(WeightNorm::l1())
                .selection(Selection::ratio(0.3).scope(Scope::PerGroup))
                .prune_normalized(allow);
            let groups = pruner.groups(&graph)?;
            if allow && groups.prunable().count() == ChannelGroups::new(&graph).prunable().count() {
                continue;
            }
            let mut why: BTreeMap<String, usize> = BTreeMap::new();
            for g in groups.iter().filter(|g| !g.is_prunable()) {
                let reason = match &g.pins()[0] {
                    PinReason::Input { .. } => "input".to_string(),
                    PinReason::Output { .. } => "output".to_string(),
                    PinReason::User { .. } => "user".to_string(),
                    PinReason::Layer { reason, .. } if reason.contains("normalises") => {
                        "layer norm".to_string()
                    }
                    PinReason::Layer { reason, .. } => reason.clone(),
                };
                *why.entry(reason).or_default() += 1;
            }
            let pinned: Vec<String> = why.iter().map(|(k, v)| format!("{v} {k}")).collect();
            let (groups, _, plan) = pruner.plan(&graph, None)?;
            let resolved = plan.resolve(&groups)?;
            let (before, after) = (count(&graph), count_after(&graph, &groups, &resolved));
            println!(
                "| {name}{} | {} | {} | {:.1} M | {:.1} k | {} | {} | {} | {:.1} M | {:.2}x |",
                if allow { " (through norms)" } else { "" },
                graph.len(),
                kinds.len(),
                before.macs as f64 / 1e6,
                before.params as f64 / 1e3,
                groups.len(),
                groups.prunable().count(),
                pinned.join(", "),
                after.macs as f64 / 1e6,
                before.macs as f64 / after.macs as f64
            );
        }
        eprintln!("{name}: {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(())
}
