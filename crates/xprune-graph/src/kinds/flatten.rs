//! `flatten`: each sample's values as one vector, in memory order (channel-major for
//! channels-first maps); the identity on vectors.

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, unsupported};
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, Counts, Dim, Fusion, Imported, Kind, KindSpec, LrpView,
    OpImport, OpValue, OpWriter, ParamInfo, Redistribute,
};
use crate::kinds::util::{all, one};
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::module::Module;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

/// Flattens each sample into a vector (channel-major for `[C, H, W]` maps).
#[derive(Module, Debug, Default)]
pub struct Flatten;

/// Hyper-parameters of a flatten (none).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FlattenOp {}

impl KindSpec for FlattenOp {
    type Layer = Flatten;
    const NAME: &'static str = "flatten";
    const ONNX_OPS: &'static [&'static str] = &["Flatten", "Reshape"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        Ok(FeatureShape::Flat(inputs[0].numel()))
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        // Output feature f holds the input channel at memory position f.
        let x = inputs[0];
        let n = x.numel();
        let route = match x {
            FeatureShape::Flat(_) => (0..n).map(|f| (0, f)).collect(),
            FeatureShape::Spatial([_, h, w]) => (0..n).map(|f| (0, f / (h * w))).collect(),
            FeatureShape::Tokens([_, c]) | FeatureShape::SpatialLast([_, _, c]) => {
                (0..n).map(|f| (0, f % c)).collect()
            }
        };
        ChannelFlow::Route(route)
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> Flatten {
        Flatten
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some(match node.op {
            "Flatten" => import_flatten(node),
            _ => import_reshape(node),
        })
    }
}

fn import_flatten(node: &OpImport<'_>) -> Result<Imported, ImportError> {
    node.check_attrs(&["axis"])?;
    let (x, shape) = node.act(0, "input")?;
    let rank = shape.batch_dims(1).len() as i64;
    let axis = node.attrs.int("axis", 1)?;
    let normalised = if axis < 0 { axis + rank } else { axis };
    if normalised != 1 {
        return Err(unsupported(
            "axis",
            axis,
            format!(
                "only axis = 1 (keep the batch dimension), or {} for this rank-{rank} input",
                1 - rank
            ),
        ));
    }
    Ok(Imported::Node {
        layer: Layer::Flatten(Flatten),
        inputs: vec![x],
    })
}

/// The target of a `Reshape` (input 1) as dimensions.
pub(crate) fn reshape_target(node: &OpImport<'_>) -> Result<Vec<Dim>, ImportError> {
    match node.input(1, "shape")? {
        OpValue::Dims { dims, .. } => Ok(dims.clone()),
        OpValue::Const(t) => match t.as_i64() {
            Some(v) => Ok(v.iter().map(|&d| Dim::Known(d)).collect()),
            None => Err("the target shape must be an integer tensor".into()),
        },
        _ => Err(
            "the target shape is computed from activations at run time; only constant shapes or \
             shapes built from the input's size are supported"
                .into(),
        ),
    }
}

fn import_reshape(node: &OpImport<'_>) -> Result<Imported, ImportError> {
    node.check_attrs(&["allowzero"])?;
    let (x, shape) = node.act(0, "data")?;
    let allow_zero = node.attrs.int("allowzero", 0)?;
    let target = reshape_target(node)?;
    let numel = shape.numel() as i64;
    let batch_like = |d: Dim| match d {
        Dim::Batch => true,
        Dim::Known(0) => allow_zero == 0,
        Dim::Known(v) => Some(v) == node.batch,
    };
    let rest_ok = |d: Dim| match d {
        Dim::Known(-1) => true,
        Dim::Known(0) => allow_zero == 0 && shape.channels() as i64 == numel,
        Dim::Known(v) => v == numel,
        Dim::Batch => false,
    };
    let is_flatten = match target[..] {
        [first, rest] => {
            (batch_like(first) && rest_ok(rest))
                || (first == Dim::Known(-1) && rest != Dim::Known(-1) && rest_ok(rest))
        }
        _ => false,
    };
    if !is_flatten {
        let shown: Vec<String> = target.iter().map(|d| d.to_string()).collect();
        return Err(format!(
            "Reshape of [N, {shape}] to [{}] is not supported: only a flatten to [N, -1] or \
             [N, {numel}] is (and, as parts of larger patterns, a channel shuffle)",
            shown.join(", ")
        )
        .into());
    }
    Ok(Imported::Node {
        layer: Layer::Flatten(Flatten),
        inputs: vec![x],
    })
}

impl Kind for Flatten {
    type Spec = FlattenOp;

    fn spec(&self) -> FlattenOp {
        FlattenOp {}
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        Ok(Activation::Flat(one(inputs, "flatten")?.flatten()))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("flatten", role))
    }

    fn slice(&self, _cut: &ChannelCut<'_>) -> Result<Layer, String> {
        // The output size follows the input's; shapes are inferred again after surgery.
        Ok(Layer::Flatten(Flatten))
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Redistribute(self)
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        all(inputs)
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let x = w.input(0);
        w.op("Flatten", vec![x], vec![("axis", Attr::Int(1))]);
        Ok(())
    }
}

impl Redistribute for Flatten {
    fn redistribute(
        &self,
        inputs: &[&Activation],
        _output: &Activation,
        relevance: Activation,
    ) -> Result<Vec<Option<Activation>>, String> {
        Ok(vec![Some(inputs[0].unflatten_like(relevance.flatten()))])
    }
}
