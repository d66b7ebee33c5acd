//! [`NodeRemovals`]: what a validated plan removes from every node's output and inputs.

use crate::group::{ChannelGroups, Member};
use crate::plan::ResolvedPlan;
use xprune_graph::kind::flow::complement;
use xprune_graph::{Graph, NodeId};

/// The channel indices a plan removes from each node's output (along its channel axis;
/// features for flat values). A node's inputs lose what the nodes feeding them lose. Sorted
/// and unique.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRemovals {
    outputs: Vec<Vec<usize>>,
    inputs: Vec<Vec<NodeId>>,
}

impl NodeRemovals {
    /// Collects the removals of `plan` over the members of `groups` (found on `graph`).
    pub fn new(graph: &Graph, groups: &ChannelGroups, plan: &ResolvedPlan) -> Self {
        let n = groups.node_count();
        let mut outputs = vec![Vec::new(); n];
        for (id, removed) in plan.iter() {
            let Some(group) = groups.get(id) else {
                continue;
            };
            for m in group
                .members()
                .iter()
                .filter(|m: &&Member| !m.is_consumer())
            {
                let target = &mut outputs[m.node()];
                for &k in removed {
                    target.extend(m.slot.indices(k));
                }
            }
        }
        for v in outputs.iter_mut() {
            v.sort_unstable();
            v.dedup();
        }
        let inputs = graph.nodes().iter().map(|n| n.inputs.clone()).collect();
        Self { outputs, inputs }
    }

    /// Every node's per-sample output shape with these removals (in node order).
    pub fn shapes(&self, graph: &Graph) -> Vec<xprune_graph::FeatureShape> {
        graph
            .nodes()
            .iter()
            .enumerate()
            .map(|(id, n)| {
                let c = n.shape.channels();
                n.shape.with_channels(c - self.output(id).len().min(c))
            })
            .collect()
    }

    /// Removed output indices of a node.
    pub fn output(&self, node: NodeId) -> &[usize] {
        self.outputs.get(node).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Removed indices of input `k` of a node (what the node feeding it loses).
    pub fn input_of(&self, node: NodeId, k: usize) -> &[usize] {
        self.inputs
            .get(node)
            .and_then(|ins| ins.get(k))
            .map_or(&[], |&src| self.output(src))
    }

    /// Removed indices of the first input of a node.
    pub fn input(&self, node: NodeId) -> &[usize] {
        self.input_of(node, 0)
    }

    /// Kept output indices of a node with `len` outputs.
    pub fn kept_output(&self, node: NodeId, len: usize) -> Vec<usize> {
        complement(self.output(node), len)
    }

    /// Kept indices of the first input of a node with `len` inputs.
    pub fn kept_input(&self, node: NodeId, len: usize) -> Vec<usize> {
        complement(self.input(node), len)
    }

    /// Whether a node's output or any of its inputs loses channels.
    pub fn touches(&self, node: NodeId) -> bool {
        !self.output(node).is_empty()
            || (0..self.inputs.get(node).map_or(0, Vec::len))
                .any(|k| !self.input_of(node, k).is_empty())
    }

    /// Nodes whose output loses at least one index.
    pub fn changed_outputs(&self) -> impl Iterator<Item = (NodeId, &[usize])> {
        self.outputs
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .map(|(i, v)| (i, v.as_slice()))
    }
}
