//! # xprune-surgery
//!
//! Structured channel removal for xprune [`Graph`](xprune_graph::Graph)s that makes models
//! really smaller and faster, not just zeroed:
//!
//! 1. **Channel groups** ([`ChannelGroups::new`]), after Torch-Pruning's dependency graph:
//!    removing output channel `k` of a convolution or linear layer removes input channel `k` of
//!    every consumer; batch norm, ReLU, pooling, dropout, identity and depthwise convolutions
//!    pass the index through; an add ties all its inputs into one group; a concat offsets the
//!    indices of each input; a flatten maps channel `k` to the block of `H*W` features of the
//!    following linear layer. The graph's output node and user-listed nodes are pinned.
//!    Each group lists its members by role ([`Member`]) so criteria can score it.
//! 2. **Surgery** ([`prune`]): a [`PrunePlan`] (group -> channel indices) applied by slicing
//!    Burn layers, giving a new, smaller graph on the same device.
//! 3. **Mask mode** ([`PrunePlan::masks`]): the same plan as [`ChannelMasks`](xprune_graph::ChannelMasks)
//!    on the unchanged graph; the masked and pruned outputs agree.
//! 4. **Counts** ([`count`]): parameters and multiply-accumulates per sample and per node.
//!
//! ```
//! # use xprune_graph::burn::tensor::{Device, Distribution, Tensor};
//! # use xprune_graph::{Conv2dSpec, FeatureShape, GraphBuilder};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let device = Device::flex();
//! # let mut b = GraphBuilder::new(FeatureShape::spatial(3, 8, 8), &device);
//! # let x = b.input();
//! # let x = b.conv2d("conv1", x, Conv2dSpec::new(8, 3).padding(1))?;
//! # let x = b.relu("relu1", x)?;
//! # let x = b.conv2d("layer1.0.conv1", x, Conv2dSpec::new(8, 3).padding(1))?;
//! # let x = b.relu("relu2", x)?;
//! # let x = b.global_avg_pool("gap", x)?;
//! # let x = b.flatten("flat", x)?;
//! # let out = b.linear("fc", x, 4)?;
//! # let graph = b.build(out)?;
//! use xprune_surgery::{ChannelGroups, PrunePlan, count, prune};
//!
//! let groups = ChannelGroups::new(&graph);
//! println!("{groups}");
//! let plan = PrunePlan::new().remove("conv1", [0, 3]).remove("layer1.0.conv1", [5]);
//! let smaller = prune(&graph, &groups, &plan)?;
//! let masks = plan.masks(&graph, &groups, &device)?; // same outputs as `smaller`
//! println!("{} -> {}", count(&graph), count(&smaller));
//! # let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device);
//! # let a = smaller.forward(x.clone())?.to_vec();
//! # let b = graph.forward_masked(x, &masks)?.to_vec();
//! # assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-4));
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod count;
mod discover;
mod error;
mod group;
mod mask;
mod plan;
mod prune;
mod removal;

pub use count::{Counts, NodeCount, count, count_after, count_for_input, shapes_after};
pub use error::{Result, SurgeryError};
pub use group::{
    ChannelGroup, ChannelGroups, ChannelSlot, GroupId, GroupOptions, Member, PinReason, Positions,
    Role,
};
pub use mask::masks_resolved;
pub use plan::{GroupKey, PlanEntry, PrunePlan, ResolvedPlan};
pub use prune::{prune, prune_resolved, slice_as, sliced_layer};
pub use removal::NodeRemovals;

#[cfg(test)]
mod tests;
