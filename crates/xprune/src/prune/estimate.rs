//! Exact parameter and MAC counts of a graph after a plan, computed from the structure alone
//! (no weights are sliced), for budget targets.

use xprune_graph::Graph;
use xprune_surgery::{ChannelGroups, ResolvedPlan, count_after};

/// Parameters and MACs per sample the graph would have after `plan`: the surgery crate's
/// [`count_after`], which uses the same per-kind counts as every other count.
pub fn counts_after(graph: &Graph, groups: &ChannelGroups, plan: &ResolvedPlan) -> (u64, u64) {
    let c = count_after(graph, groups, plan);
    (c.params, c.macs)
}
