//! Layer kinds: everything xprune knows about one kind of layer, in one place.
//!
//! A kind is two trait implementations in one file under `src/kinds/`:
//!
//! - [`KindSpec`] on its hyper-parameter type (serialisable, no weights): its name, how many
//!   inputs it takes, shape inference, parameter and multiply-accumulate counts, how channels
//!   flow through it ([`ChannelFlow`], for coupling and pruning), how it is built with seeded
//!   weights, and how it is read from ONNX ([`KindSpec::import`], [`KindSpec::FUSIONS`]);
//! - [`Kind`] on its Burn module (usually one of Burn's own layers): its forward pass, its
//!   tensors by role, channel slicing for surgery, its view for relevance propagation
//!   ([`LrpView`]), the sign of its output, and how it is written to ONNX
//!   ([`Kind::export`]).
//!
//! and one registration line in `src/kinds/mod.rs`, which generates the [`Layer`] and
//! [`OpSpec`](crate::OpSpec) enums and their dispatch. Every concern is a required method, so a
//! kind that forgets one does not compile. The other crates use kinds only through these
//! traits: the LRP crate reads [`LrpView`]s, the surgery crate [`ChannelFlow`]s and
//! [`Kind::slice`], the ONNX module the neutral operator types of [`onnx`].
//!
//! See `docs/architecture.md` ("Adding a layer kind") for a worked example.

pub mod flow;
pub mod lrp;
pub mod onnx;
pub mod param;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::tensor::{Device, TensorData};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;

pub use flow::{ChannelCut, ChannelFlow, Pin};
pub use lrp::{
    AttentionLrp, AttentionRule, CustomMod, ElementwiseFn, LinearMap, LrpView, Modified, ParamMod,
    ParamTensor, Redistribute, RuleClass,
};
pub use onnx::{
    Attr, ConstData, ConstTensor, Dim, FuseFn, Fusion, ImportError, Imported, OpAttrs, OpGraph,
    OpImport, OpNode, OpValue, OpWriter, PERMUTED_SHAPE, RESHAPED_SHAPE,
};
pub use param::ParamInfo;

/// Trainable parameters, non-trainable state and multiply-accumulates of one node for one
/// sample.
///
/// The convention (shared by [`Graph::macs`](crate::Graph::macs), the surgery crate's counts
/// and the selection's budget estimates, which all call [`KindSpec::counts`]): parameters are
/// the trainable values (as `sum(p.numel() for p in model.parameters())` in PyTorch); buffers
/// are statistics such as batch-norm running means and variances; MACs are the
/// multiply-accumulates of convolutions and matrix products (`output values x inputs per
/// output`). Bias additions, normalisation, activations, pooling, element-wise products, adds
/// and concatenations are not counted, following the pruning literature (ResNet-56 on
/// CIFAR-10: 125 M MACs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Trainable parameters.
    pub params: u64,
    /// Non-trainable state values.
    pub buffers: u64,
    /// Multiply-accumulates for one sample.
    pub macs: u64,
}

impl Counts {
    /// No parameters, no state, no MACs.
    pub const ZERO: Counts = Counts {
        params: 0,
        buffers: 0,
        macs: 0,
    };
}

impl std::ops::Add for Counts {
    type Output = Counts;
    fn add(self, o: Counts) -> Counts {
        Counts {
            params: self.params + o.params,
            buffers: self.buffers + o.buffers,
            macs: self.macs + o.macs,
        }
    }
}

/// How many inputs a kind takes: `(min, max)`.
pub type Arity = (usize, usize);

/// The hyper-parameters of a layer kind (no weights) and everything that can be known from
/// them alone. Implemented by one serialisable type per kind.
///
/// Shapes passed to [`KindSpec::counts`] and [`KindSpec::flow`] may be those of a pruned graph
/// (the same node with fewer channels): counts must follow from the shapes and the spec (for
/// example a depthwise convolution's groups follow its channels).
pub trait KindSpec: Clone + fmt::Debug + PartialEq + Serialize + DeserializeOwned {
    /// The Burn module this spec builds.
    type Layer: Kind<Spec = Self>;

    /// The kind's short name (`conv2d`, `linear`, ...): unique, used in listings, structure
    /// files, composites and error messages.
    const NAME: &'static str;

    /// The ONNX op types whose import this kind handles ([`KindSpec::import`] is asked for
    /// every node of these types; several kinds may share an op type).
    const ONNX_OPS: &'static [&'static str];

    /// Rewrites of the neutral ONNX graph that this kind needs before import (multi-node
    /// patterns such as `x * sigmoid(x)`); `&[]` for none.
    const FUSIONS: &'static [Fusion];

    /// How many inputs the kind takes.
    fn arity(&self) -> Arity;

    /// Checks the hyper-parameters and the input shapes and returns the output shape. The
    /// message says what does not fit; the caller adds the node name.
    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String>;

    /// Parameters, state and MACs for these input and output shapes.
    fn counts(&self, inputs: &[FeatureShape], output: FeatureShape) -> Counts;

    /// How channels flow from the inputs to the output.
    fn flow(&self, inputs: &[FeatureShape], output: FeatureShape) -> ChannelFlow;

    /// The layer with seeded initial weights on `device` (called after
    /// [`KindSpec::infer`] succeeded).
    fn init(&self, init: &mut Initializer, device: &Device) -> Self::Layer;

    /// Converts an ONNX node of one of [`KindSpec::ONNX_OPS`]: `None` when the node is not
    /// this kind's case (another kind may take it), otherwise the converted node or why it
    /// cannot be converted.
    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>>;
}

/// A layer of a kind: a Burn module with everything that needs its weights.
pub trait Kind: Clone + fmt::Debug {
    /// The kind's hyper-parameters.
    type Spec: KindSpec<Layer = Self>;

    /// The hyper-parameters of this layer (after [`Kind::normalize`]).
    fn spec(&self) -> Self::Spec;

    /// Makes shape-dependent settings explicit for these inputs (for example `Same` padding);
    /// called once when a graph is assembled. Most kinds have nothing to do.
    fn normalize(&mut self, inputs: &[FeatureShape]);

    /// Runs the layer. Shapes were checked when the graph was built. In `training` mode batch
    /// norm uses batch statistics and dropout is active.
    fn forward(&self, inputs: Vec<Activation>, training: bool) -> Result<Activation, String>;

    /// The layer's tensors by role (`weight`, `bias`, `gamma`, ...), as host data.
    fn params(&self) -> Vec<ParamInfo>;

    /// Replaces the tensor of a role (the caller checked its shape against
    /// [`Kind::params`]).
    fn set_param(&mut self, role: &str, data: TensorData, device: &Device) -> Result<(), String>;

    /// The layer with the channels of `cut` removed (a new layer; `self` is unchanged). A
    /// kind may return a layer of another kind (a channel shuffle that loses channels
    /// unevenly becomes a general channel permutation).
    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String>;

    /// What relevance propagation needs from this layer.
    fn lrp(&self) -> LrpView<'_>;

    /// Whether the output has no negative values when the inputs flagged `true` have none
    /// (ReLU outputs, pooling of non-negative maps, ...). Lets relevance propagation skip
    /// terms that vanish.
    fn nonnegative(&self, inputs: &[bool]) -> bool;

    /// Writes the layer as ONNX operators through the neutral writer.
    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String>;
}
