//! The canonizer: batch norms folded into the convolution or fully connected layer before
//! them.
//!
//! A layer can take a batch norm when it is a convolution or a dense layer (its
//! [`RuleClass`]), its weight's output-channel axis is known ([`ParamInfo::out_axis`]) and it
//! can hold a bias: then `w' = w * s` along that axis and `b' = (b - mean) * s + beta` with
//! `s = gamma / sqrt(var + eps)`. This holds for every such kind without a list of kinds.

use crate::composite::rule_class;
use crate::error::{LrpError, Result};
use burn::nn::{BatchNorm, Identity};
use burn::tensor::TensorData;
use xprune_graph::kind::ParamInfo;
use xprune_graph::tensor_util::{data_to_f32, to_vec};
use xprune_graph::{Graph, Layer, NodeId, RuleClass};

/// The weight of a layer that a batch norm can fold into: its data and output axis.
fn foldable_weight(layer: &Layer) -> Option<ParamInfo> {
    if !matches!(
        rule_class(layer),
        Some(RuleClass::Convolution | RuleClass::Dense)
    ) {
        return None;
    }
    layer
        .params()
        .into_iter()
        .find(|p| p.role == "weight" && p.out_axis.is_some())
}

/// The `(layer, batch_norm)` node pairs that [`canonize`] folds: a batch norm whose input is a
/// convolution or fully connected layer that feeds only this batch norm (and is not the graph
/// output).
pub fn foldable_batch_norms(graph: &Graph) -> Vec<(NodeId, NodeId)> {
    let nodes = graph.nodes();
    let mut pairs = Vec::new();
    for (id, layer) in graph.layers().iter().enumerate() {
        if !matches!(layer, Layer::BatchNorm(_)) {
            continue;
        }
        let Some(&src) = nodes[id].inputs.first() else {
            continue;
        };
        let foldable = foldable_weight(&graph.layers()[src]).is_some();
        if foldable && nodes[src].consumers == [id] && src != graph.output() {
            pairs.push((src, id));
        }
    }
    pairs
}

/// A new graph in which every foldable batch norm (see [`foldable_batch_norms`]) is merged into
/// the layer before it: `w' = w * s`, `b' = (b - mean) * s + beta` with
/// `s = gamma / sqrt(var + eps)` per output channel (computed in `f64`). The batch-norm node
/// stays, as an identity with the same name, so node ids and names do not change and the
/// relevance at the batch-norm node equals that at the folded layer's output.
///
/// The outputs equal the original's up to float rounding (inference mode); the original graph
/// is not modified. Batch norms that cannot be folded are kept (attribution gives them the
/// composite's rule for affine maps).
pub fn canonize(graph: &Graph) -> Result<Graph> {
    let pairs = foldable_batch_norms(graph);
    let (input, mut defs, output) = graph.to_node_defs();
    for (src, bn_id) in pairs {
        let Layer::BatchNorm(bn) = &defs[bn_id].layer else {
            continue;
        };
        let (scale, shift) = bn_affine(bn);
        let node_name = defs[src].name.clone();
        let layer = &mut defs[src].layer;
        let weight = foldable_weight(layer).ok_or_else(|| {
            LrpError::Composite(format!("node `{node_name}` cannot take a batch norm"))
        })?;
        let dims = weight.dims();
        let axis = weight.out_axis.expect("checked by foldable_weight");
        let inner: usize = dims[axis + 1..].iter().product();
        let outs = dims[axis];
        let values: Vec<f32> = data_to_f32(weight.data)
            .iter()
            .enumerate()
            .map(|(i, v)| (*v as f64 * scale[(i / inner) % outs]) as f32)
            .collect();
        let bias = layer
            .params()
            .into_iter()
            .find(|p| p.role == "bias")
            .map(|p| data_to_f32(p.data));
        let bias: Vec<f32> = (0..outs)
            .map(|j| {
                let b = bias.as_ref().map_or(0.0, |b| b[j] as f64);
                (b * scale[j] + shift[j]) as f32
            })
            .collect();
        let device = graph.device();
        let fold = |layer: &mut Layer| -> std::result::Result<(), String> {
            layer.set_param("weight", TensorData::new(values, dims), &device)?;
            layer.set_param("bias", TensorData::new(bias, [outs]), &device)
        };
        fold(layer)
            .map_err(|m| LrpError::Composite(format!("folding into node `{node_name}`: {m}")))?;
        defs[bn_id].layer = Layer::Identity(Identity);
    }
    Ok(Graph::from_nodes(input, defs, output)?)
}

/// `(scale, shift)` of a batch norm in inference, in `f64`.
fn bn_affine(bn: &BatchNorm) -> (Vec<f64>, Vec<f64>) {
    let gamma = to_vec(&bn.gamma.val());
    let beta = to_vec(&bn.beta.val());
    let mean = to_vec(&bn.running_mean.value());
    let var = to_vec(&bn.running_var.value());
    let scale: Vec<f64> = gamma
        .iter()
        .zip(&var)
        .map(|(g, v)| *g as f64 / (*v as f64 + bn.epsilon).sqrt())
        .collect();
    let shift = beta
        .iter()
        .zip(&mean)
        .zip(&scale)
        .map(|((b, m), s)| *b as f64 - *m as f64 * s)
        .collect();
    (scale, shift)
}
