//! [`GateLayout`]: one gate per channel of every prunable group, how gate values become
//! channel masks on the graph (differentiably), and how open/closed gates become a
//! [`PrunePlan`].

use crate::{IspError, Result};
use burn::tensor::{Int, Tensor, TensorData};
use std::collections::BTreeMap;
use xprune_graph::{ChannelMasks, Graph, NodeId};
use xprune_surgery::{ChannelGroups, GroupId, PrunePlan};

/// The gated groups: every prunable group of a [`ChannelGroups`], in its order, each with one
/// gate per group channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateLayout {
    groups: Vec<GatedGroup>,
}

/// One gated group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatedGroup {
    /// The group's id in its [`ChannelGroups`].
    pub id: GroupId,
    /// The group's name.
    pub name: String,
    /// Its number of channels (gates).
    pub channels: usize,
}

impl GateLayout {
    /// The layout of the prunable groups of `groups` (found on `graph`).
    ///
    /// # Errors
    ///
    /// When the groups do not belong to the graph, or no group is prunable.
    pub fn new(graph: &Graph, groups: &ChannelGroups) -> Result<Self> {
        Self::until(graph, groups, graph.len().saturating_sub(1))
    }

    /// The layout of the prunable groups that hold a channel at or before node `last` (the
    /// groups whose removal can change the value of `last`; ISP gates those its selector
    /// sees).
    ///
    /// # Errors
    ///
    /// When the groups do not belong to the graph, or no such group is prunable.
    pub fn until(graph: &Graph, groups: &ChannelGroups, last: NodeId) -> Result<Self> {
        groups
            .check(graph)
            .map_err(|e| IspError(format!("the channel groups do not fit the graph: {e}")))?;
        let groups: Vec<GatedGroup> = groups
            .prunable()
            .filter(|g| g.mask_nodes().iter().any(|s| s.node <= last))
            .map(|g| GatedGroup {
                id: g.id(),
                name: g.name().to_string(),
                channels: g.channels(),
            })
            .collect();
        if groups.is_empty() {
            return Err(IspError(
                "the graph has no prunable channel group to gate".into(),
            ));
        }
        Ok(Self { groups })
    }

    /// The gated groups.
    pub fn groups(&self) -> &[GatedGroup] {
        &self.groups
    }

    /// Number of gated groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether no group is gated (never true for a layout from [`GateLayout::new`]).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Total number of gates.
    pub fn total_channels(&self) -> usize {
        self.groups.iter().map(|g| g.channels).sum()
    }

    /// Checks that `gates` has one `[channels]` vector per group.
    pub fn check(&self, gates: &[Tensor<1>]) -> Result<()> {
        if gates.len() != self.groups.len() {
            return Err(IspError(format!(
                "{} gate vectors for {} gated groups",
                gates.len(),
                self.groups.len()
            )));
        }
        for (g, t) in self.groups.iter().zip(gates) {
            if t.dims()[0] != g.channels {
                return Err(IspError(format!(
                    "group `{}` has {} channels, its gate vector {}",
                    g.name,
                    g.channels,
                    t.dims()[0]
                )));
            }
        }
        Ok(())
    }

    /// Channel masks `[1, C]` for every node that holds a gated channel (the producers and
    /// carriers of each group, exactly where surgery's mask mode masks), with each channel
    /// multiplied by its gate: `graph.forward_masked(x, &masks)` with gates of exactly 0 and 1
    /// equals the pruned graph at the kept channels. Differentiable in the gates.
    ///
    /// # Errors
    ///
    /// When `gates` does not fit the layout or the groups do not fit the graph.
    pub fn masks(
        &self,
        graph: &Graph,
        groups: &ChannelGroups,
        gates: &[Tensor<1>],
    ) -> Result<ChannelMasks> {
        self.check(gates)?;
        let mut per_node: BTreeMap<NodeId, Tensor<1>> = BTreeMap::new();
        for (gated, gate) in self.groups.iter().zip(gates) {
            let group = groups
                .get(gated.id)
                .ok_or_else(|| IspError(format!("no group #{} in the groups", gated.id)))?;
            let device = gate.device();
            // Gate values followed by a 1 for the indices the group does not hold.
            let padded = Tensor::cat(vec![gate.clone(), Tensor::ones([1], &device)], 0);
            for slot in group.mask_nodes() {
                let channels = graph
                    .node(slot.node)
                    .map_err(|e| IspError(e.to_string()))?
                    .shape
                    .channels();
                let mut index = vec![gated.channels as i64; channels];
                for k in 0..gated.channels {
                    for i in slot.indices(k) {
                        if i < channels {
                            index[i] = k as i64;
                        }
                    }
                }
                let index =
                    Tensor::<1, Int>::from_data(TensorData::new(index, [channels]), &device);
                let values = padded.clone().select(0, index);
                let entry = per_node.remove(&slot.node);
                per_node.insert(
                    slot.node,
                    match entry {
                        Some(m) => m * values,
                        None => values,
                    },
                );
            }
        }
        let mut masks = ChannelMasks::new();
        for (node, m) in per_node {
            let c = m.dims()[0];
            masks.insert(node, m.reshape([1, c]));
        }
        Ok(masks)
    }

    /// The plan that removes the channels whose gate is closed (`open[g][k] == false`); a
    /// group whose gates are all closed keeps the channel with the highest `logits` value
    /// (surgery never removes a whole group).
    ///
    /// # Errors
    ///
    /// When the shapes do not fit the layout.
    pub fn plan(&self, open: &[Vec<bool>], logits: &[Vec<f32>]) -> Result<PrunePlan> {
        if open.len() != self.groups.len() || logits.len() != self.groups.len() {
            return Err(IspError(format!(
                "{} open lists and {} logit lists for {} gated groups",
                open.len(),
                logits.len(),
                self.groups.len()
            )));
        }
        let mut plan = PrunePlan::new();
        for ((g, o), l) in self.groups.iter().zip(open).zip(logits) {
            if o.len() != g.channels || l.len() != g.channels {
                return Err(IspError(format!(
                    "group `{}` has {} channels, got {} gates and {} logits",
                    g.name,
                    g.channels,
                    o.len(),
                    l.len()
                )));
            }
            let mut remove: Vec<usize> = (0..g.channels).filter(|&k| !o[k]).collect();
            if remove.len() == g.channels {
                let best = (0..g.channels)
                    .max_by(|&a, &b| l[a].total_cmp(&l[b]))
                    .unwrap_or(0);
                remove.retain(|&k| k != best);
            }
            if !remove.is_empty() {
                plan.insert(g.name.as_str(), remove);
            }
        }
        Ok(plan)
    }
}
