//! `softmax`: softmax over the channel axis (class probabilities at a model's output). Every
//! output depends on every channel, so its channels are never pruned; relevance passes
//! through it unchanged (explanations start from the probabilities' logits).

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, unsupported};
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, Counts, Fusion, Imported, Kind, KindSpec, LrpView,
    OpImport, OpWriter, ParamInfo,
};
use crate::kinds::util::{channel_axis, is_channel_axis, one, pass_slice};
use crate::map_activation;
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::module::Module;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

/// Softmax over the channel axis.
#[derive(Module, Debug, Default)]
pub struct Softmax;

/// Hyper-parameters of a softmax (none: it runs over the channel axis).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SoftmaxOp {}

impl KindSpec for SoftmaxOp {
    type Layer = Softmax;
    const NAME: &'static str = "softmax";
    const ONNX_OPS: &'static [&'static str] = &["Softmax"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        Ok(inputs[0])
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Normalize
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> Softmax {
        Softmax
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some((|| -> Result<Imported, ImportError> {
            node.check_attrs(&["axis"])?;
            let (x, shape) = node.act(0, "input")?;
            let default = if node.opset >= 13 { -1 } else { 1 };
            let axis = node.attrs.int("axis", default)?;
            // Before opset 13 the input is flattened from `axis` on: the same for vectors.
            let ok = if node.opset >= 13 {
                is_channel_axis(axis, shape)
            } else {
                matches!(shape, FeatureShape::Flat(_)) && (axis == 1 || axis == -1)
            };
            if !ok {
                return Err(unsupported(
                    "axis",
                    axis,
                    format!("only the channel axis ({})", channel_axis(shape)),
                ));
            }
            Ok(Imported::Node {
                layer: Layer::Softmax(Softmax),
                inputs: vec![x],
            })
        })())
    }
}

impl Kind for Softmax {
    type Spec = SoftmaxOp;

    fn spec(&self) -> SoftmaxOp {
        SoftmaxOp {}
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = one(inputs, "softmax")?;
        let axis = x.layout().channel_axis();
        Ok(map_activation!(x, t => burn::tensor::activation::softmax(t, axis)))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("softmax", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        pass_slice(Softmax, cut)
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Pass
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        true
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let axis = channel_axis(w.input_shape(0));
        let x = w.input(0);
        w.op("Softmax", vec![x], vec![("axis", Attr::Int(axis))]);
        Ok(())
    }
}

impl GraphBuilder {
    /// Adds a softmax over channels.
    pub fn softmax(&mut self, name: impl Into<String>, input: NodeId) -> crate::Result<NodeId> {
        self.add_op(name, SoftmaxOp {}, &[input])
    }
}
