//! `prelu`: Burn's parametric ReLU (`burn::nn::PRelu`) with one learned slope, or one per
//! channel of vectors and channels-first maps; ONNX `PRelu`.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::ImportError;
use crate::kind::param::{param_from, select_param, unknown_role, vector_param};
use crate::kind::{
    Arity, ChannelCut, ChannelFlow, ConstTensor, Counts, Fusion, Imported, Kind, KindSpec, LrpView,
    OpImport, OpWriter, ParamInfo,
};
use crate::kinds::util::{one, per_channel_values};
use crate::map_activation;
use crate::registry::Layer;
use crate::shape::{FeatureShape, Layout};
use burn::nn::PRelu;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of a parametric ReLU.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PReluOp {
    /// Number of slopes: 1 (shared) or the input's channels.
    pub slopes: usize,
}

fn prelu(alpha: Vec<f32>, device: &Device) -> PRelu {
    PRelu {
        alpha_value: alpha.first().copied().unwrap_or(0.25) as f64,
        alpha: vector_param(alpha, device),
    }
}

impl KindSpec for PReluOp {
    type Layer = PRelu;
    const NAME: &'static str = "prelu";
    const ONNX_OPS: &'static [&'static str] = &["PRelu"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        let x = inputs[0];
        if !matches!(x.layout(), Layout::Flat | Layout::Spatial) {
            return Err(format!(
                "prelu has its channels on axis 1: vectors or channels-first maps, got [{x}]"
            ));
        }
        if self.slopes != 1 && self.slopes != x.channels() {
            return Err(format!(
                "prelu has {} slopes, its input has {} channels (1 or one per channel)",
                self.slopes,
                x.channels()
            ));
        }
        Ok(x)
    }

    fn counts(&self, _inputs: &[FeatureShape], output: FeatureShape) -> Counts {
        let params = if self.slopes == 1 {
            1
        } else {
            output.channels() as u64
        };
        Counts {
            params,
            buffers: 0,
            macs: 0,
        }
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise { unit: 1 }
    }

    fn init(&self, _init: &mut Initializer, device: &Device) -> PRelu {
        prelu(vec![0.25; self.slopes.max(1)], device)
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some((|| -> Result<Imported, ImportError> {
            node.check_attrs(&[])?;
            let (x, shape) = node.act(0, "X")?;
            let slope = node.constant(1, "slope")?;
            // One shared slope stays one; otherwise one per channel along the channel axis.
            let slopes = if slope.len() == 1 && slope.dims.len() <= shape.layout().rank() {
                slope.to_f32()
            } else {
                per_channel_values(&slope, shape)?
            };
            Ok(Imported::Node {
                layer: Layer::PRelu(prelu(slopes, node.device)),
                inputs: vec![x],
            })
        })())
    }
}

impl Kind for PRelu {
    type Spec = PReluOp;

    fn spec(&self) -> PReluOp {
        PReluOp {
            slopes: self.alpha.dims()[0],
        }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = one(inputs, "prelu")?;
        Ok(map_activation!(x, t => self.forward(t)))
    }

    fn params(&self) -> Vec<ParamInfo> {
        let per_channel = self.alpha.dims()[0] > 1;
        vec![ParamInfo::trainable(
            "alpha",
            &self.alpha.val(),
            per_channel.then_some(0),
        )]
    }

    fn set_param(&mut self, role: &str, data: TensorData, device: &Device) -> Result<(), String> {
        match role {
            "alpha" => self.alpha = param_from(data, device)?,
            _ => return Err(unknown_role("prelu", role)),
        }
        Ok(())
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        cut.check_elementwise()?;
        let mut l = self.clone();
        if l.alpha.dims()[0] > 1 && !cut.removed_output.is_empty() {
            l.alpha = select_param(&l.alpha, 0, &cut.kept_output());
        }
        Ok(Layer::PRelu(l))
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Pass
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        false
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let values = crate::tensor_util::to_vec(&self.alpha.val());
        let n = values.len();
        let dims = match (w.input_shape(0), n) {
            (_, 1) => vec![1],
            (FeatureShape::Spatial(_), n) => vec![n, 1, 1],
            (_, n) => vec![n],
        };
        let slope = w.constant("alpha", ConstTensor::f32(dims, values));
        let x = w.input(0);
        w.op("PRelu", vec![x, slope], vec![]);
        Ok(())
    }
}

impl GraphBuilder {
    /// Adds a parametric ReLU with one slope per channel (`per_channel`) or one shared slope
    /// (initial slopes 0.25).
    pub fn prelu(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        per_channel: bool,
    ) -> crate::Result<NodeId> {
        let slopes = if per_channel {
            self.shape(input)?.channels()
        } else {
            1
        };
        self.add_op(name, PReluOp { slopes }, &[input])
    }
}
