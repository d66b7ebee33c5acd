//! LeNet-5.

use xprune_graph::burn::tensor::Device;
use xprune_graph::{Conv2dSpec, FeatureShape, Graph, GraphBuilder, GraphError, Result};

/// LeNet-5 with ReLU and max pooling: `conv1 (6@5x5) - pool - conv2 (16@5x5) - pool -
/// fc1 (120) - fc2 (84) - fc3 (classes)`.
///
/// `input` is `[channels, 28, 28]` (conv1 pads by 2, as for MNIST) or `[channels, 32, 32]`.
pub fn lenet5(input: FeatureShape, classes: usize, device: &Device, seed: u64) -> Result<Graph> {
    let FeatureShape::Spatial([_, h, w]) = input else {
        return Err(GraphError::Spec(format!(
            "lenet5 needs an image input, got [{input}]"
        )));
    };
    let pad = match (h, w) {
        (28, 28) => 2,
        (32, 32) => 0,
        _ => {
            return Err(GraphError::Spec(format!(
                "lenet5 takes 28x28 or 32x32 images, got {h}x{w}"
            )));
        }
    };
    let mut b = GraphBuilder::new(input, device).seed(seed);
    let x = b.conv2d("conv1", b.input(), Conv2dSpec::new(6, 5).padding(pad))?;
    let x = b.relu("relu1", x)?;
    let x = b.max_pool2d("pool1", x, 2, 2)?;
    let x = b.conv2d("conv2", x, Conv2dSpec::new(16, 5))?;
    let x = b.relu("relu2", x)?;
    let x = b.max_pool2d("pool2", x, 2, 2)?;
    let x = b.flatten("flatten", x)?;
    let x = b.linear("fc1", x, 120)?;
    let x = b.relu("relu3", x)?;
    let x = b.linear("fc2", x, 84)?;
    let x = b.relu("relu4", x)?;
    let out = b.linear("fc3", x, classes)?;
    b.build(out)
}
