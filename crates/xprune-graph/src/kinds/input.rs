//! `input`: the graph input (node 0). It opens the input's channels, which are never removed.

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::ImportError;
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, ChannelCut, ChannelFlow, Counts, Fusion, Imported, Kind, KindSpec, LrpView, OpImport,
    OpWriter, ParamInfo,
};
use crate::kinds::util::no_slice;
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::module::Module;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

/// The graph input: the batch given to `forward`. It holds its per-sample shape.
#[derive(Module, Debug)]
pub struct Input {
    /// Per-sample shape of the input.
    #[module(skip)]
    pub shape: FeatureShape,
}

impl Input {
    /// An input of samples of `shape`.
    pub fn new(shape: FeatureShape) -> Self {
        Self { shape }
    }
}

/// Hyper-parameters of the input: its per-sample shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputOp {
    /// Per-sample shape of the input.
    pub shape: FeatureShape,
}

impl KindSpec for InputOp {
    type Layer = Input;
    const NAME: &'static str = "input";
    const ONNX_OPS: &'static [&'static str] = &[];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (0, 0)
    }

    fn infer(&self, _inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        if self.shape.dims().contains(&0) {
            return Err(format!("input shape [{}] has no values", self.shape));
        }
        Ok(self.shape)
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Source
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> Input {
        Input::new(self.shape)
    }

    fn import(_node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        None
    }
}

impl Kind for Input {
    type Spec = InputOp;

    fn spec(&self) -> InputOp {
        InputOp { shape: self.shape }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, _inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        Err("the input node is not computed: it is the value given to the run".into())
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("input", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        no_slice(self.clone(), cut, "input")
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Source
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        false
    }

    fn export(&self, _w: &mut dyn OpWriter) -> Result<(), String> {
        Err("the input is written as the graph input, not as an operator".into())
    }
}
