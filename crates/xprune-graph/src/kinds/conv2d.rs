//! `conv2d`: Burn's 2-D convolution (`burn::nn::conv::Conv2d`) with any stride, padding
//! (asymmetric included), dilation and groups.
//!
//! Channels: a plain convolution mixes its inputs into new channels; a depthwise convolution
//! (`groups == in == out`) carries each channel; a grouped convolution with as many inputs as
//! outputs carries whole groups (a group is removed with its inputs and outputs); any other
//! grouped convolution is pinned.

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, ints, unsupported};
use crate::kind::param::{param_from, select_param, unknown_role};
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, Counts, Fusion, Imported, Kind, KindSpec, LinearMap,
    LrpView, Modified, OpGraph, OpImport, OpNode, OpWriter, ParamInfo, ParamMod, ParamTensor, Pin,
    RuleClass,
};
use crate::kinds::util::{
    constant_of, explicit, into_spatial, one, onnx_spatial_hw, onnx_window_padding, padding_of,
    resolve_padding, spatial_in,
};
use crate::registry::Layer;
use crate::shape::{FeatureShape, Padding2d, window_output_hw};
use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::tensor::module::{conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Hyper-parameters of a 2-D convolution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conv2dOp {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// Padding `[top, left, bottom, right]`.
    pub padding: Padding2d,
    /// Dilation `[height, width]`.
    pub dilation: [usize; 2],
    /// Groups: `in_channels` and `out_channels` must both be multiples of it.
    pub groups: usize,
    /// Whether the layer has a bias.
    pub bias: bool,
}

/// How a convolution's groups relate its input and output channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvGrouping {
    /// One group: every output reads every input.
    Plain,
    /// `groups == in == out`: output channel `k` reads input channel `k` only.
    Depthwise,
    /// `in == out` with groups of `unit` channels: output group `j` reads input group `j`.
    Square {
        /// Channels per group.
        unit: usize,
    },
    /// Groups of different input and output widths.
    Uneven,
}

impl Conv2dOp {
    /// How the groups relate inputs and outputs.
    pub fn grouping(&self) -> ConvGrouping {
        let (i, o, g) = (self.in_channels, self.out_channels, self.groups);
        if g <= 1 {
            ConvGrouping::Plain
        } else if g == i && g == o {
            ConvGrouping::Depthwise
        } else if i == o {
            ConvGrouping::Square { unit: i / g }
        } else {
            ConvGrouping::Uneven
        }
    }

    /// The groups of this convolution with `in_channels` input channels (after pruning:
    /// depthwise and square-grouped convolutions lose groups with their channels).
    fn groups_for(&self, in_channels: usize) -> usize {
        match self.grouping() {
            ConvGrouping::Plain => 1,
            ConvGrouping::Depthwise => in_channels.max(1),
            ConvGrouping::Square { unit } => (in_channels / unit.max(1)).max(1),
            ConvGrouping::Uneven => self.groups,
        }
    }
}

impl KindSpec for Conv2dOp {
    type Layer = Conv2d;
    const NAME: &'static str = "conv2d";
    const ONNX_OPS: &'static [&'static str] = &["Conv"];
    const FUSIONS: &'static [Fusion] = &[Fusion {
        pattern: "Add(Conv(x, W), b) with a constant b of shape [M, 1, 1] or [1, M, 1, 1]",
        reads: &["Conv", "Add"],
        produces: "Conv",
        internal: false,
        apply: fuse_conv_bias,
    }];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        let Self {
            in_channels,
            out_channels,
            kernel,
            stride,
            padding,
            dilation,
            groups,
            ..
        } = *self;
        if in_channels == 0 || out_channels == 0 {
            return Err(format!(
                "conv2d needs at least one input and one output channel, got {in_channels} -> {out_channels}"
            ));
        }
        if groups == 0 || in_channels % groups != 0 || out_channels % groups != 0 {
            return Err(format!(
                "conv2d groups = {groups} must divide both in_channels = {in_channels} and out_channels = {out_channels}"
            ));
        }
        let [c, h, w] = spatial_in(inputs[0], "conv2d")?;
        if c != in_channels {
            return Err(format!(
                "conv2d expects {in_channels} input channels, its input has {c} channels (shape [{}])",
                inputs[0]
            ));
        }
        match window_output_hw([h, w], &padding, kernel, stride, dilation, false) {
            Some([oh, ow]) => Ok(FeatureShape::Spatial([out_channels, oh, ow])),
            None => Err(format!(
                "conv2d kernel {kernel:?} (stride {stride:?}, padding {padding:?}, dilation {dilation:?}) does not fit input [{}]",
                inputs[0]
            )),
        }
    }

    fn counts(&self, inputs: &[FeatureShape], output: FeatureShape) -> Counts {
        let cin = inputs[0].channels();
        let cout = output.channels() as u64;
        let groups = self.groups_for(cin);
        let per_output = (cin / groups * self.kernel[0] * self.kernel[1]) as u64;
        Counts {
            params: cout * per_output + if self.bias { cout } else { 0 },
            buffers: 0,
            macs: output.numel() as u64 * per_output,
        }
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        match self.grouping() {
            ConvGrouping::Plain => ChannelFlow::Mix {
                output: Pin::Free,
                input: Pin::Free,
            },
            ConvGrouping::Depthwise => ChannelFlow::Elementwise { unit: 1 },
            ConvGrouping::Square { unit } => ChannelFlow::Elementwise { unit },
            ConvGrouping::Uneven => ChannelFlow::Mix {
                output: Pin::Pinned(
                    "they are the output of a grouped convolution whose groups have different \
                     input and output widths"
                        .into(),
                ),
                input: Pin::Pinned(
                    "they are read by a grouped convolution whose groups have different input and \
                     output widths"
                        .into(),
                ),
            },
        }
    }

    fn init(&self, init: &mut Initializer, device: &Device) -> Conv2d {
        let in_per_group = self.in_channels / self.groups;
        let fan_in = in_per_group * self.kernel[0] * self.kernel[1];
        let weight = init.he_uniform(
            [
                self.out_channels,
                in_per_group,
                self.kernel[0],
                self.kernel[1],
            ],
            fan_in,
            device,
        );
        let bias = self
            .bias
            .then(|| init.bias(self.out_channels, fan_in, device));
        Conv2d {
            weight,
            bias,
            stride: self.stride,
            kernel_size: self.kernel,
            dilation: self.dilation,
            groups: self.groups,
            padding: explicit(self.padding),
        }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some(import_conv(node))
    }
}

