//! Small networks in the style of the modern CNN families, built from the same layer kinds
//! their ONNX imports use: inverted residuals with squeeze-and-excitation (MobileNetV3,
//! EfficientNet), channel split and shuffle (ShuffleNetV2), grouped convolutions with
//! squeeze-and-excitation (RegNetY), channels-last blocks with layer norm, GELU and layer
//! scale (ConvNeXt), and a network that uses every remaining kind. For tests, examples and
//! benchmarks: each takes a width multiplier, an input shape, a class count and a seed.

use crate::scaled;
use xprune_graph::burn::tensor::Device;
use xprune_graph::{Conv2dSpec, FeatureShape, Graph, GraphBuilder, GraphError, NodeId, Result};

fn spatial(input: FeatureShape, what: &str) -> Result<()> {
    match input {
        FeatureShape::Spatial(_) => Ok(()),
        other => Err(GraphError::Spec(format!(
            "{what} needs a [channels, height, width] input, got [{other}]"
        ))),
    }
}

/// The activation of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    Relu,
    Relu6,
    HardSwish,
    Silu,
}

fn act(b: &mut GraphBuilder, name: String, x: NodeId, a: Act) -> Result<NodeId> {
    match a {
        Act::Relu => b.relu(name, x),
        Act::Relu6 => b.relu6(name, x),
        Act::HardSwish => b.hard_swish(name, x),
        Act::Silu => b.silu(name, x),
    }
}

/// Squeeze-and-excitation: global average pool, 1x1 reduction, activation, 1x1 expansion,
/// gate, product with the input.
fn squeeze_excite(
    b: &mut GraphBuilder,
    p: &str,
    x: NodeId,
    squeeze: usize,
    inner: Act,
    hard_gate: bool,
) -> Result<NodeId> {
    let c = b.shape(x)?.channels();
    let s = b.global_avg_pool(format!("{p}.avgpool"), x)?;
    let s = b.conv2d(format!("{p}.fc1"), s, Conv2dSpec::new(squeeze.max(1), 1))?;
    let s = act(b, format!("{p}.act"), s, inner)?;
    let s = b.conv2d(format!("{p}.fc2"), s, Conv2dSpec::new(c, 1))?;
    let s = if hard_gate {
        b.hard_sigmoid(format!("{p}.gate"), s, 1.0 / 6.0, 0.5)?
    } else {
        b.sigmoid(format!("{p}.gate"), s)?
    };
    b.mul(format!("{p}.scale"), x, s)
}

/// Conv, batch norm and an activation (`None`: no activation).
fn conv_bn(
    b: &mut GraphBuilder,
    p: &str,
    x: NodeId,
    spec: Conv2dSpec,
    a: Option<Act>,
) -> Result<NodeId> {
    let y = b.conv2d(format!("{p}.conv"), x, spec.no_bias())?;
    let y = b.batch_norm(format!("{p}.bn"), y)?;
    match a {
        Some(a) => act(b, format!("{p}.act"), y, a),
        None => Ok(y),
    }
}

/// An inverted residual block: 1x1 expansion, depthwise 3x3, optional squeeze-and-excitation,
/// 1x1 projection (no activation), residual add when the shape is kept.
fn inverted_residual(
    b: &mut GraphBuilder,
    p: &str,
    x: NodeId,
    expand: usize,
    out: usize,
    stride: usize,
    a: Act,
    se: Option<bool>,
) -> Result<NodeId> {
    let c = b.shape(x)?.channels();
    let mut y = x;
    if expand != c {
        y = conv_bn(
            b,
            &format!("{p}.expand"),
            y,
            Conv2dSpec::new(expand, 1),
            Some(a),
        )?;
    }
    y = conv_bn(
        b,
        &format!("{p}.dw"),
        y,
        Conv2dSpec::new(expand, 3)
            .stride(stride)
            .padding(1)
            .groups(expand),
        Some(a),
    )?;
    if let Some(hard) = se {
        let inner = if hard { Act::Relu } else { Act::Silu };
        y = squeeze_excite(b, &format!("{p}.se"), y, expand / 4, inner, hard)?;
    }
    y = conv_bn(b, &format!("{p}.project"), y, Conv2dSpec::new(out, 1), None)?;
    if stride == 1 && c == out {
        y = b.add(format!("{p}.add"), &[x, y])?;
    }
    Ok(y)
}

