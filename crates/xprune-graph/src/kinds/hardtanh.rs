//! `hardtanh`: Burn's clamp to `[min, max]` (`burn::nn::activation::Hardtanh`), ONNX `Clip`. A clip to
//! `[0, 6]` imports as [`relu6`](super::relu6).

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::ImportError;
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, ChannelCut, ChannelFlow, ConstTensor, Counts, Fusion, Imported, Kind, KindSpec, LrpView,
    OpImport, OpWriter, ParamInfo,
};
use crate::kinds::util::{one, pass_slice};
use crate::map_activation;
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::nn::activation::Hardtanh;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of a clamp.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HardtanhOp {
    /// Lower bound.
    pub min: f64,
    /// Upper bound.
    pub max: f64,
}

/// The bounds of an ONNX `Clip`: inputs 1 and 2 from opset 11 on, attributes before;
/// unbounded sides are infinite.
pub(crate) fn clip_bounds(node: &OpImport<'_>) -> Result<(f64, f64), ImportError> {
    if node.opset >= 11 {
        node.check_attrs(&[])?;
        let bound = |i: usize, what: &str, default: f64| -> Result<f64, ImportError> {
            match node.optional_constant(i, what)? {
                Some(t) => t.single().map(|v| v as f64).ok_or_else(|| {
                    format!("{what} must be a scalar, found {}", t.dims_string()).into()
                }),
                None => Ok(default),
            }
        };
        Ok((
            bound(1, "min", f64::NEG_INFINITY)?,
            bound(2, "max", f64::INFINITY)?,
        ))
    } else {
        node.check_attrs(&["min", "max"])?;
        Ok((
            node.attrs.float("min", f32::NEG_INFINITY)? as f64,
            node.attrs.float("max", f32::INFINITY)? as f64,
        ))
    }
}

impl KindSpec for HardtanhOp {
    type Layer = Hardtanh;
    const NAME: &'static str = "hardtanh";
    const ONNX_OPS: &'static [&'static str] = &["Clip"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        if self.min.is_nan() || self.max.is_nan() || self.min > self.max {
            return Err(format!(
                "hardtanh needs min <= max, got [{}, {}]",
                self.min, self.max
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

    fn init(&self, _init: &mut Initializer, _device: &Device) -> Hardtanh {
        Hardtanh {
            min_val: self.min,
            max_val: self.max,
        }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some((|| -> Result<Imported, ImportError> {
            let (x, _) = node.act(0, "input")?;
            let (min, max) = clip_bounds(node)?;
            let op = HardtanhOp { min, max };
            op.infer(&[FeatureShape::Flat(1)])
                .map_err(ImportError::from)?;
            Ok(Imported::Node {
                layer: Layer::Hardtanh(op.init(&mut Initializer::new(0), node.device)),
                inputs: vec![x],
            })
        })())
    }
}

/// The `Clip` operator with constant bounds (infinite bounds are left out).
pub(crate) fn export_clip(w: &mut dyn OpWriter, min: f64, max: f64) {
    let lo = if min.is_finite() {
        w.constant("min", ConstTensor::scalar(min as f32))
    } else {
        String::new()
    };
    let hi = if max.is_finite() {
        w.constant("max", ConstTensor::scalar(max as f32))
    } else {
        String::new()
    };
    let x = w.input(0);
    let mut inputs = vec![x, lo];
    if !hi.is_empty() {
        inputs.push(hi);
    }
    w.op("Clip", inputs, vec![]);
}

impl Kind for Hardtanh {
    type Spec = HardtanhOp;

    fn spec(&self) -> HardtanhOp {
        HardtanhOp {
            min: self.min_val,
            max: self.max_val,
        }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = one(inputs, "hardtanh")?;
        let (lo, hi) = (self.min_val, self.max_val);
        Ok(map_activation!(x, t => t.clamp(lo, hi)))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("hardtanh", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        pass_slice(self.clone(), cut)
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Pass
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        self.min_val >= 0.0
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        export_clip(w, self.min_val, self.max_val);
        Ok(())
    }
}

impl GraphBuilder {
    /// Adds a clamp to `[min, max]`.
    pub fn hardtanh(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        min: f64,
        max: f64,
    ) -> crate::Result<NodeId> {
        self.add_op(name, HardtanhOp { min, max }, &[input])
    }
}