fn import_conv(node: &OpImport<'_>) -> Result<Imported, ImportError> {
    node.check_attrs(&[
        "auto_pad",
        "dilations",
        "group",
        "kernel_shape",
        "pads",
        "strides",
    ])?;
    let a = node.attrs;
    let (x, shape) = node.act(0, "X")?;
    let [h, w] = onnx_spatial_hw(shape)?;
    let c = shape.channels();
    let weight = node.constant(1, "W")?;
    let [m, cg, kh, kw] = weight.dims[..] else {
        return Err(format!(
            "weight W must have 4 dimensions [M, C/group, kH, kW] (2-D convolution), found {}",
            weight.dims_string()
        )
        .into());
    };
    if let Some(k) = a.positive_ints::<2>("kernel_shape")?
        && k != [kh, kw]
    {
        return Err(unsupported(
            "kernel_shape",
            format!("{k:?}"),
            format!("it must match the weight's kernel [{kh}, {kw}]"),
        ));
    }
    let stride = a.positive_ints::<2>("strides")?.unwrap_or([1, 1]);
    let dilation = a.positive_ints::<2>("dilations")?.unwrap_or([1, 1]);
    let group = a.int("group", 1)?;
    let groups = usize::try_from(group)
        .ok()
        .filter(|&g| g > 0 && c % g == 0 && m % g == 0 && c / g == cg)
        .ok_or_else(|| {
            unsupported(
                "group",
                group,
                format!(
                    "it must divide the {c} input and {m} output channels, with C/group = {cg} \
                     (the weight's second dimension)"
                ),
            )
        })?;
    let padding = onnx_window_padding(a, [h, w], [kh, kw], stride, dilation)?;
    let bias = match node.optional_constant(2, "B")? {
        Some(b) => {
            let fits = b.dims == [m] || b.dims == [m, 1, 1] || b.dims == [1, m, 1, 1];
            if !fits {
                return Err(format!(
                    "bias B must have shape [{m}], [{m}, 1, 1] or [1, {m}, 1, 1], found {}",
                    b.dims_string()
                )
                .into());
            }
            Some(crate::kind::param::vector_param(b.to_f32(), node.device))
        }
        None => None,
    };
    let conv = Conv2d {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(weight.to_f32(), [m, cg, kh, kw]),
            node.device,
        )),
        bias,
        stride,
        kernel_size: [kh, kw],
        dilation,
        groups,
        padding: explicit(padding),
    };
    Ok(Imported::Node {
        layer: Layer::Conv2d(conv),
        inputs: vec![x],
    })
}