fn head(mut b: GraphBuilder, x: NodeId, classes: usize) -> Result<Graph> {
    let x = b.global_avg_pool("avgpool", x)?;
    let x = b.flatten("flatten", x)?;
    let out = b.linear("classifier", x, classes)?;
    b.build(out)
}

/// A MobileNetV3-style network: a hard-swish stem, inverted residual blocks with ReLU6,
/// ReLU or hard swish, squeeze-and-excitation with hard-sigmoid gates, residual adds.
pub fn mobilenet_v3_like(
    input: FeatureShape,
    classes: usize,
    width: f32,
    device: &Device,
    seed: u64,
) -> Result<Graph> {
    spatial(input, "mobilenet_v3_like")?;
    let w = |c: usize| scaled(c, width);
    let mut b = GraphBuilder::new(input, device).seed(seed);
    let x = conv_bn(
        &mut b,
        "stem",
        0,
        Conv2dSpec::new(w(16), 3).stride(2).padding(1),
        Some(Act::HardSwish),
    )?;
    let x = inverted_residual(&mut b, "blocks.0", x, w(16), w(16), 1, Act::Relu6, None)?;
    let x = inverted_residual(
        &mut b,
        "blocks.1",
        x,
        w(48),
        w(24),
        2,
        Act::Relu,
        Some(true),
    )?;
    let x = inverted_residual(
        &mut b,
        "blocks.2",
        x,
        w(72),
        w(24),
        1,
        Act::HardSwish,
        Some(true),
    )?;
    let x = conv_bn(
        &mut b,
        "last",
        x,
        Conv2dSpec::new(w(96), 1),
        Some(Act::HardSwish),
    )?;
    head(b, x, classes)
}

/// An EfficientNet-style network: SiLU everywhere, squeeze-and-excitation with sigmoid gates.
pub fn efficientnet_like(
    input: FeatureShape,
    classes: usize,
    width: f32,
    device: &Device,
    seed: u64,
) -> Result<Graph> {
    spatial(input, "efficientnet_like")?;
    let w = |c: usize| scaled(c, width);
    let mut b = GraphBuilder::new(input, device).seed(seed);
    let x = conv_bn(
        &mut b,
        "stem",
        0,
        Conv2dSpec::new(w(16), 3).stride(2).padding(1),
        Some(Act::Silu),
    )?;
    let x = inverted_residual(
        &mut b,
        "blocks.0",
        x,
        w(16),
        w(16),
        1,
        Act::Silu,
        Some(false),
    )?;
    let x = inverted_residual(
        &mut b,
        "blocks.1",
        x,
        w(64),
        w(24),
        2,
        Act::Silu,
        Some(false),
    )?;
    let x = inverted_residual(
        &mut b,
        "blocks.2",
        x,
        w(96),
        w(24),
        1,
        Act::Silu,
        Some(false),
    )?;
    head(b, x, classes)
}

