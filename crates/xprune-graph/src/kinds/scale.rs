//! `scale`: multiplication of each channel by a constant factor (ConvNeXt's layer scale;
//! `Mul` or `Div` by a constant in ONNX). A per-channel affine map: relevance passes it
//! (Zennit's rule for affine maps), the canonizer leaves it.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::ImportError;
use crate::kind::param::{param_from, select_param, unknown_role, vector_param};
use crate::kind::{
    Arity, ChannelCut, ChannelFlow, ConstTensor, Counts, Fusion, Imported, Kind, KindSpec, LrpView,
    OpImport, OpValue, OpWriter, ParamInfo, RuleClass,
};
use crate::kinds::batch_norm::AffineChannels;
use crate::kinds::util::{one, per_channel_values};
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Per-channel factors.
#[derive(Module, Debug)]
pub struct Scale {
    /// One factor per channel.
    pub weight: Param<Tensor<1>>,
}

/// Hyper-parameters of a per-channel scale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScaleOp {
    /// Number of channels.
    pub channels: usize,
}

impl KindSpec for ScaleOp {
    type Layer = Scale;
    const NAME: &'static str = "scale";
    const ONNX_OPS: &'static [&'static str] = &["Mul", "Div"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        if inputs[0].channels() != self.channels {
            return Err(format!(
                "scale has {} factors, its input has shape [{}]",
                self.channels, inputs[0]
            ));
        }
        Ok(inputs[0])
    }

    fn counts(&self, _inputs: &[FeatureShape], output: FeatureShape) -> Counts {
        Counts {
            params: output.channels() as u64,
            buffers: 0,
            macs: 0,
        }
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise { unit: 1 }
    }

    fn init(&self, _init: &mut Initializer, device: &Device) -> Scale {
        Scale {
            weight: vector_param(vec![1.0; self.channels], device),
        }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        // An activation times (or divided by) a constant that runs along the channels.
        let (x, shape, c) = match node.inputs {
            [OpValue::Act { node: x, shape }, OpValue::Const(c)] => (*x, *shape, c.clone()),
            [OpValue::Const(c), OpValue::Act { node: x, shape }] if node.op == "Mul" => {
                (*x, *shape, c.clone())
            }
            _ => return None,
        };
        Some((|| -> Result<Imported, ImportError> {
            node.check_attrs(&[])?;
            let factors = per_channel_values(&c, shape)?;
            let factors = if node.op == "Div" {
                if factors.contains(&0.0) {
                    return Err("division by a constant 0".into());
                }
                factors.iter().map(|v| 1.0 / v).collect()
            } else {
                factors
            };
            Ok(Imported::Node {
                layer: Layer::Scale(Scale {
                    weight: vector_param(factors, node.device),
                }),
                inputs: vec![x],
            })
        })())
    }
}

impl Kind for Scale {
    type Spec = ScaleOp;

    fn spec(&self) -> ScaleOp {
        ScaleOp {
            channels: self.weight.dims()[0],
        }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = one(inputs, "scale")?;
        let [c] = self.weight.dims();
        Ok(x.scale_channels(self.weight.val().reshape([1, c])))
    }

    fn params(&self) -> Vec<ParamInfo> {
        vec![ParamInfo::trainable("weight", &self.weight.val(), Some(0))]
    }

    fn set_param(&mut self, role: &str, data: TensorData, device: &Device) -> Result<(), String> {
        match role {
            "weight" => self.weight = param_from(data, device)?,
            _ => return Err(unknown_role("scale", role)),
        }
        Ok(())
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        cut.check_elementwise()?;
        let weight = if cut.removed_output.is_empty() {
            self.weight.clone()
        } else {
            select_param(&self.weight, 0, &cut.kept_output())
        };
        Ok(Layer::Scale(Scale { weight }))
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Linear {
            map: Box::new(AffineChannels {
                scale: self.weight.val(),
                shift: None,
            }),
            class: RuleClass::Affine,
        }
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        false
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let values = crate::tensor_util::to_vec(&self.weight.val());
        let c = values.len();
        let dims = match w.input_shape(0) {
            FeatureShape::Spatial(_) => vec![c, 1, 1],
            _ => vec![c],
        };
        let k = w.constant("weight", ConstTensor::f32(dims, values));
        let x = w.input(0);
        w.op("Mul", vec![x, k], vec![]);
        Ok(())
    }
}

impl Scale {
    /// Factors from host values.
    pub fn new(values: Vec<f32>, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(values.clone(), [values.len()]),
                device,
            )),
        }
    }
}

impl GraphBuilder {
    /// Adds per-channel factors, all starting at `value` (ConvNeXt's layer scale starts at
    /// `1e-6`).
    pub fn scale(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        value: f32,
    ) -> crate::Result<NodeId> {
        let name = name.into();
        let channels = self.shape(input)?.channels();
        let device = self.device().clone();
        let layer = Layer::Scale(Scale::new(vec![value; channels], &device));
        self.add_layer(name, layer, &[input])
    }
}
