//! The canonizer: batch norms folded into the convolution or fully connected layer before them.

use crate::error::Result;
use burn::module::Param;
use burn::nn::{BatchNorm, Identity};
use burn::tensor::{Tensor, TensorData};
use xprune_graph::tensor_util::to_vec;
use xprune_graph::{Graph, Layer, NodeId};

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
        let foldable_kind = matches!(graph.layers()[src], Layer::Conv2d(_) | Layer::Linear(_));
        if foldable_kind && nodes[src].consumers == [id] && src != graph.output() {
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
/// composite's batch-norm rule).
pub fn canonize(graph: &Graph) -> Result<Graph> {
    let pairs = foldable_batch_norms(graph);
    let (input, mut defs, output) = graph.to_node_defs();
    for (src, bn_id) in pairs {
        let Layer::BatchNorm(bn) = &defs[bn_id].layer else {
            unreachable!("foldable pairs end in a batch norm")
        };
        let (scale, shift) = bn_affine(bn);
        let folded = match &defs[src].layer {
            Layer::Conv2d(conv) => {
                let mut conv = conv.clone();
                let dims = conv.weight.dims();
                let device = conv.weight.val().device();
                let per_out = dims[1] * dims[2] * dims[3];
                let w: Vec<f32> = to_vec(&conv.weight.val())
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (*v as f64 * scale[i / per_out]) as f32)
                    .collect();
                let bias =
                    folded_bias(conv.bias.as_ref().map(|b| to_vec(&b.val())), &scale, &shift);
                conv.weight =
                    Param::from_tensor(Tensor::from_data(TensorData::new(w, dims), &device));
                conv.bias = Some(Param::from_tensor(Tensor::from_data(
                    TensorData::new(bias, [dims[0]]),
                    &device,
                )));
                Layer::Conv2d(conv)
            }
            Layer::Linear(linear) => {
                let mut linear = linear.clone();
                let dims = linear.weight.dims();
                let device = linear.weight.val().device();
                let outs = dims[1];
                let w: Vec<f32> = to_vec(&linear.weight.val())
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (*v as f64 * scale[i % outs]) as f32)
                    .collect();
                let bias = folded_bias(
                    linear.bias.as_ref().map(|b| to_vec(&b.val())),
                    &scale,
                    &shift,
                );
                linear.weight =
                    Param::from_tensor(Tensor::from_data(TensorData::new(w, dims), &device));
                linear.bias = Some(Param::from_tensor(Tensor::from_data(
                    TensorData::new(bias, [outs]),
                    &device,
                )));
                Layer::Linear(linear)
            }
            _ => unreachable!("foldable pairs start at a conv or linear layer"),
        };
        defs[src].layer = folded;
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

fn folded_bias(bias: Option<Vec<f32>>, scale: &[f64], shift: &[f64]) -> Vec<f32> {
    (0..scale.len())
        .map(|j| {
            let b = bias.as_ref().map_or(0.0, |b| b[j] as f64);
            (b * scale[j] + shift[j]) as f32
        })
        .collect()
}
