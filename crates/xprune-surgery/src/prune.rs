//! Surgery: applying a plan by building new, smaller Burn layers with sliced weights.

use crate::error::{Result, SurgeryError};
use crate::group::ChannelGroups;
use crate::plan::{PrunePlan, ResolvedPlan};
use crate::removal::NodeRemovals;
use burn::module::{Param, RunningState};
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear};
use burn::tensor::{Int, Tensor, TensorData};
use xprune_graph::{Graph, GraphError, Layer, NodeId, OpSpec};

/// Removes the planned channels and returns a new, smaller graph on the same device.
///
/// Convolution weights (`[out, in / groups, kh, kw]`) lose the removed output rows and input
/// columns, depthwise convolutions lose channels and groups, linear weights (`[in, out]`) lose
/// input rows and output columns, biases and batch norm `gamma`, `beta`, running mean and
/// running variance lose the removed entries. The result is reassembled with
/// [`Graph::from_nodes`], which checks every shape again. `graph` is not changed.
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
    let removals = NodeRemovals::new(groups, plan);
    let (input, mut defs, output) = graph.to_node_defs();
    for (id, def) in defs.iter_mut().enumerate() {
        if removals.output(id).is_empty() && removals.input(id).is_empty() {
            continue;
        }
        let info = &graph.nodes()[id];
        def.layer = match (&def.layer, &info.op) {
            (
                Layer::Conv2d(conv),
                OpSpec::Conv2d {
                    in_channels,
                    out_channels,
                    groups,
                    ..
                },
            ) => Layer::Conv2d(slice_conv(
                graph,
                id,
                conv,
                &removals,
                *in_channels,
                *out_channels,
                *groups,
            )?),
            (
                Layer::Linear(linear),
                OpSpec::Linear {
                    in_features,
                    out_features,
                    ..
                },
            ) => Layer::Linear(slice_linear(
                linear,
                &removals,
                id,
                *in_features,
                *out_features,
            )),
            (Layer::BatchNorm(bn), OpSpec::BatchNorm { features, .. }) => {
                Layer::BatchNorm(slice_batch_norm(bn, &removals.kept_output(id, *features)))
            }
            (layer, _) if removals.input(id).is_empty() => layer.clone(),
            (layer, _) => {
                return Err(internal(
                    graph,
                    id,
                    &format!("a {} layer cannot lose input channels", layer.kind_name()),
                ));
            }
        };
    }
    Ok(Graph::from_nodes(input, defs, output)?)
}

fn internal(graph: &Graph, id: NodeId, message: &str) -> SurgeryError {
    SurgeryError::Graph(GraphError::InvalidLayer {
        node: graph.name(id).to_string(),
        message: message.to_string(),
    })
}

/// `t` restricted to the indices `kept` along `dim`, detached from any autodiff graph.
fn select<const D: usize>(t: Tensor<D>, dim: usize, kept: &[usize]) -> Tensor<D> {
    let device = t.device();
    let indices: Vec<i64> = kept.iter().map(|&i| i as i64).collect();
    let indices = Tensor::<1, Int>::from_data(TensorData::new(indices, [kept.len()]), &device);
    t.select(dim, indices).detach()
}

fn param<const D: usize>(t: Tensor<D>) -> Param<Tensor<D>> {
    Param::from_tensor(t)
}

fn slice_conv(
    graph: &Graph,
    id: NodeId,
    conv: &Conv2d,
    removals: &NodeRemovals,
    in_channels: usize,
    out_channels: usize,
    groups: usize,
) -> Result<Conv2d> {
    let mut conv = conv.clone();
    let removed_out = removals.output(id);
    let removed_in = removals.input(id);
    let depthwise = groups > 1 && groups == in_channels && groups == out_channels;
    if groups > 1 && !depthwise {
        return Err(internal(
            graph,
            id,
            "a grouped convolution cannot lose channels",
        ));
    }
    if depthwise && !removed_in.is_empty() {
        return Err(internal(
            graph,
            id,
            "a depthwise convolution loses input channels only with its outputs",
        ));
    }
    if !removed_out.is_empty() {
        let kept = removals.kept_output(id, out_channels);
        conv.weight = param(select(conv.weight.val(), 0, &kept));
        conv.bias = conv.bias.map(|b| param(select(b.val(), 0, &kept)));
        if depthwise {
            conv.groups = kept.len();
        }
    }
    if !removed_in.is_empty() {
        let kept = removals.kept_input(id, in_channels);
        conv.weight = param(select(conv.weight.val(), 1, &kept));
    }
    Ok(conv)
}

fn slice_linear(
    linear: &Linear,
    removals: &NodeRemovals,
    id: NodeId,
    in_features: usize,
    out_features: usize,
) -> Linear {
    let mut linear = linear.clone();
    // Burn stores the weight as [in, out].
    if !removals.input(id).is_empty() {
        let kept = removals.kept_input(id, in_features);
        linear.weight = param(select(linear.weight.val(), 0, &kept));
    }
    if !removals.output(id).is_empty() {
        let kept = removals.kept_output(id, out_features);
        linear.weight = param(select(linear.weight.val(), 1, &kept));
        linear.bias = linear.bias.map(|b| param(select(b.val(), 0, &kept)));
    }
    linear
}

fn slice_batch_norm(bn: &BatchNorm, kept: &[usize]) -> BatchNorm {
    let mut bn = bn.clone();
    bn.gamma = param(select(bn.gamma.val(), 0, kept));
    bn.beta = param(select(bn.beta.val(), 0, kept));
    bn.running_mean = RunningState::new(select(bn.running_mean.value(), 0, kept));
    bn.running_var = RunningState::new(select(bn.running_var.value(), 0, kept));
    bn
}