/// `Conv(x, W)` followed by `Add(·, b)` with a constant per-channel `b` (as exporters write a
/// bias) becomes `Conv(x, W, b)`.
fn fuse_conv_bias(g: &mut OpGraph) -> usize {
    let mut fused = 0;
    let mut k = 0;
    while k < g.nodes.len() {
        let n = &g.nodes[k];
        let bias_less = n.op == "Conv"
            && (n.inputs.len() == 2 || n.inputs.get(2).is_some_and(|b| b.is_empty()));
        if !(bias_less && g.single_use(k)) {
            k += 1;
            continue;
        }
        let out = n.outputs[0].clone();
        let Some(&add) = g.consumers(&out).first() else {
            k += 1;
            continue;
        };
        let a = &g.nodes[add];
        if a.op != "Add" || a.inputs.len() != 2 {
            k += 1;
            continue;
        }
        let other = if a.inputs[0] == out {
            &a.inputs[1]
        } else {
            &a.inputs[0]
        };
        let weight_out = g
            .constant(&n.inputs[1])
            .map(|w| w.dims.first().copied().unwrap_or(0));
        let Some(b) = g.constant(other) else {
            k += 1;
            continue;
        };
        let Some(m) = weight_out else {
            k += 1;
            continue;
        };
        if !(b.dims == [m, 1, 1] || b.dims == [1, m, 1, 1] || b.dims == [m] && m == 1) {
            k += 1;
            continue;
        }
        let bias_name = format!("{}::bias", a.outputs[0]);
        g.consts.insert(
            bias_name.clone(),
            Arc::new(crate::kind::ConstTensor::f32(vec![m], b.to_f32())),
        );
        let mut conv: OpNode = n.clone();
        conv.inputs.truncate(2);
        conv.inputs.push(bias_name);
        conv.outputs = a.outputs.clone();
        g.replace(&[k, add], conv);
        fused += 1;
    }
    fused
}

impl Kind for Conv2d {
    type Spec = Conv2dOp;

    fn spec(&self) -> Conv2dOp {
        let [out_channels, in_per_group, kh, kw] = self.weight.dims();
        Conv2dOp {
            in_channels: in_per_group * self.groups,
            out_channels,
            kernel: [kh, kw],
            stride: self.stride,
            padding: padding_of(&self.padding),
            dilation: self.dilation,
            groups: self.groups,
            bias: self.bias.is_some(),
        }
    }

    fn normalize(&mut self, inputs: &[FeatureShape]) {
        if let Some(hw) = inputs.first().and_then(|s| s.hw()) {
            let [_, _, kh, kw] = self.weight.dims();
            self.padding = explicit(resolve_padding(&self.padding, hw, [kh, kw], self.stride));
        }
    }

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = into_spatial(one(inputs, "conv2d")?, "conv2d")?;
        Ok(Activation::Spatial(self.forward(x)))
    }

    fn params(&self) -> Vec<ParamInfo> {
        let mut out = vec![ParamInfo::trainable("weight", &self.weight.val(), Some(0))];
        if let Some(b) = &self.bias {
            out.push(ParamInfo::trainable("bias", &b.val(), Some(0)));
        }
        out
    }

    fn set_param(&mut self, role: &str, data: TensorData, device: &Device) -> Result<(), String> {
        match role {
            "weight" => self.weight = param_from(data, device)?,
            "bias" => self.bias = Some(param_from(data, device)?),
            _ => return Err(unknown_role("conv2d", role)),
        }
        Ok(())
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        let spec = self.spec();
        let mut conv = self.clone();
        let kept_out = cut.kept_output();
        match spec.grouping() {
            ConvGrouping::Plain => {
                if !cut.removed_output.is_empty() {
                    conv.weight = select_param(&conv.weight, 0, &kept_out);
                    conv.bias = conv.bias.map(|b| select_param(&b, 0, &kept_out));
                }
                if cut.input_changed(0) {
                    conv.weight = select_param(&conv.weight, 1, &cut.kept_input(0));
                }
            }
            ConvGrouping::Depthwise | ConvGrouping::Square { .. } => {
                cut.check_elementwise()?;
                let unit = match spec.grouping() {
                    ConvGrouping::Square { unit } => unit,
                    _ => 1,
                };
                let blocks_whole = cut.removed_output.chunks(unit).all(|c| {
                    c.len() == unit && c[0] % unit == 0 && c.windows(2).all(|p| p[1] == p[0] + 1)
                });
                if !blocks_whole {
                    return Err(format!(
                        "a grouped convolution with groups of {unit} channels loses whole groups only, \
                         asked to remove channels {:?}",
                        cut.removed_output
                    ));
                }
                if !cut.removed_output.is_empty() {
                    conv.weight = select_param(&conv.weight, 0, &kept_out);
                    conv.bias = conv.bias.map(|b| select_param(&b, 0, &kept_out));
                    conv.groups = kept_out.len() / unit;
                }
            }
            ConvGrouping::Uneven => {
                if !cut.is_empty() {
                    return Err(
                        "a grouped convolution with uneven groups cannot lose channels".into(),
                    );
                }
            }
        }
        Ok(Layer::Conv2d(conv))
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Linear {
            map: Box::new(ConvMap(self)),
            class: RuleClass::Convolution,
        }
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        false
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let spec = self.spec();
        let mut inputs = vec![
            w.input(0),
            w.constant("weight", constant_of(&self.weight.val())),
        ];
        if let Some(b) = &self.bias {
            inputs.push(w.constant("bias", constant_of(&b.val())));
        }
        w.op(
            "Conv",
            inputs,
            vec![
                ("kernel_shape", ints(spec.kernel)),
                ("strides", ints(spec.stride)),
                ("pads", ints(spec.padding)),
                ("dilations", ints(spec.dilation)),
                ("group", Attr::Int(spec.groups as i64)),
            ],
        );
        Ok(())
    }
}

