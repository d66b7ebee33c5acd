//! The registry of layer kinds: one line per kind generates the [`Layer`] and [`OpSpec`]
//! enums and every dispatch over them (so no code elsewhere matches on kinds).

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::ImportError;
use crate::kind::{
    Arity, ChannelCut, ChannelFlow, Counts, FuseFn, Imported, Kind, KindSpec, LrpView, OpImport,
    OpWriter, ParamInfo,
};
use crate::kinds;
use crate::shape::FeatureShape;
use burn::module::Module;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! registry {
    ($( $(#[$doc:meta])* $variant:ident($ty:ty) ),* $(,)?) => {
        /// The Burn module held by a graph node: one variant per registered layer kind, each
        /// holding Burn's own layer type where Burn has one.
        ///
        /// Everything Burn offers for modules (devices, optimizers, parameter visitors) works
        /// on it. Kind-specific behaviour is reached through the methods below, which dispatch
        /// to the kind's [`Kind`] implementation.
        #[derive(Module, Debug)]
        pub enum Layer {
            $( $(#[$doc])* $variant($ty), )*
        }

        /// The hyper-parameters of a node's layer, without weights: what
        /// [`GraphSpec`](crate::GraphSpec) stores and what the builder turns into layers.
        ///
        /// Serialised as a JSON object with the kind's name under `"op"` and the kind's spec
        /// fields beside it (`{"op": "conv2d", "in_channels": 3, ...}`).
        #[derive(Clone, Debug, PartialEq)]
        pub enum OpSpec {
            $( $(#[$doc])* $variant(<$ty as Kind>::Spec), )*
        }

        /// The names of every registered kind, in registration order.
        pub const KIND_NAMES: &[&str] = &[ $( <<$ty as Kind>::Spec as KindSpec>::NAME, )* ];

        $(
            impl From<$ty> for Layer {
                fn from(l: $ty) -> Self {
                    Self::$variant(l)
                }
            }

            impl From<<$ty as Kind>::Spec> for OpSpec {
                fn from(s: <$ty as Kind>::Spec) -> Self {
                    Self::$variant(s)
                }
            }
        )*

        impl Layer {
            /// The kind's name (`conv2d`, `linear`, ...).
            pub fn kind_name(&self) -> &'static str {
                match self { $( Self::$variant(_) => <<$ty as Kind>::Spec as KindSpec>::NAME, )* }
            }

            /// The hyper-parameters of this layer.
            pub fn spec(&self) -> OpSpec {
                match self { $( Self::$variant(l) => OpSpec::$variant(<$ty as Kind>::spec(l)), )* }
            }

            /// Makes shape-dependent settings explicit for these inputs (see
            /// [`Kind::normalize`]).
            pub fn normalize(&mut self, inputs: &[FeatureShape]) {
                match self { $( Self::$variant(l) => <$ty as Kind>::normalize(l, inputs), )* }
            }

            /// Runs the layer on its inputs (see [`Kind::forward`]).
            pub fn forward(&self, inputs: Vec<Activation>, training: bool) -> Result<Activation, String> {
                match self { $( Self::$variant(l) => <$ty as Kind>::forward(l, inputs, training), )* }
            }

            /// The layer's tensors by role (see [`Kind::params`]).
            pub fn params(&self) -> Vec<ParamInfo> {
                match self { $( Self::$variant(l) => <$ty as Kind>::params(l), )* }
            }

            /// Replaces the tensor of a role (see [`Kind::set_param`]).
            pub fn set_param(&mut self, role: &str, data: TensorData, device: &Device) -> Result<(), String> {
                match self { $( Self::$variant(l) => <$ty as Kind>::set_param(l, role, data, device), )* }
            }

            /// The layer with channels removed (see [`Kind::slice`]).
            pub fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
                match self { $( Self::$variant(l) => <$ty as Kind>::slice(l, cut), )* }
            }

            /// What relevance propagation needs (see [`Kind::lrp`]).
            pub fn lrp(&self) -> LrpView<'_> {
                match self { $( Self::$variant(l) => <$ty as Kind>::lrp(l), )* }
            }

            /// Whether the output is non-negative given non-negative inputs (see
            /// [`Kind::nonnegative`]).
            pub fn nonnegative(&self, inputs: &[bool]) -> bool {
                match self { $( Self::$variant(l) => <$ty as Kind>::nonnegative(l, inputs), )* }
            }

            /// Writes the layer as ONNX operators (see [`Kind::export`]).
            pub fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
                match self { $( Self::$variant(l) => <$ty as Kind>::export(l, w), )* }
            }
        }

        impl OpSpec {
            /// The kind's name (`conv2d`, `linear`, ...).
            pub fn kind_name(&self) -> &'static str {
                match self { $( Self::$variant(_) => <<$ty as Kind>::Spec as KindSpec>::NAME, )* }
            }

            /// How many inputs the kind takes: `(min, max)`.
            pub fn arity(&self) -> Arity {
                match self { $( Self::$variant(s) => s.arity(), )* }
            }

            fn infer_unchecked(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
                match self { $( Self::$variant(s) => s.infer(inputs), )* }
            }

            /// Parameters, state and MACs for these input and output shapes (see
            /// [`KindSpec::counts`]).
            pub fn counts(&self, inputs: &[FeatureShape], output: FeatureShape) -> Counts {
                match self { $( Self::$variant(s) => s.counts(inputs, output), )* }
            }

            /// How channels flow through the kind (see [`KindSpec::flow`]).
            pub fn flow(&self, inputs: &[FeatureShape], output: FeatureShape) -> ChannelFlow {
                match self { $( Self::$variant(s) => s.flow(inputs, output), )* }
            }

            /// The layer with seeded initial weights (the spec must have passed
            /// [`OpSpec::infer_shape`]).
            pub fn init(&self, init: &mut Initializer, device: &Device) -> Layer {
                match self { $( Self::$variant(s) => Layer::$variant(s.init(init, device)), )* }
            }

            fn to_json_value(&self) -> Result<serde_json::Value, serde_json::Error> {
                match self { $( Self::$variant(s) => serde_json::to_value(s), )* }
            }

            fn from_json_value(op: &str, v: serde_json::Value) -> Option<Result<Self, serde_json::Error>> {
                $(
                    if op == <<$ty as Kind>::Spec as KindSpec>::NAME {
                        return Some(serde_json::from_value(v).map(Self::$variant));
                    }
                )*
                None
            }
        }

        /// Offers an ONNX node to every kind that lists its op type, in registration order:
        /// the first conversion wins; when none converts it, the first kind's error (why it
        /// cannot be converted) is returned, and `None` when no kind takes the op at all.
        pub fn import_node(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
            let mut first_error: Option<ImportError> = None;
            $(
                if <<$ty as Kind>::Spec as KindSpec>::ONNX_OPS.contains(&node.op) {
                    match <<$ty as Kind>::Spec as KindSpec>::import(node) {
                        Some(Ok(imported)) => return Some(Ok(imported)),
                        Some(Err(e)) => {
                            first_error.get_or_insert(e);
                        }
                        None => {}
                    }
                }
            )*
            first_error.map(Err)
        }

        /// Every ONNX op type some kind imports, sorted.
        pub fn onnx_ops() -> Vec<&'static str> {
            let mut ops: Vec<&'static str> = Vec::new();
            $( ops.extend_from_slice(<<$ty as Kind>::Spec as KindSpec>::ONNX_OPS); )*
            ops.sort_unstable();
            ops.dedup();
            ops
        }

        /// Every kind's rewrites of neutral ONNX graphs, in registration order.
        pub fn fusions() -> Vec<FuseFn> {
            let mut out: Vec<FuseFn> = Vec::new();
            $( out.extend_from_slice(<<$ty as Kind>::Spec as KindSpec>::FUSIONS); )*
            out
        }
    };
}

