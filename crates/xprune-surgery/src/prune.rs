//! Surgery: applying a plan by asking every affected layer for its sliced version.

use crate::error::{Result, SurgeryError};
use crate::group::ChannelGroups;
use crate::plan::{PrunePlan, ResolvedPlan};
use crate::removal::NodeRemovals;
use xprune_graph::kind::ChannelCut;
use xprune_graph::{FeatureShape, Graph, GraphError, Layer, NodeId};

/// Removes the planned channels and returns a new, smaller graph on the same device.
///
/// Every node whose output or inputs lose channels is replaced by its kind's sliced layer
/// ([`Layer::slice`](xprune_graph::Layer::slice)): convolution weights lose output rows and
/// input columns (depthwise and grouped convolutions lose whole groups), linear weights
/// (`[in, out]`) lose input rows and output columns, biases, batch norm `gamma`, `beta` and
/// running statistics lose entries, routes (slices, permutations, shuffles) renumber. The
/// result is reassembled with [`Graph::from_nodes`], which checks every shape again. `graph`
/// is not changed.
///
/// `groups` must have been found on `graph`; the plan is validated first (see
/// [`PrunePlan::resolve`]).
pub fn prune(graph: &Graph, groups: &ChannelGroups, plan: &PrunePlan) -> Result<Graph> {
    groups.check(graph)?;
    let resolved = plan.resolve(groups)?;
    prune_resolved(graph, groups, &resolved)
}

/// [`prune`] with an already validated plan.
pub fn prune_resolved(graph: &Graph, groups: &ChannelGroups, plan: &ResolvedPlan) -> Result<Graph> {
    groups.check(graph)?;
    let removals = NodeRemovals::new(graph, groups, plan);
    let (input, mut defs, output) = graph.to_node_defs();
    for (id, def) in defs.iter_mut().enumerate() {
        if removals.touches(id) {
            def.layer = sliced_layer(graph, &removals, id)?;
        }
    }
    Ok(Graph::from_nodes(input, defs, output)?)
}

/// The layer of node `id` with what `removals` takes from its inputs and output removed (the
/// layer [`prune`] puts in its place; a clone when nothing is removed around it).
pub fn sliced_layer(graph: &Graph, removals: &NodeRemovals, id: NodeId) -> Result<Layer> {
    slice_as(graph, removals, id, graph.layer(id)?)
}

/// [`sliced_layer`] for another layer with the same channels as node `id` (for example the
/// node's layer in the graph's inference form, a convolution with a batch norm folded in).
pub fn slice_as(
    graph: &Graph,
    removals: &NodeRemovals,
    id: NodeId,
    layer: &Layer,
) -> Result<Layer> {
    let info = graph.node(id)?;
    if !removals.touches(id) {
        return Ok(layer.clone());
    }
    let input_shapes: Vec<FeatureShape> = info
        .inputs
        .iter()
        .map(|&i| graph.nodes()[i].shape)
        .collect();
    let cut = ChannelCut {
        inputs: &input_shapes,
        output: info.shape,
        removed_inputs: (0..info.inputs.len())
            .map(|k| removals.input_of(id, k))
            .collect(),
        removed_output: removals.output(id),
    };
    layer.slice(&cut).map_err(|message| {
        SurgeryError::Graph(GraphError::InvalidLayer {
            node: info.name.clone(),
            message,
        })
    })
}
