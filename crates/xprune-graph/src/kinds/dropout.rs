//! `dropout`: Burn's dropout (`burn::nn::Dropout`), active in training only (on an autodiff
//! device, as Burn does).

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, unsupported};
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, ChannelCut, ChannelFlow, ConstTensor, Counts, Fusion, Imported, Kind, KindSpec, LrpView,
    OpImport, OpWriter, ParamInfo,
};
use crate::kinds::util::{all, one, pass_slice};
use crate::map_activation;
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::module::Param;
use burn::nn::Dropout;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of a dropout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DropoutOp {
    /// Probability of dropping a value, in `[0, 1)`.
    pub prob: f64,
}

fn dropout(prob: f64) -> Dropout {
    Dropout {
        prob,
        training: Param::from_bool(true),
    }
}

impl KindSpec for DropoutOp {
    type Layer = Dropout;
    const NAME: &'static str = "dropout";
    const ONNX_OPS: &'static [&'static str] = &["Dropout"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        if !(self.prob.is_finite() && (0.0..1.0).contains(&self.prob)) {
            return Err(format!(
                "dropout probability must be in [0, 1), got {}",
                self.prob
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

    fn init(&self, _init: &mut Initializer, _device: &Device) -> Dropout {
        dropout(self.prob)
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some(import(node))
    }
}

fn import(node: &OpImport<'_>) -> Result<Imported, ImportError> {
    node.check_attrs(&["ratio", "seed"])?;
    let (x, _) = node.act(0, "data")?;
    if node.opset >= 12 && node.attrs.get("ratio").is_some() {
        return Err(unsupported(
            "ratio",
            "an attribute",
            "from opset 12 on, ratio is input 1",
        ));
    }
    let mut ratio = node.attrs.float("ratio", 0.5)?;
    if let Some(r) = node.optional_constant(1, "ratio")? {
        ratio = r.single().ok_or_else(|| {
            ImportError::from(format!("ratio must be one value, found shape {}", r.dims_string()))
        })?;
    }
    if let Some(t) = node.optional_constant(2, "training_mode")?
        && t.to_f32().iter().any(|&v| v != 0.0)
    {
        return Err("training_mode = true is not supported (inference only)".into());
    }
    if !(0.0..1.0).contains(&ratio) {
        return Err(format!("ratio {ratio} must be in [0, 1)").into());
    }
    let prob = crate::kinds::batch_norm::readable_f64(ratio);
    Ok(Imported::Node {
        layer: Layer::Dropout(dropout(prob)),
        inputs: vec![x],
    })
}

impl Kind for Dropout {
    type Spec = DropoutOp;

    fn spec(&self) -> DropoutOp {
        DropoutOp { prob: self.prob }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, training: bool) -> Result<Activation, String> {
        let x = one(inputs, "dropout")?;
        Ok(if training {
            map_activation!(x, t => self.forward(t))
        } else {
            x
        })
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("dropout", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        pass_slice(self.clone(), cut)
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Pass
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        all(inputs)
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let ratio = w.constant("ratio", ConstTensor::scalar(self.prob as f32));
        let x = w.input(0);
        w.op("Dropout", vec![x, ratio], vec![]);
        Ok(())
    }
}
