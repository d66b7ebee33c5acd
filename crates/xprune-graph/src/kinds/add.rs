//! `add`: element-wise sum of two or more inputs of one shape (residual connections).

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::ImportError;
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, ChannelCut, ChannelFlow, Counts, Fusion, Imported, Kind, KindSpec, LrpView, OpImport,
    OpValue, OpWriter, ParamInfo,
};
use crate::kinds::util::{all, pass_slice};
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::module::Module;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

/// Element-wise sum of its inputs.
#[derive(Module, Debug, Default)]
pub struct Add;

/// Hyper-parameters of an add (none).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AddOp {}

impl KindSpec for AddOp {
    type Layer = Add;
    const NAME: &'static str = "add";
    const ONNX_OPS: &'static [&'static str] = &["Add", "Sum"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (2, usize::MAX)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        let first = inputs[0];
        if let Some(other) = inputs.iter().find(|s| **s != first) {
            return Err(format!(
                "add needs inputs of one shape, got [{first}] and [{other}]"
            ));
        }
        Ok(first)
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise { unit: 1 }
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> Add {
        Add
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some(import(node))
    }
}

fn import(node: &OpImport<'_>) -> Result<Imported, ImportError> {
    node.check_attrs(&[])?;
    let acts: Vec<usize> = node
        .inputs
        .iter()
        .filter_map(|v| match v {
            OpValue::Act { node, .. } => Some(*node),
            _ => None,
        })
        .collect();
    if acts.len() != node.inputs.len() || node.inputs.is_empty() {
        return Err(
            "only sums of activations, or the bias of a preceding MatMul/Gemm/Conv without one, \
             are supported"
                .into(),
        );
    }
    if acts.len() == 1 {
        return Ok(Imported::Alias(acts[0]));
    }
    Ok(Imported::Node {
        layer: Layer::Add(Add),
        inputs: acts,
    })
}

impl Kind for Add {
    type Spec = AddOp;

    fn spec(&self) -> AddOp {
        AddOp {}
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let mut it = inputs.into_iter();
        let first = it.next().ok_or("add has no input")?;
        it.try_fold(first, |acc, x| {
            acc.checked_add(x)
                .ok_or_else(|| "add inputs have different layouts".to_string())
        })
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("add", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        pass_slice(self.clone(), cut)
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Sum
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        all(inputs)
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let n = w.input_count();
        let inputs: Vec<String> = (0..n).map(|i| w.input(i)).collect();
        let op = if n == 2 { "Add" } else { "Sum" };
        w.op(op, inputs, vec![]);
        Ok(())
    }
}
