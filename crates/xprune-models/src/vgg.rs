//! VGG networks with a CIFAR head.

use crate::scaled;
use xprune_graph::burn::tensor::Device;
use xprune_graph::{Conv2dSpec, FeatureShape, Graph, GraphBuilder, GraphError, Result};

/// VGG depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VggDepth {
    /// VGG-11 (configuration A): 8 convolutions.
    Vgg11,
    /// VGG-16 (configuration D): 13 convolutions.
    Vgg16,
}

impl VggDepth {
    /// Channel plan; 0 stands for a 2x2 max pool.
    fn plan(self) -> &'static [usize] {
        match self {
            Self::Vgg11 => &[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
            Self::Vgg16 => &[
                64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
            ],
        }
    }
}

/// A VGG for `input` images (`[3, 32, 32]` for CIFAR): 3x3 convolutions (padding 1), each
/// followed by batch norm when `batch_norm` and a ReLU, five 2x2 max pools, then a global
/// average pool, a flatten and one linear classifier (the common CIFAR head).
///
/// Nodes follow torchvision's numbering: `features.0` (conv), `features.1` (bn), ... and
/// `classifier`. `width` scales every channel count (1.0 is the standard network).
pub fn vgg(
    depth: VggDepth,
    batch_norm: bool,
    input: FeatureShape,
    classes: usize,
    width: f32,
    device: &Device,
    seed: u64,
) -> Result<Graph> {
    let FeatureShape::Spatial([_, h, w]) = input else {
        return Err(GraphError::Spec(format!(
            "vgg needs an image input, got [{input}]"
        )));
    };
    if h < 32 || w < 32 {
        return Err(GraphError::Spec(format!(
            "vgg needs images of at least 32x32 (five 2x2 pools), got {h}x{w}"
        )));
    }
    let mut b = GraphBuilder::new(input, device).seed(seed);
    let mut x = b.input();
    let mut i = 0;
    for &c in depth.plan() {
        if c == 0 {
            x = b.max_pool2d(format!("features.{i}"), x, 2, 2)?;
            i += 1;
        } else {
            x = b.conv2d(
                format!("features.{i}"),
                x,
                Conv2dSpec::new(scaled(c, width), 3).padding(1),
            )?;
            i += 1;
            if batch_norm {
                x = b.batch_norm(format!("features.{i}"), x)?;
                i += 1;
            }
            x = b.relu(format!("features.{i}"), x)?;
            i += 1;
        }
    }
    let x = b.global_avg_pool("avgpool", x)?;
    let x = b.flatten("flatten", x)?;
    let out = b.linear("classifier", x, classes)?;
    b.build(out)
}