/// A ShuffleNetV2-style network: each unit splits its channels in two halves (slices), runs
/// one through 1x1 / depthwise 3x3 / 1x1, concatenates and shuffles; the downsampling unit
/// runs both halves.
pub fn shufflenet_like(
    input: FeatureShape,
    classes: usize,
    width: f32,
    device: &Device,
    seed: u64,
) -> Result<Graph> {
    spatial(input, "shufflenet_like")?;
    let half = scaled(16, width).max(2);
    let mut b = GraphBuilder::new(input, device).seed(seed);
    let x = conv_bn(
        &mut b,
        "stem",
        0,
        Conv2dSpec::new(half, 3).stride(2).padding(1),
        Some(Act::Relu),
    )?;
    // downsampling unit: both branches
    let l = conv_bn(
        &mut b,
        "unit0.left.dw",
        x,
        Conv2dSpec::new(half, 3).stride(2).padding(1).groups(half),
        None,
    )?;
    let l = conv_bn(
        &mut b,
        "unit0.left.pw",
        l,
        Conv2dSpec::new(half, 1),
        Some(Act::Relu),
    )?;
    let r = conv_bn(
        &mut b,
        "unit0.right.pw1",
        x,
        Conv2dSpec::new(half, 1),
        Some(Act::Relu),
    )?;
    let r = conv_bn(
        &mut b,
        "unit0.right.dw",
        r,
        Conv2dSpec::new(half, 3).stride(2).padding(1).groups(half),
        None,
    )?;
    let r = conv_bn(
        &mut b,
        "unit0.right.pw2",
        r,
        Conv2dSpec::new(half, 1),
        Some(Act::Relu),
    )?;
    let x = b.concat("unit0.cat", &[l, r])?;
    let mut x = b.channel_shuffle("unit0.shuffle", x, 2)?;
    for u in 1..3 {
        let p = format!("unit{u}");
        let keep = b.slice(format!("{p}.split0"), x, 0, half)?;
        let go = b.slice(format!("{p}.split1"), x, half, half)?;
        let r = conv_bn(
            &mut b,
            &format!("{p}.pw1"),
            go,
            Conv2dSpec::new(half, 1),
            Some(Act::Relu),
        )?;
        let r = conv_bn(
            &mut b,
            &format!("{p}.dw"),
            r,
            Conv2dSpec::new(half, 3).padding(1).groups(half),
            None,
        )?;
        let r = conv_bn(
            &mut b,
            &format!("{p}.pw2"),
            r,
            Conv2dSpec::new(half, 1),
            Some(Act::Relu),
        )?;
        let cat = b.concat(format!("{p}.cat"), &[keep, r])?;
        x = b.channel_shuffle(format!("{p}.shuffle"), cat, 2)?;
    }
    let x = conv_bn(
        &mut b,
        "last",
        x,
        Conv2dSpec::new(scaled(64, width), 1),
        Some(Act::Relu),
    )?;
    let x = b.mean("pool", x)?;
    let out = b.linear("fc", x, classes)?;
    b.build(out)
}

/// A RegNetY-style network: bottleneck blocks whose 3x3 convolution is grouped (groups of
/// `group_width` channels, as many inputs as outputs), with squeeze-and-excitation.
pub fn regnet_like(
    input: FeatureShape,
    classes: usize,
    width: f32,
    device: &Device,
    seed: u64,
) -> Result<Graph> {
    spatial(input, "regnet_like")?;
    let gw = 4;
    let c = (scaled(16, width) / gw).max(1) * gw;
    let mut b = GraphBuilder::new(input, device).seed(seed);
    let mut x = conv_bn(
        &mut b,
        "stem",
        0,
        Conv2dSpec::new(c, 3).stride(2).padding(1),
        Some(Act::Relu),
    )?;
    for k in 0..2 {
        let p = format!("block{k}");
        let y = conv_bn(
            &mut b,
            &format!("{p}.a"),
            x,
            Conv2dSpec::new(c, 1),
            Some(Act::Relu),
        )?;
        let y = conv_bn(
            &mut b,
            &format!("{p}.b"),
            y,
            Conv2dSpec::new(c, 3).padding(1).groups(c / gw),
            Some(Act::Relu),
        )?;
        let y = squeeze_excite(
            &mut b,
            &format!("{p}.se"),
            y,
            (c / 4).max(1),
            Act::Relu,
            false,
        )?;
        let y = conv_bn(&mut b, &format!("{p}.c"), y, Conv2dSpec::new(c, 1), None)?;
        let s = b.add(format!("{p}.add"), &[x, y])?;
        x = b.relu(format!("{p}.relu"), s)?;
    }
    head(b, x, classes)
}

