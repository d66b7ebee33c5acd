//! `conv_transpose2d`: Burn's transposed 2-D convolution (`burn::nn::conv::ConvTranspose2d`,
//! weight `[in, out / groups, kh, kw]`), ONNX `ConvTranspose` with symmetric padding.
//!
//! Channels as for convolutions: with one group it mixes its inputs into new channels; a
//! depthwise or square-grouped one carries (groups of) channels; others are pinned. Its
//! transpose, for relevance propagation, is the convolution with the same weight.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, ints, unsupported};
use crate::kind::param::{param_from, select_param, unknown_role, vector_param};
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, Counts, Fusion, Imported, Kind, KindSpec, LinearMap,
    LrpView, Modified, OpImport, OpWriter, ParamInfo, ParamMod, ParamTensor, Pin, RuleClass,
};
use crate::kinds::conv2d::ConvGrouping;
use crate::kinds::util::{constant_of, into_spatial, one, spatial_in};
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::module::Param;
use burn::nn::conv::ConvTranspose2d;
use burn::tensor::module::{conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of a transposed convolution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvTranspose2dOp {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// Padding removed from each side `[height, width]`.
    pub padding: [usize; 2],
    /// Extra size added at the end `[height, width]` (less than the stride).
    pub output_padding: [usize; 2],
    /// Dilation `[height, width]`.
    pub dilation: [usize; 2],
    /// Groups.
    pub groups: usize,
    /// Whether the layer has a bias.
    pub bias: bool,
}

impl ConvTranspose2dOp {
    fn grouping(&self) -> ConvGrouping {
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

    fn groups_for(&self, in_channels: usize) -> usize {
        match self.grouping() {
            ConvGrouping::Plain => 1,
            ConvGrouping::Depthwise => in_channels.max(1),
            ConvGrouping::Square { unit } => (in_channels / unit.max(1)).max(1),
            ConvGrouping::Uneven => self.groups,
        }
    }
}

fn out_len(size: usize, k: usize, s: usize, p: usize, op: usize, d: usize) -> Option<usize> {
    let full = (size.checked_sub(1)?)
        .checked_mul(s)?
        .checked_add(d.checked_mul(k.checked_sub(1)?)?)?;
    full.checked_add(op)?.checked_add(1)?.checked_sub(2 * p)
}

impl KindSpec for ConvTranspose2dOp {
    type Layer = ConvTranspose2d;
    const NAME: &'static str = "conv_transpose2d";
    const ONNX_OPS: &'static [&'static str] = &["ConvTranspose"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        let s = self;
        let (i, o, g) = (s.in_channels, s.out_channels, s.groups);
        if i == 0 || o == 0 || g == 0 || i % g != 0 || o % g != 0 {
            return Err(format!(
                "conv_transpose2d groups = {g} must divide both in_channels = {i} and out_channels = {o}"
            ));
        }
        if s.stride.contains(&0) || s.dilation.contains(&0) || s.kernel.contains(&0) {
            return Err("conv_transpose2d kernel, stride and dilation must be positive".into());
        }
        if s.output_padding[0] >= s.stride[0].max(s.dilation[0])
            || s.output_padding[1] >= s.stride[1].max(s.dilation[1])
        {
            return Err(format!(
                "conv_transpose2d output padding {:?} must be smaller than the stride {:?}",
                s.output_padding, s.stride
            ));
        }
        let [c, h, w] = spatial_in(inputs[0], "conv_transpose2d")?;
        if c != i {
            return Err(format!(
                "conv_transpose2d expects {i} input channels, its input has {c} channels"
            ));
        }
        let oh = out_len(
            h,
            s.kernel[0],
            s.stride[0],
            s.padding[0],
            s.output_padding[0],
            s.dilation[0],
        );
        let ow = out_len(
            w,
            s.kernel[1],
            s.stride[1],
            s.padding[1],
            s.output_padding[1],
            s.dilation[1],
        );
        match (oh, ow) {
            (Some(oh), Some(ow)) if oh > 0 && ow > 0 => Ok(FeatureShape::spatial(o, oh, ow)),
            _ => Err(format!(
                "conv_transpose2d with padding {:?} leaves no output for input [{}]",
                s.padding, inputs[0]
            )),
        }
    }

    fn counts(&self, inputs: &[FeatureShape], output: FeatureShape) -> Counts {
        let cin = inputs[0].channels();
        let cout = output.channels() as u64;
        let groups = self.groups_for(cin);
        let per_input = (output.channels() / groups * self.kernel[0] * self.kernel[1]) as u64;
        Counts {
            params: cin as u64 * per_input + if self.bias { cout } else { 0 },
            buffers: 0,
            macs: inputs[0].numel() as u64 * per_input,
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
                    "they are the output of a grouped transposed convolution with uneven groups"
                        .into(),
                ),
                input: Pin::Pinned(
                    "they are read by a grouped transposed convolution with uneven groups".into(),
                ),
            },
        }
    }

    fn init(&self, init: &mut Initializer, device: &Device) -> ConvTranspose2d {
        let out_per_group = self.out_channels / self.groups;
        let fan_in = out_per_group * self.kernel[0] * self.kernel[1];
        ConvTranspose2d {
            weight: init.he_uniform(
                [
                    self.in_channels,
                    out_per_group,
                    self.kernel[0],
                    self.kernel[1],
                ],
                fan_in,
                device,
            ),
            bias: self
                .bias
                .then(|| init.bias(self.out_channels, fan_in, device)),
            stride: self.stride,
            kernel_size: self.kernel,
            dilation: self.dilation,
            groups: self.groups,
            padding: self.padding,
            padding_out: self.output_padding,
            channels: [self.in_channels, self.out_channels],
        }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some((|| -> Result<Imported, ImportError> {
            node.check_attrs(&[
                "auto_pad",
                "dilations",
                "group",
                "kernel_shape",
                "output_padding",
                "output_shape",
                "pads",
                "strides",
            ])?;
            let a = node.attrs;
            let (x, shape) = node.act(0, "X")?;
            spatial_in(shape, "ConvTranspose").map_err(ImportError::from)?;
            if a.get("output_shape").is_some() {
                return Err(unsupported(
                    "output_shape",
                    "given",
                    "pads and output_padding instead",
                ));
            }
            if let Some(p) = a.string("auto_pad")?
                && p != "NOTSET"
                && !p.is_empty()
            {
                return Err(unsupported("auto_pad", p, "only explicit pads (NOTSET)"));
            }
            let weight = node.constant(1, "W")?;
            let [ci, og, kh, kw] = weight.dims[..] else {
                return Err(format!(
                    "weight W must have 4 dimensions [C, M/group, kH, kW], found {}",
                    weight.dims_string()
                )
                .into());
            };
            let group = match a.int("group", 1)? {
                g if g > 0 => g as usize,
                g => return Err(unsupported("group", g, "a positive number of groups")),
            };
            if let Some(k) = a.positive_ints::<2>("kernel_shape")?
                && k != [kh, kw]
            {
                return Err(unsupported(
                    "kernel_shape",
                    format!("{k:?}"),
                    format!("the weight's window [{kh}, {kw}]"),
                ));
            }
            let pads = a.ints("pads")?.unwrap_or_else(|| vec![0; 4]);
            if pads.len() != 4
                || pads[0] != pads[2]
                || pads[1] != pads[3]
                || pads.iter().any(|&p| p < 0)
            {
                return Err(unsupported(
                    "pads",
                    format!("{pads:?}"),
                    "symmetric non-negative padding",
                ));
            }
            let op = ConvTranspose2dOp {
                in_channels: ci,
                out_channels: og * group,
                kernel: [kh, kw],
                stride: a.positive_ints::<2>("strides")?.unwrap_or([1, 1]),
                padding: [pads[0] as usize, pads[1] as usize],
                output_padding: match a.ints("output_padding")? {
                    Some(v) if v.len() == 2 && v.iter().all(|&x| x >= 0) => {
                        [v[0] as usize, v[1] as usize]
                    }
                    Some(v) => {
                        return Err(unsupported(
                            "output_padding",
                            format!("{v:?}"),
                            "2 non-negative values",
                        ));
                    }
                    None => [0, 0],
                },
                dilation: a.positive_ints::<2>("dilations")?.unwrap_or([1, 1]),
                groups: group,
                bias: node.has(2),
            };
            op.infer(&[shape]).map_err(ImportError::from)?;
            let bias = match node.optional_constant(2, "B")? {
                Some(b) if b.len() == op.out_channels => {
                    Some(vector_param(b.to_f32(), node.device))
                }
                Some(b) => {
                    return Err(format!(
                        "bias B must have {} values, found {}",
                        op.out_channels,
                        b.dims_string()
                    )
                    .into());
                }
                None => None,
            };
            let mut layer = op.init(&mut Initializer::new(0), node.device);
            layer.weight = Param::from_tensor(Tensor::from_data(
                TensorData::new(weight.to_f32(), [ci, og, kh, kw]),
                node.device,
            ));
            layer.bias = bias;
            Ok(Imported::Node {
                layer: Layer::ConvTranspose2d(layer),
                inputs: vec![x],
            })
        })())
    }
}

