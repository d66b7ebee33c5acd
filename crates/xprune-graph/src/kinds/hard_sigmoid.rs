//! `hard_sigmoid`: Burn's `max(0, min(1, alpha * x + beta))` (`burn::nn::HardSigmoid`), as
//! in MobileNetV3's squeeze-and-excitation gates (PyTorch: `alpha = 1/6`, `beta = 1/2`).

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
use burn::nn::HardSigmoid;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of a hard sigmoid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HardSigmoidOp {
    /// Slope.
    pub alpha: f64,
    /// Offset.
    pub beta: f64,
}

impl KindSpec for HardSigmoidOp {
    type Layer = HardSigmoid;
    const NAME: &'static str = "hard_sigmoid";
    const ONNX_OPS: &'static [&'static str] = &["HardSigmoid"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        if !(self.alpha.is_finite() && self.beta.is_finite()) {
            return Err(format!(
                "hard_sigmoid needs finite alpha and beta, got {} and {}",
                self.alpha, self.beta
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

    fn init(&self, _init: &mut Initializer, _device: &Device) -> HardSigmoid {
        HardSigmoid {
            alpha: self.alpha,
            beta: self.beta,
        }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some((|| -> Result<Imported, ImportError> {
            node.check_attrs(&["alpha", "beta"])?;
            let (x, _) = node.act(0, "X")?;
            let op = HardSigmoidOp {
                alpha: crate::kinds::batch_norm::readable_f64(node.attrs.float("alpha", 0.2)?),
                beta: crate::kinds::batch_norm::readable_f64(node.attrs.float("beta", 0.5)?),
            };
            Ok(Imported::Node {
                layer: Layer::HardSigmoid(op.init(&mut Initializer::new(0), node.device)),
                inputs: vec![x],
            })
        })())
    }
}

impl Kind for HardSigmoid {
    type Spec = HardSigmoidOp;

    fn spec(&self) -> HardSigmoidOp {
        HardSigmoidOp {
            alpha: self.alpha,
            beta: self.beta,
        }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = one(inputs, "hard_sigmoid")?;
        let (a, b) = (self.alpha, self.beta);
        Ok(map_activation!(x, t => burn::tensor::activation::hard_sigmoid(t, a, b)))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("hard_sigmoid", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        pass_slice(self.clone(), cut)
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Pass
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        true
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let x = w.input(0);
        w.op(
            "HardSigmoid",
            vec![x],
            vec![
                ("alpha", Attr::Float(self.alpha as f32)),
                ("beta", Attr::Float(self.beta as f32)),
            ],
        );
        Ok(())
    }
}

impl GraphBuilder {
    /// Adds a hard sigmoid `max(0, min(1, alpha * x + beta))` (PyTorch: `alpha = 1/6`,
    /// `beta = 0.5`).
    pub fn hard_sigmoid(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        alpha: f64,
        beta: f64,
    ) -> crate::Result<NodeId> {
        self.add_op(name, HardSigmoidOp { alpha, beta }, &[input])
    }
}
