//! `elu`: Burn's exponential linear unit `x` for `x > 0`, `alpha * (exp(x) - 1)` otherwise
//! (`burn::nn::activation::Elu`), ONNX `Elu`.

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
use crate::kinds::batch_norm::readable_f64;
use crate::kinds::util::{one, pass_slice};
use crate::map_activation;
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::nn::activation::Elu;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of an ELU.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EluOp {
    /// Scale of the negative part (ONNX and PyTorch default: 1).
    pub alpha: f64,
}

impl KindSpec for EluOp {
    type Layer = Elu;
    const NAME: &'static str = "elu";
    const ONNX_OPS: &'static [&'static str] = &["Elu"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        if !self.alpha.is_finite() {
            return Err(format!("elu needs a finite alpha, got {}", self.alpha));
        }
        Ok(inputs[0])
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise { unit: 1 }
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> Elu {
        Elu { alpha: self.alpha }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some((|| -> Result<Imported, ImportError> {
            node.check_attrs(&["alpha"])?;
            let (x, _) = node.act(0, "X")?;
            let alpha = readable_f64(node.attrs.float("alpha", 1.0)?);
            Ok(Imported::Node {
                layer: Layer::Elu(Elu { alpha }),
                inputs: vec![x],
            })
        })())
    }
}

impl Kind for Elu {
    type Spec = EluOp;

    fn spec(&self) -> EluOp {
        EluOp { alpha: self.alpha }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = one(inputs, "elu")?;
        let alpha = self.alpha;
        Ok(map_activation!(x, t => burn::tensor::activation::elu(t, alpha)))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("elu", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        pass_slice(self.clone(), cut)
    }

    fn lrp(&self) -> LrpView<'_> {
        // As for every element-wise activation: relevance passes unchanged.
        LrpView::Pass
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        // Non-negative inputs stay non-negative (ELU is the identity on them).
        inputs[0]
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let x = w.input(0);
        w.op("Elu", vec![x], vec![("alpha", Attr::Float(self.alpha as f32))]);
        Ok(())
    }
}

impl GraphBuilder {
    /// Adds an ELU with the given alpha.
    pub fn elu(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        alpha: f64,
    ) -> crate::Result<NodeId> {
        self.add_op(name, EluOp { alpha }, &[input])
    }
}
