//! `mean`: the mean of each channel over all positions of a map or token sequence, as a
//! vector (`x.mean([2, 3])` in PyTorch, ONNX `ReduceMean` without kept dimensions): global
//! average pooling and flattening in one. A parameter-free linear map.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, unsupported};
use crate::kind::param::unknown_role;
use crate::kind::{
    ConstTensor,
    Arity, Attr, ChannelCut, ChannelFlow, Counts, Fusion, Imported, Kind, KindSpec, LinearMap,
    LrpView, Modified, OpImport, OpWriter, ParamInfo, ParamMod, RuleClass,
};
use crate::kinds::adaptive_avg_pool2d::reduce_mean_positions;
use crate::kinds::util::{all, one, pass_slice};
use crate::registry::Layer;
use crate::shape::{FeatureShape, Layout};
use burn::module::Module;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

/// Mean over positions, to vectors.
#[derive(Module, Debug, Default)]
pub struct Mean;

/// Hyper-parameters of a mean over positions (none).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MeanOp {}

impl KindSpec for MeanOp {
    type Layer = Mean;
    const NAME: &'static str = "mean";
    const ONNX_OPS: &'static [&'static str] = &["ReduceMean"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        match inputs[0] {
            FeatureShape::Flat(_) => Err("mean over positions of a vector (it has none)".into()),
            s => Ok(FeatureShape::Flat(s.channels())),
        }
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise { unit: 1 }
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> Mean {
        Mean
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        let (keep, _) = match reduce_mean_positions(node)? {
            Ok(k) => k,
            Err(e) => return Some(Err(e)),
        };
        if keep {
            return None;
        }
        Some((|| -> Result<Imported, ImportError> {
            node.check_attrs(&["axes", "keepdims", "noop_with_empty_axes"])?;
            if node.attrs.int("noop_with_empty_axes", 0)? != 0 {
                return Err(unsupported("noop_with_empty_axes", 1, "0"));
            }
            let (x, _) = node.act(0, "data")?;
            Ok(Imported::Node {
                layer: Layer::Mean(Mean),
                inputs: vec![x],
            })
        })())
    }
}

fn mean(x: &Activation) -> Activation {
    let positions = x.feature_shape().positions().max(1);
    Activation::Flat(x.channel_sums().div_scalar(positions as f64))
}

impl Kind for Mean {
    type Spec = MeanOp;

    fn spec(&self) -> MeanOp {
        MeanOp {}
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        Ok(mean(&one(inputs, "mean")?))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("mean", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        pass_slice(Mean, cut)
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Linear {
            map: Box::new(MeanMap),
            class: RuleClass::Pool,
        }
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        all(inputs)
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let axes: Vec<i64> = match w.input_shape(0).layout() {
            Layout::Spatial => vec![2, 3],
            Layout::SpatialLast => vec![1, 2],
            Layout::Tokens => vec![1],
            Layout::Flat => return Err("mean of a vector".into()),
        };
        // The axes as an input (opset 18): an attribute would be invalid in a model that
        // another kind raises to opset 18 or later.
        w.require_opset(18);
        let x = w.input(0);
        let axes = w.constant("axes", ConstTensor::i64(vec![axes.len()], axes));
        w.op("ReduceMean", vec![x, axes], vec![("keepdims", Attr::Int(0))]);
        Ok(())
    }
}

/// The mean as a parameter-free linear map: its transpose spreads each channel's value evenly
/// over the positions.
struct MeanMap;

impl LinearMap for MeanMap {
    fn has_weight(&self) -> bool {
        false
    }

    fn has_bias(&self) -> bool {
        false
    }

    fn modify(&self, _weight: &ParamMod, _bias: &ParamMod) -> Modified {
        Modified::default()
    }

    fn forward(&self, x: &Activation, _at: &Activation, _p: &Modified) -> Activation {
        mean(x)
    }

    fn bias(&self, _p: &Modified, _at: &Activation) -> Option<Activation> {
        None
    }

    fn transpose(&self, s: Activation, at: &Activation, _p: &Modified) -> Activation {
        let positions = at.feature_shape().positions().max(1);
        let s = s.flatten().div_scalar(positions as f64);
        let ones = at.zeros_like();
        let ones = crate::map_activation!(ones, t => t.ones_like());
        ones.scale_channels(s)
    }
}

impl GraphBuilder {
    /// Adds a mean over positions (to vectors).
    pub fn mean(&mut self, name: impl Into<String>, input: NodeId) -> crate::Result<NodeId> {
        self.add_op(name, MeanOp {}, &[input])
    }
}