/// The convolution seen as a linear map for relevance propagation: forward with modified
/// weights, transpose by `conv_transpose2d` with the output padding that restores the input
/// size (and a crop for asymmetric padding).
struct ConvMap<'a>(&'a Conv2d);

fn conv_padding(conv: &Conv2d) -> Padding2d {
    padding_of(&conv.padding)
}

fn spatial_ref(a: &Activation) -> Tensor<4> {
    match a {
        Activation::Spatial(t) => t.clone(),
        other => {
            // shape inference guarantees maps; keep a defined behaviour anyway
            let dims = other.dims();
            other
                .clone()
                .flatten()
                .reshape([dims[0], dims[1..].iter().product(), 1, 1])
        }
    }
}

/// `conv(x)` with the given weight and bias.
pub(crate) fn conv_with(
    conv: &Conv2d,
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
) -> Tensor<4> {
    let p = conv_padding(conv);
    let options = ConvOptions::new_with_padding(
        conv.stride,
        [(p[0], p[2]), (p[1], p[3])],
        conv.dilation,
        conv.groups,
    );
    conv2d(x, weight, bias, options)
}

/// The transpose of `conv`'s linear map with the given weight applied to `s`, for an input of
/// `[_, _, h, w]`.
pub(crate) fn conv_transpose_with(
    conv: &Conv2d,
    s: Tensor<4>,
    weight: Tensor<4>,
    [h, w]: [usize; 2],
) -> Tensor<4> {
    let [_, _, oh, ow] = s.dims();
    let [_, _, kh, kw] = conv.weight.dims();
    let p = conv_padding(conv);
    let rest = |size: usize, begin: usize, end: usize, out: usize, k: usize, d: usize| {
        let covered = (out - 1) * conv.stride[d] + conv.dilation[d] * (k - 1) + 1;
        size + begin + end - covered
    };
    let rh = rest(h, p[0], p[2], oh, kh, 0);
    let rw = rest(w, p[1], p[3], ow, kw, 1);
    if p[0] == p[2] && p[1] == p[3] {
        let options = ConvTransposeOptions::new(
            conv.stride,
            [p[0], p[1]],
            [rh, rw],
            conv.dilation,
            conv.groups,
        );
        conv_transpose2d(s, weight, None, options)
    } else {
        let options =
            ConvTransposeOptions::new(conv.stride, [0, 0], [rh, rw], conv.dilation, conv.groups);
        conv_transpose2d(s, weight, None, options)
            .narrow(2, p[0], h)
            .narrow(3, p[1], w)
    }
}

impl LinearMap for ConvMap<'_> {
    fn has_weight(&self) -> bool {
        true
    }

    fn has_bias(&self) -> bool {
        self.0.bias.is_some()
    }

    fn modify(&self, weight: &ParamMod, bias: &ParamMod) -> Modified {
        Modified {
            weight: Some(ParamTensor::R4(weight.apply(self.0.weight.val()))),
            bias: match (&self.0.bias, bias.is_zero()) {
                (Some(b), false) => Some(ParamTensor::R1(bias.apply(b.val()))),
                _ => None,
            },
        }
    }

    fn forward(&self, x: &Activation, _at: &Activation, p: &Modified) -> Activation {
        let weight = p
            .weight
            .as_ref()
            .and_then(|w| w.r4().cloned())
            .unwrap_or_else(|| self.0.weight.val());
        let bias = p.bias.as_ref().and_then(|b| b.r1().cloned());
        Activation::Spatial(conv_with(self.0, spatial_ref(x), weight, bias))
    }

    fn bias(&self, p: &Modified, _at: &Activation) -> Option<Activation> {
        let b = p.bias.as_ref()?.r1()?.clone();
        let [o] = b.dims();
        Some(Activation::Spatial(b.reshape([1, o, 1, 1])))
    }

    fn transpose(&self, s: Activation, at: &Activation, p: &Modified) -> Activation {
        let weight = p
            .weight
            .as_ref()
            .and_then(|w| w.r4().cloned())
            .unwrap_or_else(|| self.0.weight.val());
        let dims = at.dims();
        Activation::Spatial(conv_transpose_with(
            self.0,
            spatial_ref(&s),
            weight,
            [dims[2], dims[3]],
        ))
    }
}
