//! `concat`: concatenation of two or more inputs along the channel axis.

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, unsupported};
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, Counts, Fusion, Imported, Kind, KindSpec, LrpView,
    OpImport, OpValue, OpWriter, ParamInfo, Redistribute,
};
use crate::kinds::util::{all, channel_axis, is_channel_axis};
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::module::Module;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

/// Concatenation of its inputs along the channel axis.
#[derive(Module, Debug, Default)]
pub struct Concat;

/// Hyper-parameters of a concatenation (none).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConcatOp {}

impl KindSpec for ConcatOp {
    type Layer = Concat;
    const NAME: &'static str = "concat";
    const ONNX_OPS: &'static [&'static str] = &["Concat"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (2, usize::MAX)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        let first = inputs[0];
        let mut channels = 0usize;
        for s in inputs {
            if s.layout() != first.layout() || s.with_channels(0) != first.with_channels(0) {
                return Err(format!(
                    "concat needs inputs that differ only in channels, got [{first}] and [{s}]"
                ));
            }
            channels = channels.saturating_add(s.channels());
        }
        Ok(first.with_channels(channels))
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Route(
            inputs
                .iter()
                .enumerate()
                .flat_map(|(i, s)| (0..s.channels()).map(move |c| (i, c)))
                .collect(),
        )
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> Concat {
        Concat
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        // Concatenations of shape vectors are folded by the importer itself.
        if !node.inputs.iter().all(|v| matches!(v, OpValue::Act { .. })) {
            return None;
        }
        Some(import(node))
    }
}

fn import(node: &OpImport<'_>) -> Result<Imported, ImportError> {
    node.check_attrs(&["axis"])?;
    let axis = node.attrs.int("axis", i64::MIN)?;
    if axis == i64::MIN {
        return Err("attribute `axis` is required".into());
    }
    let ids: Vec<usize> = node
        .inputs
        .iter()
        .filter_map(|v| match v {
            OpValue::Act { node, .. } => Some(*node),
            _ => None,
        })
        .collect();
    let Some(OpValue::Act { shape, .. }) = node.inputs.first() else {
        return Err("Concat has no input".into());
    };
    if !is_channel_axis(axis, *shape) {
        let rank = shape.layout().rank() as i64;
        let c = channel_axis(*shape);
        return Err(unsupported(
            "axis",
            axis,
            format!(
                "only the channel axis ({c}, or {} for rank-{rank} inputs)",
                c - rank
            ),
        ));
    }
    if ids.len() == 1 {
        return Ok(Imported::Node {
            layer: Layer::Identity(burn::nn::Identity),
            inputs: ids,
        });
    }
    Ok(Imported::Node {
        layer: Layer::Concat(Concat),
        inputs: ids,
    })
}

impl Kind for Concat {
    type Spec = ConcatOp;

    fn spec(&self) -> ConcatOp {
        ConcatOp {}
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        Activation::cat_channels(inputs)
            .ok_or_else(|| "concat inputs have different layouts".into())
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("concat", role))
    }

    fn slice(&self, _cut: &ChannelCut<'_>) -> Result<Layer, String> {
        // The output follows its inputs; shapes are inferred again after surgery.
        Ok(Layer::Concat(Concat))
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Redistribute(self)
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        all(inputs)
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let n = w.input_count();
        let axis = channel_axis(w.input_shape(0));
        let inputs: Vec<String> = (0..n).map(|i| w.input(i)).collect();
        w.op("Concat", inputs, vec![("axis", Attr::Int(axis))]);
        Ok(())
    }
}

impl Redistribute for Concat {
    fn redistribute(
        &self,
        inputs: &[&Activation],
        _output: &Activation,
        relevance: Activation,
    ) -> Result<Vec<Option<Activation>>, String> {
        let sizes: Vec<usize> = inputs.iter().map(|a| a.channels()).collect();
        if sizes.iter().sum::<usize>() != relevance.channels() {
            return Err(format!(
                "relevance has {} channels, the inputs {sizes:?}",
                relevance.channels()
            ));
        }
        Ok(relevance
            .split_channels(sizes)
            .into_iter()
            .map(Some)
            .collect())
    }
}
