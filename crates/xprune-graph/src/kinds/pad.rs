//! `pad`: constant padding of the height and width of a channels-first map (ONNX `Pad` in
//! constant mode). Linear in its input plus a constant: relevance goes back through the crop.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, unsupported};
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, ChannelCut, ChannelFlow, ConstTensor, Counts, Fusion, Imported, Kind, KindSpec,
    LinearMap, LrpView, Modified, OpImport, OpWriter, ParamInfo, ParamMod, ParamTensor, RuleClass,
};
use crate::kinds::util::{into_spatial, one, pass_slice, spatial_in};
use crate::registry::Layer;
use crate::shape::{FeatureShape, Padding2d};
use burn::module::Module;
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Constant padding `[top, left, bottom, right]` with `value`.
#[derive(Module, Debug)]
pub struct Pad {
    /// Padding `[top, left, bottom, right]`.
    #[module(skip)]
    pub padding: Padding2d,
    /// The padded value.
    #[module(skip)]
    pub value: f32,
}

/// Hyper-parameters of a padding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PadOp {
    /// Padding `[top, left, bottom, right]`.
    pub padding: Padding2d,
    /// The padded value.
    pub value: f32,
}

impl KindSpec for PadOp {
    type Layer = Pad;
    const NAME: &'static str = "pad";
    const ONNX_OPS: &'static [&'static str] = &["Pad"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        let [c, h, w] = spatial_in(inputs[0], "pad")?;
        if !self.value.is_finite() {
            return Err(format!("pad value must be finite, got {}", self.value));
        }
        let p = self.padding;
        let (oh, ow) = (
            h.checked_add(p[0]).and_then(|v| v.checked_add(p[2])),
            w.checked_add(p[1]).and_then(|v| v.checked_add(p[3])),
        );
        match (oh, ow) {
            (Some(oh), Some(ow)) => Ok(FeatureShape::spatial(c, oh, ow)),
            _ => Err(format!("pad {p:?} overflows")),
        }
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise { unit: 1 }
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> Pad {
        Pad {
            padding: self.padding,
            value: self.value,
        }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some((|| -> Result<Imported, ImportError> {
            let (x, shape) = node.act(0, "data")?;
            spatial_in(shape, "Pad").map_err(ImportError::from)?;
            let (pads, value) = if node.opset >= 11 {
                node.check_attrs(&["mode"])?;
                if node.has(3) {
                    return Err(unsupported("axes", "an input", "padding of all four axes"));
                }
                let p = node.constant(1, "pads")?;
                let p = p.as_i64().ok_or("pads must be integers")?.to_vec();
                let value = match node.optional_constant(2, "constant_value")? {
                    Some(v) => v.single().ok_or("constant_value must be a scalar")?,
                    None => 0.0,
                };
                (p, value)
            } else {
                node.check_attrs(&["mode", "pads", "value"])?;
                (
                    node.attrs
                        .ints("pads")?
                        .ok_or("attribute `pads` is required")?,
                    node.attrs.float("value", 0.0)?,
                )
            };
            let mode = node
                .attrs
                .string("mode")?
                .unwrap_or_else(|| "constant".into());
            if mode != "constant" {
                return Err(unsupported("mode", mode, "only constant"));
            }
            // [n, c, h, w begins, n, c, h, w ends]
            let ok =
                pads.len() == 8 && pads[0] == 0 && pads[1] == 0 && pads[4] == 0 && pads[5] == 0;
            let nonneg = pads.iter().all(|&v| v >= 0);
            if !(ok && nonneg) {
                return Err(unsupported(
                    "pads",
                    format!("{pads:?}"),
                    "non-negative padding of height and width only",
                ));
            }
            let padding = [
                pads[2] as usize,
                pads[3] as usize,
                pads[6] as usize,
                pads[7] as usize,
            ];
            Ok(Imported::Node {
                layer: Layer::Pad(Pad { padding, value }),
                inputs: vec![x],
            })
        })())
    }
}

fn pad(x: Tensor<4>, p: Padding2d, value: f32) -> Tensor<4> {
    x.pad([(p[0], p[2]), (p[1], p[3])], PadMode::Constant(value))
}

impl Kind for Pad {
    type Spec = PadOp;

    fn spec(&self) -> PadOp {
        PadOp {
            padding: self.padding,
            value: self.value,
        }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = into_spatial(one(inputs, "pad")?, "pad")?;
        Ok(Activation::Spatial(pad(x, self.padding, self.value)))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("pad", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        pass_slice(
            Pad {
                padding: self.padding,
                value: self.value,
            },
            cut,
        )
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Linear {
            map: Box::new(PadMap(self)),
            class: RuleClass::Pool,
        }
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        inputs.first().copied().unwrap_or(false) && self.value >= 0.0
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let p = self.padding.map(|v| v as i64);
        let pads = w.constant(
            "pads",
            ConstTensor::i64(vec![8], vec![0, 0, p[0], p[1], 0, 0, p[2], p[3]]),
        );
        let value = w.constant("value", ConstTensor::scalar(self.value));
        let x = w.input(0);
        w.op("Pad", vec![x, pads, value], vec![]);
        Ok(())
    }
}

/// Padding as a linear map: zero padding (the weight), plus the padded value at the border
/// (the bias); its transpose is the crop.
struct PadMap<'a>(&'a Pad);

impl LinearMap for PadMap<'_> {
    fn has_weight(&self) -> bool {
        false
    }

    fn has_bias(&self) -> bool {
        self.0.value != 0.0
    }

    fn modify(&self, _weight: &ParamMod, bias: &ParamMod) -> Modified {
        let device = Device::default();
        let b = (self.0.value != 0.0 && !bias.is_zero()).then(|| {
            ParamTensor::R1(bias.apply(Tensor::<1>::from_data(
                TensorData::new(vec![self.0.value], [1]),
                &device,
            )))
        });
        Modified {
            weight: None,
            bias: b,
        }
    }

    fn forward(&self, x: &Activation, at: &Activation, p: &Modified) -> Activation {
        let x = x.as_spatial().cloned().expect("pad of a map");
        let out = pad(x, self.0.padding, 0.0);
        match self.bias(p, at) {
            Some(b) => Activation::Spatial(out)
                .checked_add(b)
                .expect("same layout"),
            None => Activation::Spatial(out),
        }
    }

    fn bias(&self, p: &Modified, at: &Activation) -> Option<Activation> {
        let v = p.bias.as_ref()?.r1()?.clone();
        let x = at.as_spatial()?;
        let [_, c, h, w] = x.dims();
        let device = x.device();
        let inner = Tensor::<4>::zeros([1, c, h, w], &device);
        let border = pad(inner, self.0.padding, 1.0);
        let v = v.to_device(&device).reshape([1, 1, 1, 1]);
        Some(Activation::Spatial(border * v))
    }

    fn transpose(&self, s: Activation, at: &Activation, _p: &Modified) -> Activation {
        let p = self.0.padding;
        let [_, _, h, w] = at.as_spatial().map(|t| t.dims()).unwrap_or([0; 4]);
        let s = s.into_spatial().expect("pad relevance is a map");
        Activation::Spatial(s.narrow(2, p[0], h).narrow(3, p[1], w))
    }
}

impl GraphBuilder {
    /// Adds a constant padding `[top, left, bottom, right]` with `value`.
    pub fn pad(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        padding: Padding2d,
        value: f32,
    ) -> crate::Result<NodeId> {
        self.add_op(name, PadOp { padding, value }, &[input])
    }
}
