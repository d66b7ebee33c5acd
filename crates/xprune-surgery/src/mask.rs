//! Mask mode: a plan applied as channel masks on the unchanged graph.

use crate::error::Result;
use crate::group::ChannelGroups;
use crate::plan::{PrunePlan, ResolvedPlan};
use crate::removal::NodeRemovals;
use burn::tensor::{Device, Tensor, TensorData};
use xprune_graph::{ChannelMasks, Graph};

impl PrunePlan {
    /// The plan as channel masks on `graph`: a `[1, C]` mask with 0 at every removed index
    /// (1 elsewhere) on the output of every node that holds a removed channel (producers
    /// and all carriers, with the masks of groups sharing a concat combined).
    ///
    /// `graph.forward_masked(x, &masks)` then equals `prune(graph, groups, plan)?.forward(x)`
    /// at the kept channels: every removed channel is zero wherever it flows (a batch norm
    /// would turn a zeroed input into its `beta`, so carriers are masked too, not only
    /// producers), so consumers receive nothing from it.
    pub fn masks(
        &self,
        graph: &Graph,
        groups: &ChannelGroups,
        device: &Device,
    ) -> Result<ChannelMasks> {
        groups.check(graph)?;
        let resolved = self.resolve(groups)?;
        masks_resolved(graph, groups, &resolved, device)
    }
}

/// [`PrunePlan::masks`] with an already validated plan.
pub fn masks_resolved(
    graph: &Graph,
    groups: &ChannelGroups,
    plan: &ResolvedPlan,
    device: &Device,
) -> Result<ChannelMasks> {
    groups.check(graph)?;
    let removals = NodeRemovals::new(graph, groups, plan);
    let mut masks = ChannelMasks::new();
    for (node, removed) in removals.changed_outputs() {
        let channels = graph.nodes()[node].shape.channels();
        let mut values = vec![1.0f32; channels];
        for &i in removed {
            values[i] = 0.0;
        }
        masks.insert(
            node,
            Tensor::from_data(TensorData::new(values, [1, channels]), device),
        );
    }
    Ok(masks)
}
