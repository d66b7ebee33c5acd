//! `xprune groups`: the channel groups of a model.

use crate::args::{Global, GroupsArgs};
use crate::cmd::device;
use crate::error::{Result, io};
use crate::load;
use serde_json::json;
use std::io::Write;
use xprune::Graph;
use xprune::surgery::{ChannelGroups, GroupOptions, count};

/// The groups as JSON, with node names (not ids): the model's parameter and MAC counts and,
/// per group, its id, name, channel count, whether it can be pruned, why not, and every
/// member with its role and channel slot.
pub fn groups_json(graph: &Graph, groups: &ChannelGroups) -> serde_json::Value {
    let counts = count(graph);
    let nodes = graph.nodes();
    let list: Vec<serde_json::Value> = groups
        .iter()
        .map(|g| {
            let members: Vec<serde_json::Value> = g
                .members()
                .iter()
                .map(|m| {
                    let slot = m.slot();
                    let mut entry = json!({
                        "role": m.role_name(),
                        "node": nodes[slot.node].name,
                    });
                    match slot.positions.strided() {
                        Some((offset, block)) => {
                            entry["offset"] = json!(offset);
                            entry["block"] = json!(block);
                        }
                        None => {
                            let indices: Vec<Vec<u32>> = (0..slot.positions.channels())
                                .map(|k| slot.positions.of(k).to_vec())
                                .collect();
                            entry["indices"] = json!(indices);
                        }
                    }
                    entry
                })
                .collect();
            let pins: Vec<String> = g.pins().iter().map(|p| p.to_string()).collect();
            json!({
                "id": g.id(),
                "name": g.name(),
                "channels": g.channels(),
                "prunable": g.is_prunable(),
                "pinned_because": pins,
                "members": members,
            })
        })
        .collect();
    json!({
        "params": counts.params,
        "macs": counts.macs,
        "prunable_channels": groups.prunable().map(|g| g.channels()).sum::<usize>(),
        "groups": list,
    })
}

pub fn run(g: &Global, a: &GroupsArgs) -> Result<()> {
    let dev = device(&g.backend)?;
    let graph = load::model(&a.model.model, &dev)?;
    let options = GroupOptions::default()
        .prune_normalized(a.prune_normalized)
        .pin_names(&graph, &a.pin)?;
    let groups = ChannelGroups::with_options(&graph, &options);
    let text = if a.json {
        let json = groups_json(&graph, &groups);
        format!(
            "{}\n",
            serde_json::to_string_pretty(&json).expect("json values serialise")
        )
    } else {
        format!("{}\n{groups}", count(&graph))
    };
    // A closed pipe (`xprune groups ... | head`) is not an error.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(io("<stdout>")(e)),
        _ => Ok(()),
    }
}