fn options(c: &ConvTranspose2d) -> ConvTransposeOptions<2> {
    ConvTransposeOptions::new(c.stride, c.padding, c.padding_out, c.dilation, c.groups)
}

impl Kind for ConvTranspose2d {
    type Spec = ConvTranspose2dOp;

    fn spec(&self) -> ConvTranspose2dOp {
        let [ci, og, kh, kw] = self.weight.dims();
        ConvTranspose2dOp {
            in_channels: ci,
            out_channels: og * self.groups,
            kernel: [kh, kw],
            stride: self.stride,
            padding: self.padding,
            output_padding: self.padding_out,
            dilation: self.dilation,
            groups: self.groups,
            bias: self.bias.is_some(),
        }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {
        let [ci, og, _, _] = self.weight.dims();
        self.channels = [ci, og * self.groups];
    }

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = into_spatial(one(inputs, "conv_transpose2d")?, "conv_transpose2d")?;
        Ok(Activation::Spatial(self.forward(x)))
    }

    fn params(&self) -> Vec<ParamInfo> {
        let out_axis = match self.spec().grouping() {
            ConvGrouping::Plain => Some(1),
            ConvGrouping::Depthwise => Some(0),
            _ => None,
        };
        let mut out = vec![ParamInfo::trainable("weight", &self.weight.val(), out_axis)];
        if let Some(b) = &self.bias {
            out.push(ParamInfo::trainable("bias", &b.val(), Some(0)));
        }
        out
    }

