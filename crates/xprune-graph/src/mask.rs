//! [`ChannelMasks`]: per-node channel multipliers for "what if these channels were gone"
//! evaluations without changing the graph.

use crate::error::{GraphError, Result};
use crate::graph::{Graph, NodeId};
use burn::tensor::{Device, Tensor, TensorData};
use std::collections::BTreeMap;

/// Multipliers applied to node outputs, channel by channel, during a run.
///
/// A mask of node `n` is a `[1, C]` tensor (one factor per channel of `n`'s output, the same
/// for every sample) or a `[batch, C]` tensor (one row per sample, for evaluating many
/// coalitions of channels in one batched pass). 0/1 masks switch channels off; any other
/// factors are allowed.
#[derive(Clone, Debug, Default)]
pub struct ChannelMasks {
    masks: BTreeMap<NodeId, Tensor<2>>,
}

impl ChannelMasks {
    /// No masks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the mask of a node (`[1, C]` or `[batch, C]`); checked against the node when the
    /// graph runs.
    pub fn insert(&mut self, node: NodeId, mask: Tensor<2>) {
        self.masks.insert(node, mask);
    }

    /// Sets a 0/1 mask of a node from a keep flag per channel.
    pub fn insert_keep(
        &mut self,
        graph: &Graph,
        node: NodeId,
        keep: &[bool],
        device: &Device,
    ) -> Result<()> {
        let channels = graph.node(node)?.shape.channels();
        if keep.len() != channels {
            return Err(GraphError::Mask {
                node: graph.name(node).to_string(),
                message: format!("{} keep flags for {channels} channels", keep.len()),
            });
        }
        let values: Vec<f32> = keep.iter().map(|k| if *k { 1.0 } else { 0.0 }).collect();
        self.insert(
            node,
            Tensor::from_data(TensorData::new(values, [1, channels]), device),
        );
        Ok(())
    }

    /// The mask of a node.
    pub fn get(&self, node: NodeId) -> Option<&Tensor<2>> {
        self.masks.get(&node)
    }

    /// Removes the mask of a node.
    pub fn remove(&mut self, node: NodeId) -> Option<Tensor<2>> {
        self.masks.remove(&node)
    }

    /// Masked node ids with their masks.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, &Tensor<2>)> {
        self.masks.iter().map(|(k, v)| (*k, v))
    }

    /// Number of masked nodes.
    pub fn len(&self) -> usize {
        self.masks.len()
    }

    /// Whether no node is masked.
    pub fn is_empty(&self) -> bool {
        self.masks.is_empty()
    }
}
