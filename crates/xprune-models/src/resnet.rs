//! Residual networks: CIFAR ResNet-20/56 and ResNet-18.

use crate::scaled;
use xprune_graph::burn::tensor::Device;
use xprune_graph::{
    Conv2dSpec, FeatureShape, Graph, GraphBuilder, GraphError, NodeId, Padding, Result,
};

/// Depth of a CIFAR ResNet (He et al. 2016, section 4.2): `6n + 2` layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResNetCifarDepth {
    /// ResNet-20: 3 blocks per stage.
    ResNet20,
    /// ResNet-56: 9 blocks per stage.
    ResNet56,
}

impl ResNetCifarDepth {
    /// Blocks per stage.
    pub fn blocks(self) -> usize {
        match self {
            Self::ResNet20 => 3,
            Self::ResNet56 => 9,
        }
    }
}

/// The stem of a ResNet-18.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResNetStem {
    /// 3x3 convolution, stride 1, no max pool (for 32x32 images).
    Cifar,
    /// 7x7 convolution, stride 2, padding 3, then a 3x3 max pool with stride 2 and padding 1.
    ImageNet,
}

/// A basic block: conv3x3-bn-relu-conv3x3-bn, plus the identity or (when the shape changes) a
/// 1x1 convolution + batch norm projection, then add and relu. Returns the block's output.
fn basic_block(
    b: &mut GraphBuilder,
    prefix: &str,
    x: NodeId,
    planes: usize,
    stride: usize,
) -> Result<NodeId> {
    let in_planes = b.shape(x)?.channels();
    let y = b.conv2d(
        format!("{prefix}.conv1"),
        x,
        Conv2dSpec::new(planes, 3)
            .stride(stride)
            .padding(1)
            .no_bias(),
    )?;
    let y = b.batch_norm(format!("{prefix}.bn1"), y)?;
    let y = b.relu(format!("{prefix}.relu1"), y)?;
    let y = b.conv2d(
        format!("{prefix}.conv2"),
        y,
        Conv2dSpec::new(planes, 3).padding(1).no_bias(),
    )?;
    let y = b.batch_norm(format!("{prefix}.bn2"), y)?;
    let shortcut = if stride != 1 || in_planes != planes {
        let s = b.conv2d(
            format!("{prefix}.shortcut.0"),
            x,
            Conv2dSpec::new(planes, 1).stride(stride).no_bias(),
        )?;
        b.batch_norm(format!("{prefix}.shortcut.1"), s)?
    } else {
        x
    };
    let s = b.add(format!("{prefix}.add"), &[y, shortcut])?;
    b.relu(format!("{prefix}.relu2"), s)
}

fn stages(b: &mut GraphBuilder, mut x: NodeId, planes: &[usize], blocks: usize) -> Result<NodeId> {
    for (s, &p) in planes.iter().enumerate() {
        for i in 0..blocks {
            let stride = if s > 0 && i == 0 { 2 } else { 1 };
            x = basic_block(b, &format!("layer{}.{i}", s + 1), x, p, stride)?;
        }
    }
    Ok(x)
}

fn head(mut b: GraphBuilder, x: NodeId, classes: usize) -> Result<Graph> {
    let x = b.global_avg_pool("avgpool", x)?;
    let x = b.flatten("flatten", x)?;
    let out = b.linear("fc", x, classes)?;
    b.build(out)
}

/// A CIFAR ResNet (ResNet-20 or ResNet-56): a 3x3 stem of 16 channels, three stages of
/// 16/32/64 channels (scaled by `width`), projection shortcuts (option B) where the shape
/// changes, global average pooling and a linear classifier.
pub fn resnet_cifar(
    depth: ResNetCifarDepth,
    input: FeatureShape,
    classes: usize,
    width: f32,
    device: &Device,
    seed: u64,
) -> Result<Graph> {
    if !input.is_spatial() {
        return Err(GraphError::Spec(format!(
            "resnet needs an image input, got [{input}]"
        )));
    }
    let mut b = GraphBuilder::new(input, device).seed(seed);
    let c = scaled(16, width);
    let x = b.conv2d(
        "conv1",
        b.input(),
        Conv2dSpec::new(c, 3).padding(1).no_bias(),
    )?;
    let x = b.batch_norm("bn1", x)?;
    let x = b.relu("relu", x)?;
    let planes = [c, scaled(32, width), scaled(64, width)];
    let x = stages(&mut b, x, &planes, depth.blocks())?;
    head(b, x, classes)
}

/// ResNet-18: a stem, four stages of two basic blocks with 64/128/256/512 channels (scaled by
/// `width`), global average pooling and a linear classifier.
pub fn resnet18(
    stem: ResNetStem,
    input: FeatureShape,
    classes: usize,
    width: f32,
    device: &Device,
    seed: u64,
) -> Result<Graph> {
    if !input.is_spatial() {
        return Err(GraphError::Spec(format!(
            "resnet needs an image input, got [{input}]"
        )));
    }
    let mut b = GraphBuilder::new(input, device).seed(seed);
    let c = scaled(64, width);
    let x = match stem {
        ResNetStem::Cifar => {
            let x = b.conv2d(
                "conv1",
                b.input(),
                Conv2dSpec::new(c, 3).padding(1).no_bias(),
            )?;
            let x = b.batch_norm("bn1", x)?;
            b.relu("relu", x)?
        }
        ResNetStem::ImageNet => {
            let x = b.conv2d(
                "conv1",
                b.input(),
                Conv2dSpec::new(c, 7).stride(2).padding(3).no_bias(),
            )?;
            let x = b.batch_norm("bn1", x)?;
            let x = b.relu("relu", x)?;
            b.max_pool2d_with("maxpool", x, [3, 3], [2, 2], Padding::Uniform(1), false)?
        }
    };
    let planes = [
        c,
        scaled(128, width),
        scaled(256, width),
        scaled(512, width),
    ];
    let x = stages(&mut b, x, &planes, 2)?;
    head(b, x, classes)
}