    fn set_param(&mut self, role: &str, data: TensorData, device: &Device) -> Result<(), String> {
        match role {
            "weight" => self.weight = param_from(data, device)?,
            "bias" => self.bias = Some(param_from(data, device)?),
            _ => return Err(unknown_role("conv_transpose2d", role)),
        }
        Ok(())
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        let spec = self.spec();
        let mut c = self.clone();
        let kept_out = cut.kept_output();
        match spec.grouping() {
            ConvGrouping::Plain => {
                if cut.input_changed(0) {
                    c.weight = select_param(&c.weight, 0, &cut.kept_input(0));
                }
                if !cut.removed_output.is_empty() {
                    c.weight = select_param(&c.weight, 1, &kept_out);
                    c.bias = c.bias.map(|b| select_param(&b, 0, &kept_out));
                }
            }
            ConvGrouping::Depthwise | ConvGrouping::Square { .. } => {
                cut.check_elementwise()?;
                let unit = match spec.grouping() {
                    ConvGrouping::Square { unit } => unit,
                    _ => 1,
                };
                if !cut.removed_output.is_empty() {
                    let whole = cut.removed_output.chunks(unit).all(|b| {
                        b.len() == unit
                            && b[0] % unit == 0
                            && b.windows(2).all(|p| p[1] == p[0] + 1)
                    });
                    if !whole {
                        return Err(
                            "a grouped transposed convolution loses whole groups only".into()
                        );
                    }
                    // [in, out/g, ...]: the kept groups' input rows; out/g stays.
                    c.weight = select_param(&c.weight, 0, &kept_out);
                    c.bias = c.bias.map(|b| select_param(&b, 0, &kept_out));
                    c.groups = kept_out.len() / unit;
                }
            }
            ConvGrouping::Uneven => {
                if !cut.is_empty() {
                    return Err(
                        "a transposed convolution with uneven groups cannot lose channels".into(),
                    );
                }
            }
        }
        Kind::normalize(&mut c, &[]);
        Ok(Layer::ConvTranspose2d(c))
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Linear {
            map: Box::new(DeconvMap(self)),
            class: RuleClass::Convolution,
        }
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        false
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let s = self.spec();
        let mut inputs = vec![
            w.input(0),
            w.constant("weight", constant_of(&self.weight.val())),
        ];
        if let Some(b) = &self.bias {
            inputs.push(w.constant("bias", constant_of(&b.val())));
        }
        let p = s.padding;
        w.op(
            "ConvTranspose",
            inputs,
            vec![
                ("kernel_shape", ints(s.kernel)),
                ("strides", ints(s.stride)),
                ("pads", ints([p[0], p[1], p[0], p[1]])),
                ("output_padding", ints(s.output_padding)),
                ("dilations", ints(s.dilation)),
                ("group", Attr::Int(s.groups as i64)),
            ],
        );
        Ok(())
    }
}