/// A ConvNeXt-style network: a patchify stem with a channels-first layer norm, blocks of a
/// depthwise 7x7 convolution, a move to channels last, layer norm, linear, GELU, linear,
/// layer scale and back, with residual adds; a downsampling layer norm and strided
/// convolution; a layer-norm head.
pub fn convnext_like(
    input: FeatureShape,
    classes: usize,
    width: f32,
    device: &Device,
    seed: u64,
) -> Result<Graph> {
    spatial(input, "convnext_like")?;
    let dims = [scaled(8, width), scaled(16, width)];
    let mut b = GraphBuilder::new(input, device).seed(seed);
    let x = b.conv2d(
        "stem.conv",
        b.input(),
        Conv2dSpec::new(dims[0], 4).stride(4),
    )?;
    let mut x = b.layer_norm("stem.norm", x)?;
    for (s, &d) in dims.iter().enumerate() {
        if s > 0 {
            let n = b.layer_norm(format!("down{s}.norm"), x)?;
            x = b.conv2d(format!("down{s}.conv"), n, Conv2dSpec::new(d, 2).stride(2))?;
        }
        for k in 0..2 {
            let p = format!("stage{s}.{k}");
            let y = b.conv2d(
                format!("{p}.dwconv"),
                x,
                Conv2dSpec::new(d, 7).padding(3).groups(d),
            )?;
            let y = b.permute(format!("{p}.to_last"), y, true)?;
            let y = b.layer_norm(format!("{p}.norm"), y)?;
            let y = b.linear(format!("{p}.pwconv1"), y, 4 * d)?;
            let y = b.gelu(format!("{p}.act"), y, false)?;
            let y = b.linear(format!("{p}.pwconv2"), y, d)?;
            let y = b.scale(format!("{p}.layer_scale"), y, 0.5)?;
            let y = b.permute(format!("{p}.to_first"), y, false)?;
            x = b.add(format!("{p}.add"), &[x, y])?;
        }
    }
    let x = b.global_avg_pool("avgpool", x)?;
    let x = b.layer_norm("head.norm", x)?;
    let x = b.flatten("head.flatten", x)?;
    let out = b.linear("head.fc", x, classes)?;
    b.build(out)
}

/// A network with every remaining kind: leaky ReLU, ELU, parametric ReLUs (per channel and
/// shared), tanh, a clamp, padding, nearest upsampling, transposed convolutions (plain and
/// depthwise), a channel permutation, a global max pool beside a mean, and a softmax output.
pub fn misc_net(
    input: FeatureShape,
    classes: usize,
    width: f32,
    device: &Device,
    seed: u64,
) -> Result<Graph> {
    spatial(input, "misc_net")?;
    let c = scaled(8, width).max(2);
    let mut b = GraphBuilder::new(input, device).seed(seed);
    let x = b.conv2d(
        "conv1",
        b.input(),
        Conv2dSpec::new(c, 3).stride(2).padding(1),
    )?;
    let x = b.batch_norm("bn1", x)?;
    let x = b.leaky_relu("leaky", x, 0.1)?;
    let x = b.pad("pad", x, [0, 1, 1, 2], 0.5)?;
    let x = b.conv2d("conv2", x, Conv2dSpec::new(c, 3).padding(1))?;
    let x = b.prelu("prelu_c", x, true)?;
    let x = b.upsample("up", x, [2, 2])?;
    let x = b.conv_transpose2d("deconv", x, c, 3, 2, 1, 1, 1)?;
    let x = b.hardtanh("clamp", x, -1.0, 2.0)?;
    let x = b.conv_transpose2d("deconv_dw", x, c, 3, 1, 1, 0, c)?;
    let x = b.tanh("tanh", x)?;
    let order: Vec<usize> = (0..c).rev().collect();
    let x = b.channel_permute("permute", x, order)?;
    let x = b.conv2d("conv3", x, Conv2dSpec::new(c, 3).stride(2).padding(1))?;
    let x = b.elu("elu", x, 0.5)?;
    let x = b.prelu("prelu_1", x, false)?;
    let m = b.global_max_pool("gmp", x)?;
    let m = b.flatten("gmp_flat", m)?;
    let a = b.mean("mean", x)?;
    let x = b.concat("pools", &[m, a])?;
    let x = b.linear("fc", x, classes)?;
    let out = b.softmax("probs", x)?;
    b.build(out)
}
