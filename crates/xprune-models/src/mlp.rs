//! Multi-layer perceptrons.

use xprune_graph::burn::tensor::Device;
use xprune_graph::{FeatureShape, Graph, GraphBuilder, Result};

/// An MLP `inputs -> hidden[0] -> ... -> classes` with ReLU between layers.
///
/// Nodes are `fc1, relu1, fc2, relu2, ..., fcN` (the last one is the output).
pub fn mlp(
    inputs: usize,
    hidden: &[usize],
    classes: usize,
    device: &Device,
    seed: u64,
) -> Result<Graph> {
    let mut b = GraphBuilder::new(FeatureShape::flat(inputs), device).seed(seed);
    let mut x = b.input();
    for (i, &h) in hidden.iter().enumerate() {
        x = b.linear(format!("fc{}", i + 1), x, h)?;
        x = b.relu(format!("relu{}", i + 1), x)?;
    }
    let out = b.linear(format!("fc{}", hidden.len() + 1), x, classes)?;
    b.build(out)
}