/// The transposed convolution as a linear map; its transpose is the convolution with the same
/// weight, stride, padding, dilation and groups.
struct DeconvMap<'a>(&'a ConvTranspose2d);

impl LinearMap for DeconvMap<'_> {
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
        let w = p
            .weight
            .as_ref()
            .and_then(|w| w.r4().cloned())
            .unwrap_or_else(|| self.0.weight.val());
        let b = p.bias.as_ref().and_then(|b| b.r1().cloned());
        let x = x.as_spatial().cloned().expect("a map");
        Activation::Spatial(conv_transpose2d(x, w, b, options(self.0)))
    }

    fn bias(&self, p: &Modified, _at: &Activation) -> Option<Activation> {
        let b = p.bias.as_ref()?.r1()?.clone();
        let [o] = b.dims();
        Some(Activation::Spatial(b.reshape([1, o, 1, 1])))
    }

    fn transpose(&self, s: Activation, _at: &Activation, p: &Modified) -> Activation {
        let w = p
            .weight
            .as_ref()
            .and_then(|w| w.r4().cloned())
            .unwrap_or_else(|| self.0.weight.val());
        let c = self.0;
        let s = s.into_spatial().expect("a map");
        let opts = ConvOptions::new(c.stride, c.padding, c.dilation, c.groups);
        Activation::Spatial(conv2d(s, w, None, opts))
    }
}

impl GraphBuilder {
    /// Adds a transposed convolution with a bias: `out_channels` outputs, a square `kernel`,
    /// `stride`, symmetric `padding`, `output_padding` and `groups`.
    pub fn conv_transpose2d(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        output_padding: usize,
        groups: usize,
    ) -> crate::Result<NodeId> {
        let in_channels = self.shape(input)?.channels();
        self.add_op(
            name,
            ConvTranspose2dOp {
                in_channels,
                out_channels,
                kernel: [kernel; 2],
                stride: [stride; 2],
                padding: [padding; 2],
                output_padding: [output_padding; 2],
                dilation: [1, 1],
                groups,
                bias: true,
            },
            &[input],
        )
    }
}
