//! [`NodeRemovals`]: what a validated plan removes from every node's output and input.

use crate::group::{ChannelGroups, Member};
use crate::plan::{ResolvedPlan, complement};
use xprune_graph::NodeId;

/// The indices a plan removes from each node: output channels (features for flat values) of
/// producers and carriers, and input channels (features) of consumers. Sorted and unique.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRemovals {
    outputs: Vec<Vec<usize>>,
    inputs: Vec<Vec<usize>>,
}

impl NodeRemovals {
    /// Collects the removals of `plan` over the members of `groups` (found on a graph of
    /// `groups`' node count).
    pub fn new(groups: &ChannelGroups, plan: &ResolvedPlan) -> Self {
        let n = groups.nodes.len();
        let mut outputs = vec![Vec::new(); n];
        let mut inputs = vec![Vec::new(); n];
        for (id, removed) in plan.iter() {
            let Some(group) = groups.get(id) else {
                continue;
            };
            for m in group.members() {
                let slot = m.slot();
                let target: &mut Vec<usize> = match m {
                    Member::Consumer { .. } => &mut inputs[slot.node],
                    _ => &mut outputs[slot.node],
                };
                for &k in removed {
                    target.extend(slot.indices(k));
                }
            }
        }
        for v in outputs.iter_mut().chain(inputs.iter_mut()) {
            v.sort_unstable();
            v.dedup();
        }
        Self { outputs, inputs }
    }

    /// Removed output indices of a node.
    pub fn output(&self, node: NodeId) -> &[usize] {
        self.outputs.get(node).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Removed input indices of a node (conv and linear consumers only).
    pub fn input(&self, node: NodeId) -> &[usize] {
        self.inputs.get(node).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Kept output indices of a node with `len` outputs.
    pub fn kept_output(&self, node: NodeId, len: usize) -> Vec<usize> {
        complement(self.output(node), len)
    }

    /// Kept input indices of a node with `len` inputs.
    pub fn kept_input(&self, node: NodeId, len: usize) -> Vec<usize> {
        complement(self.input(node), len)
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
