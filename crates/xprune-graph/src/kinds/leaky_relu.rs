//! `leaky_relu`: Burn's `max(x, 0) + slope * min(x, 0)` (`burn::nn::LeakyRelu`), ONNX
//! `LeakyRelu`.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::ImportError;
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, Counts, Fusion, Imported, Kind, KindSpec, LrpView,
    OpImport, OpWriter, ParamInfo,
};
use crate::kinds::util::{one, pass_slice};
use crate::map_activation;
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::nn::LeakyRelu;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of a leaky ReLU.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeakyReluOp {
    /// Slope of the negative part.
    pub negative_slope: f64,
}

impl KindSpec for LeakyReluOp {
    type Layer = LeakyRelu;
    const NAME: &'static str = "leaky_relu";
    const ONNX_OPS: &'static [&'static str] = &["LeakyRelu"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        if !self.negative_slope.is_finite() {
            return Err(format!(
                "leaky_relu needs a finite slope, got {}",
                self.negative_slope
            ));
        }
        Ok(inputs[0])
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise { unit: 1 }
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> LeakyRelu {
        LeakyRelu {
            negative_slope: self.negative_slope,
        }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some((|| -> Result<Imported, ImportError> {
            node.check_attrs(&["alpha"])?;
            let (x, _) = node.act(0, "X")?;
            let op = LeakyReluOp {
                negative_slope: crate::kinds::batch_norm::readable_f64(
                    node.attrs.float("alpha", 0.01)?,
                ),
            };
            Ok(Imported::Node {
                layer: Layer::LeakyRelu(op.init(&mut Initializer::new(0), node.device)),
                inputs: vec![x],
            })
        })())
    }
}

impl Kind for LeakyRelu {
    type Spec = LeakyReluOp;

    fn spec(&self) -> LeakyReluOp {
        LeakyReluOp {
            negative_slope: self.negative_slope,
        }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = one(inputs, "leaky_relu")?;
        let s = self.negative_slope;
        Ok(map_activation!(x, t => burn::tensor::activation::leaky_relu(t, s)))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("leaky_relu", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        pass_slice(self.clone(), cut)
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Pass
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        false
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let x = w.input(0);
        w.op(
            "LeakyRelu",
            vec![x],
            vec![("alpha", Attr::Float(self.negative_slope as f32))],
        );
        Ok(())
    }
}

impl GraphBuilder {
    /// Adds a leaky ReLU with the given negative slope.
    pub fn leaky_relu(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        negative_slope: f64,
    ) -> crate::Result<NodeId> {
        self.add_op(name, LeakyReluOp { negative_slope }, &[input])
    }
}
