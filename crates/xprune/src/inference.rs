//! The inference form of a graph: what a deployed (pruned) model should run.
//!
//! [`inference_form`] folds every batch norm that follows a convolution or linear layer into
//! it (`w' = w * s`, `b' = (b - mean) * s + beta`, `s = gamma / sqrt(var + eps)`, in float64;
//! the same folding as LRP's canonizer, [`xprune_lrp::canonize`]) and then removes the nodes
//! that compute nothing in inference (identities, including the folded batch norms, and
//! dropouts), wiring their consumers to their inputs. The outputs equal the original's in
//! inference mode up to float rounding; the MACs are the same (batch norms are not counted),
//! the parameters and the number of nodes fewer, and each removed batch norm is one pass over
//! its activations less.
//!
//! Node names of the remaining nodes are kept; removed nodes are gone, so plans and channel
//! groups of the original graph do not apply to the inference form: prune first, then fold.

use xprune_graph::{Graph, GraphError, Layer, NodeDef, NodeId};

/// Why a graph has no inference form.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// Folding a batch norm failed.
    #[error("folding batch norms: {0}")]
    Fold(#[from] xprune_lrp::LrpError),
    /// The simplified graph did not assemble.
    #[error("simplifying the graph: {0}")]
    Graph(#[from] GraphError),
}

/// A graph in inference form and what was done to it.
#[derive(Debug)]
pub struct InferenceForm {
    /// The simplified graph.
    pub graph: Graph,
    /// The batch norms folded into the layer before them, by name.
    pub folded: Vec<String>,
    /// Every node removed (folded batch norms, identities, dropouts), by name.
    pub removed: Vec<String>,
}

/// The inference form of `graph` (see the module documentation); `graph` is not modified.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let device = xprune::burn::tensor::Device::flex();
/// let graph = xprune::models::vgg(
///     xprune::models::VggDepth::Vgg11, true, xprune::FeatureShape::spatial(3, 32, 32), 10,
///     0.25, &device, 0,
/// )?;
/// let folded = xprune::inference_form(&graph)?;
/// assert_eq!(folded.folded.len(), 8); // every conv's batch norm
/// assert_eq!(folded.graph.macs(), graph.macs());
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// A batch norm whose folding fails, or a graph that does not assemble again (both name the
/// node).
pub fn inference_form(graph: &Graph) -> Result<InferenceForm, InferenceError> {
    let folded_pairs = xprune_lrp::foldable_batch_norms(graph);
    let folded: Vec<String> = folded_pairs
        .iter()
        .map(|&(_, bn)| graph.name(bn).to_string())
        .collect();
    let canonical = xprune_lrp::canonize(graph)?;
    let (input, defs, output) = canonical.to_node_defs();
    let mut new_id: Vec<NodeId> = Vec::with_capacity(defs.len());
    let mut kept: Vec<NodeDef> = Vec::with_capacity(defs.len());
    let mut removed = Vec::new();
    for (id, mut def) in defs.into_iter().enumerate() {
        let passes_through = id > 0
            && def.inputs.len() == 1
            && matches!(def.layer, Layer::Identity(_) | Layer::Dropout(_));
        if passes_through {
            new_id.push(new_id[def.inputs[0]]);
            removed.push(def.name);
            continue;
        }
        for i in def.inputs.iter_mut() {
            *i = new_id[*i];
        }
        new_id.push(kept.len());
        kept.push(def);
    }
    let graph = Graph::from_nodes(input, kept, new_id[output])?;
    Ok(InferenceForm {
        graph,
        folded,
        removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, Tensor};
    use xprune_models::{ResNetCifarDepth, resnet_cifar};
    use xprune_surgery::{ChannelGroups, PrunePlan, count, prune};

    /// Random batch-norm statistics (a fresh model's are 0 and 1, which would hide a wrong
    /// fold).
    fn with_statistics(graph: &Graph) -> Graph {
        let device = graph.device();
        let tensors = graph.named_tensors();
        graph
            .with_tensors(
                |name| {
                    let data = &tensors.iter().find(|(n, _)| n == name).unwrap().1;
                    let shape = data.shape().as_slice().to_vec();
                    let n: usize = shape.iter().product();
                    let v: Vec<f32> = (0..n)
                        .map(|i| ((i * 37 + name.len() * 11) % 17) as f32 / 17.0)
                        .collect();
                    let v: Vec<f32> = if name.ends_with(".running_var") || name.ends_with(".gamma")
                    {
                        v.iter().map(|x| 0.5 + x).collect()
                    } else if name.ends_with(".running_mean") || name.ends_with(".beta") {
                        v.iter().map(|x| x - 0.5).collect()
                    } else {
                        return Ok(data.clone());
                    };
                    Ok(burn::tensor::TensorData::new(v, shape))
                },
                &device,
                std::path::Path::new("statistics"),
            )
            .unwrap()
    }

    #[test]
    fn the_inference_form_of_a_pruned_resnet_computes_the_same_with_fewer_nodes() {
        let device = Device::flex();
        let graph = with_statistics(
            &resnet_cifar(
                ResNetCifarDepth::ResNet20,
                xprune_graph::FeatureShape::spatial(3, 32, 32),
                10,
                0.5,
                &device,
                1,
            )
            .unwrap(),
        );
        let groups = ChannelGroups::new(&graph);
        let mut plan = PrunePlan::new();
        for g in groups.prunable() {
            plan.insert(g.name(), (0..g.channels() / 2).map(|k| 2 * k));
        }
        let pruned = prune(&graph, &groups, &plan).unwrap();
        let form = inference_form(&pruned).unwrap();
        let bns = pruned
            .layers()
            .iter()
            .filter(|l| matches!(l, Layer::BatchNorm(_)))
            .count();
        assert_eq!(form.folded.len(), bns, "every batch norm follows a conv");
        assert_eq!(form.graph.len(), pruned.len() - bns);
        assert_eq!(count(&form.graph).macs, count(&pruned).macs);
        assert!(count(&form.graph).params < count(&pruned).params);
        let x = Tensor::<4>::random([4, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        let a = pruned.forward(x.clone()).unwrap().to_vec();
        let b = form.graph.forward(x).unwrap().to_vec();
        let scale = a.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        let diff = a
            .iter()
            .zip(&b)
            .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(diff <= 1e-5 * scale, "{diff} of {scale}");
    }

    #[test]
    fn identities_and_dropouts_are_removed_even_at_the_output() {
        let device = Device::flex();
        let mut b =
            xprune_graph::GraphBuilder::new(xprune_graph::FeatureShape::flat(4), &device).seed(2);
        let x = b.input();
        let x = b.linear("fc1", x, 8).unwrap();
        let x = b.dropout("drop", x, 0.5).unwrap();
        let x = b.relu("relu", x).unwrap();
        let x = b.linear("fc2", x, 3).unwrap();
        let out = b.identity("out", x).unwrap();
        let graph = b.build(out).unwrap();
        let form = inference_form(&graph).unwrap();
        assert_eq!(form.removed, vec!["drop".to_string(), "out".to_string()]);
        assert_eq!(form.graph.name(form.graph.output()), "fc2");
        let x = Tensor::<2>::random([3, 4], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(
            graph.forward(x.clone()).unwrap().to_vec(),
            form.graph.forward(x).unwrap().to_vec()
        );
    }
}