registry! {
    /// The graph input.
    Input(kinds::input::Input),
    /// 2-D convolution (plain, grouped, depthwise).
    Conv2d(burn::nn::conv::Conv2d),
    /// Fully connected layer over the channel axis of a channels-last layout; Burn stores its
    /// weight as `[in, out]`.
    Linear(burn::nn::Linear),
    /// Batch normalisation.
    BatchNorm(burn::nn::BatchNorm),
    /// Rectified linear unit.
    Relu(burn::nn::Relu),
    /// 2-D max pooling.
    MaxPool2d(burn::nn::pool::MaxPool2d),
    /// 2-D average pooling.
    AvgPool2d(burn::nn::pool::AvgPool2d),
    /// Adaptive (and global) average pooling.
    AdaptiveAvgPool2d(burn::nn::pool::AdaptiveAvgPool2d),
    /// Flatten to vectors.
    Flatten(kinds::flatten::Flatten),
    /// Element-wise sum.
    Add(kinds::add::Add),
    /// Channel concatenation.
    Concat(kinds::concat::Concat),
    /// Dropout (training only).
    Dropout(burn::nn::Dropout),
    /// Identity.
    Identity(burn::nn::Identity),
    /// `min(max(x, 0), 6)`.
    Relu6(burn::nn::activation::Relu6),
    /// Clamp to `[min, max]`.
    Hardtanh(burn::nn::activation::Hardtanh),
    /// Logistic sigmoid.
    Sigmoid(burn::nn::Sigmoid),
    /// `max(0, min(1, alpha * x + beta))`.
    HardSigmoid(burn::nn::HardSigmoid),
    /// `x * relu6(x + 3) / 6`.
    HardSwish(burn::nn::activation::HardSwish),
    /// `x * sigmoid(x)`.
    Silu(burn::nn::activation::SiLU),
    /// Gaussian error linear unit.
    Gelu(burn::nn::Gelu),
    /// Hyperbolic tangent.
    Tanh(burn::nn::Tanh),
    /// Leaky ReLU.
    LeakyRelu(burn::nn::LeakyRelu),
    /// Parametric ReLU.
    PRelu(burn::nn::PRelu),
    /// Softmax over channels.
    Softmax(kinds::softmax::Softmax),
    /// Element-wise product of a map and a gate (squeeze-and-excitation).
    Mul(kinds::mul::Mul),
    /// Per-channel constant factors (layer scale).
    Scale(kinds::scale::Scale),
    /// Global max pooling.
    GlobalMaxPool(kinds::global_max_pool::GlobalMaxPool),
    /// Mean over positions, to vectors.
    Mean(kinds::mean::Mean),
    /// A contiguous range of channels.
    Slice(kinds::slice::Slice),
    /// ShuffleNet's channel shuffle.
    ChannelShuffle(kinds::channel_shuffle::ChannelShuffle),
    /// Channels in a given order.
    ChannelPermute(kinds::channel_permute::ChannelPermute),
    /// Channels-first to channels-last maps and back.
    Permute(kinds::permute::Permute),
    /// Layer normalisation over channels.
    LayerNorm(kinds::layer_norm::LayerNorm),
    /// Constant padding of maps.
    Pad(kinds::pad::Pad),
    /// Nearest-neighbour upsampling by integer factors.
    Upsample(kinds::upsample::Upsample),
    /// Transposed 2-D convolution.
    ConvTranspose2d(burn::nn::conv::ConvTranspose2d),
}

