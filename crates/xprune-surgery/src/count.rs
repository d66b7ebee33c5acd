//! Parameter and multiply-accumulate counts of a graph.
//!
//! What counts:
//! - **parameters** are the trainable values: convolution and linear weights and biases, batch
//!   norm `gamma` and `beta` (the running mean and variance are statistics, not parameters),
//!   as in PyTorch's `sum(p.numel() for p in model.parameters())`;
//! - **buffers** are the batch norm running means and variances (Burn's `num_params()` counts
//!   them too: it equals `params + buffers`);
//! - **MACs** are the multiply-accumulates of convolutions (`output values x in/groups x kh x
//!   kw`) and linear layers (`in x out` per position) for one sample. Bias additions, batch
//!   norm, activations, pooling, adds and concats are not counted, following the convention of
//!   the pruning literature (ResNet-56 on CIFAR-10: 125 M MACs).
//!
//! Every number comes from one function per kind
//! ([`KindSpec::counts`](xprune_graph::KindSpec::counts)), which the graph's own MAC count and
//! the selection's budget estimates ([`count_after`]) call too.

use crate::error::Result;
use crate::group::ChannelGroups;
use crate::plan::ResolvedPlan;
use crate::removal::NodeRemovals;
use std::fmt;
use xprune_graph::{FeatureShape, Graph, GraphError, NodeId};

/// The parameters and MACs of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeCount {
    /// The node.
    pub node: NodeId,
    /// Its name.
    pub name: String,
    /// Its kind (`conv2d`, `linear`, ...).
    pub kind: &'static str,
    /// Trainable parameters.
    pub params: u64,
    /// Non-trainable state (batch norm running statistics).
    pub buffers: u64,
    /// Multiply-accumulates for one sample.
    pub macs: u64,
}

/// Parameters and multiply-accumulates of a graph for one sample, in total and per node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counts {
    /// Total trainable parameters.
    pub params: u64,
    /// Total non-trainable state values (batch norm running statistics).
    pub buffers: u64,
    /// Total multiply-accumulates of one forward pass of one sample.
    pub macs: u64,
    /// The counts of every node, in node order.
    pub nodes: Vec<NodeCount>,
}

impl Counts {
    /// The counts of a node by name.
    pub fn node(&self, name: &str) -> Option<&NodeCount> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// `self.macs / other.macs`, e.g. the MAC ratio of an original to a pruned model.
    pub fn mac_ratio(&self, other: &Counts) -> f64 {
        self.macs as f64 / other.macs.max(1) as f64
    }

    /// `self.params / other.params`.
    pub fn param_ratio(&self, other: &Counts) -> f64 {
        self.params as f64 / other.params.max(1) as f64
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} parameters, {} MACs per sample",
            self.params, self.macs
        )
    }
}

/// Parameters and MACs of `graph` for its own input shape.
pub fn count(graph: &Graph) -> Counts {
    let shapes: Vec<FeatureShape> = graph.nodes().iter().map(|n| n.shape).collect();
    count_with_shapes(graph, &shapes)
}

/// Parameters and MACs of `graph` for samples of shape `input` (for example a larger image
/// than the graph was built for). Shapes are inferred again; an input the graph cannot take
/// is an error naming the first node that does not fit.
pub fn count_for_input(graph: &Graph, input: FeatureShape) -> Result<Counts> {
    let mut shapes: Vec<FeatureShape> = Vec::with_capacity(graph.len());
    for (id, n) in graph.nodes().iter().enumerate() {
        let shape = if id == 0 {
            if input.numel() == 0 {
                return Err(GraphError::Shape {
                    node: n.name.clone(),
                    message: format!("input shape [{input}] has no values"),
                }
                .into());
            }
            input
        } else {
            let ins: Vec<FeatureShape> = n.inputs.iter().map(|&i| shapes[i]).collect();
            n.op.infer_shape(&ins)
                .map_err(|message| GraphError::Shape {
                    node: n.name.clone(),
                    message,
                })?
        };
        shapes.push(shape);
    }
    Ok(count_with_shapes(graph, &shapes))
}

/// Parameters and MACs the graph would have after `plan`, computed from the structure alone
/// (no weights are sliced): every node's counts for its shapes with the planned channels
/// removed. Equal to `count(&prune(graph, groups, plan)?)`.
pub fn count_after(graph: &Graph, groups: &ChannelGroups, plan: &ResolvedPlan) -> Counts {
    count_with_shapes(graph, &shapes_after(graph, groups, plan))
}

/// Every node's per-sample output shape after `plan`, computed from the structure alone (the
/// shapes of `prune(graph, groups, plan)`, in node order).
pub fn shapes_after(
    graph: &Graph,
    groups: &ChannelGroups,
    plan: &ResolvedPlan,
) -> Vec<FeatureShape> {
    NodeRemovals::new(graph, groups, plan).shapes(graph)
}

fn count_with_shapes(graph: &Graph, shapes: &[FeatureShape]) -> Counts {
    let nodes: Vec<NodeCount> = graph
        .nodes()
        .iter()
        .enumerate()
        .map(|(id, n)| {
            let ins: Vec<FeatureShape> = n.inputs.iter().map(|&i| shapes[i]).collect();
            let c = n.op.counts(&ins, shapes[id]);
            NodeCount {
                node: id,
                name: n.name.clone(),
                kind: n.op.kind_name(),
                params: c.params,
                buffers: c.buffers,
                macs: c.macs,
            }
        })
        .collect();
    Counts {
        params: nodes.iter().map(|n| n.params).sum(),
        buffers: nodes.iter().map(|n| n.buffers).sum(),
        macs: nodes.iter().map(|n| n.macs).sum(),
        nodes,
    }
}