impl OpSpec {
    /// Checks the number of inputs, the hyper-parameters and the input shapes, and returns the
    /// output shape. The message says what does not fit; the caller adds the node name.
    pub fn infer_shape(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        let (lo, hi) = self.arity();
        if inputs.len() < lo || inputs.len() > hi {
            let name = self.kind_name();
            return Err(if lo == hi {
                format!("{name} takes {lo} input(s), got {}", inputs.len())
            } else if hi == usize::MAX {
                format!("{name} takes at least {lo} inputs, got {}", inputs.len())
            } else {
                format!("{name} takes {lo} to {hi} inputs, got {}", inputs.len())
            });
        }
        self.infer_unchecked(inputs)
    }

    /// Multiply-accumulates of this op for one sample (see [`OpSpec::counts`]).
    pub fn macs(&self, inputs: &[FeatureShape], output: FeatureShape) -> u64 {
        self.counts(inputs, output).macs
    }
}

impl Serialize for OpSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut v = self.to_json_value().map_err(S::Error::custom)?;
        let Some(obj) = v.as_object_mut() else {
            return Err(S::Error::custom(format!(
                "the spec of a {} layer is not a JSON object",
                self.kind_name()
            )));
        };
        let mut out = serde_json::Map::new();
        out.insert(
            "op".into(),
            serde_json::Value::String(self.kind_name().into()),
        );
        out.extend(std::mem::take(obj));
        serde_json::Value::Object(out).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for OpSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut v = serde_json::Value::deserialize(deserializer)?;
        let obj = v
            .as_object_mut()
            .ok_or_else(|| D::Error::custom("a node's op must be a JSON object"))?;
        let op = match obj.remove("op") {
            Some(serde_json::Value::String(s)) => s,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "`op` must be a string, got {other}"
                )));
            }
            None => return Err(D::Error::custom("a node has no `op`")),
        };
        match OpSpec::from_json_value(&op, v) {
            Some(r) => r.map_err(|e| D::Error::custom(format!("op `{op}`: {e}"))),
            None => Err(D::Error::custom(format!(
                "unknown op `{op}` (known: {})",
                KIND_NAMES.join(", ")
            ))),
        }
    }
}
