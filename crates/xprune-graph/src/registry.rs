//! The registry of layer kinds: one line per kind generates the [`Layer`] and [`OpSpec`]
//! enums and every dispatch over them (so no code elsewhere matches on kinds).

use crate::shape::FeatureShape;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::kinds::{KIND_NAMES, Layer, OpSpec, fusions, import_node, onnx_ops};

/// Declares every kind's module and generates [`Layer`], [`OpSpec`] and their dispatch from
/// one line per kind: `module: Variant(LayerType),` (used in `src/kinds/mod.rs`).
macro_rules! registry {
    ($( $(#[$doc:meta])* $module:ident: $variant:ident($ty:ty) ),* $(,)?) => {
        $( pub mod $module; )*

        /// The Burn module held by a graph node: one variant per registered layer kind, each
        /// holding Burn's own layer type where Burn has one.
        ///
        /// Everything Burn offers for modules (devices, optimizers, parameter visitors) works
        /// on it. Kind-specific behaviour is reached through the methods below, which dispatch
        /// to the kind's [`crate::kind::Kind`] implementation.
        #[derive(burn::module::Module, Debug)]
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
            $( $(#[$doc])* $variant(<$ty as $crate::kind::Kind>::Spec), )*
        }

        /// The names of every registered kind, in registration order.
        pub const KIND_NAMES: &[&str] = &[ $( <<$ty as $crate::kind::Kind>::Spec as $crate::kind::KindSpec>::NAME, )* ];

        $(
            impl From<$ty> for Layer {
                fn from(l: $ty) -> Self {
                    Self::$variant(l)
                }
            }

            impl From<<$ty as $crate::kind::Kind>::Spec> for OpSpec {
                fn from(s: <$ty as $crate::kind::Kind>::Spec) -> Self {
                    Self::$variant(s)
                }
            }
        )*

        impl Layer {
            /// The kind's name (`conv2d`, `linear`, ...).
            pub fn kind_name(&self) -> &'static str {
                match self { $( Self::$variant(_) => <<$ty as $crate::kind::Kind>::Spec as $crate::kind::KindSpec>::NAME, )* }
            }

            /// The hyper-parameters of this layer.
            pub fn spec(&self) -> OpSpec {
                match self { $( Self::$variant(l) => OpSpec::$variant(<$ty as $crate::kind::Kind>::spec(l)), )* }
            }

            /// Makes shape-dependent settings explicit for these inputs (see
            /// [`crate::kind::Kind::normalize`]).
            pub fn normalize(&mut self, inputs: &[$crate::FeatureShape]) {
                match self { $( Self::$variant(l) => <$ty as $crate::kind::Kind>::normalize(l, inputs), )* }
            }

            /// Runs the layer on its inputs (see [`crate::kind::Kind::forward`]).
            pub fn forward(&self, inputs: Vec<$crate::Activation>, training: bool) -> Result<$crate::Activation, String> {
                match self { $( Self::$variant(l) => <$ty as $crate::kind::Kind>::forward(l, inputs, training), )* }
            }

            /// The layer's tensors by role (see [`crate::kind::Kind::params`]).
            pub fn params(&self) -> Vec<$crate::kind::ParamInfo> {
                match self { $( Self::$variant(l) => <$ty as $crate::kind::Kind>::params(l), )* }
            }

            /// Replaces the tensor of a role (see [`crate::kind::Kind::set_param`]).
            pub fn set_param(&mut self, role: &str, data: burn::tensor::TensorData, device: &burn::tensor::Device) -> Result<(), String> {
                match self { $( Self::$variant(l) => <$ty as $crate::kind::Kind>::set_param(l, role, data, device), )* }
            }

            /// The layer with channels removed (see [`crate::kind::Kind::slice`]).
            pub fn slice(&self, cut: &$crate::kind::ChannelCut<'_>) -> Result<Layer, String> {
                match self { $( Self::$variant(l) => <$ty as $crate::kind::Kind>::slice(l, cut), )* }
            }

            /// What relevance propagation needs (see [`crate::kind::Kind::lrp`]).
            pub fn lrp(&self) -> $crate::kind::LrpView<'_> {
                match self { $( Self::$variant(l) => <$ty as $crate::kind::Kind>::lrp(l), )* }
            }

            /// Whether the output is non-negative given non-negative inputs (see
            /// [`crate::kind::Kind::nonnegative`]).
            pub fn nonnegative(&self, inputs: &[bool]) -> bool {
                match self { $( Self::$variant(l) => <$ty as $crate::kind::Kind>::nonnegative(l, inputs), )* }
            }

            /// Writes the layer as ONNX operators (see [`crate::kind::Kind::export`]).
            pub fn export(&self, w: &mut dyn $crate::kind::OpWriter) -> Result<(), String> {
                match self { $( Self::$variant(l) => <$ty as $crate::kind::Kind>::export(l, w), )* }
            }
        }

        impl OpSpec {
            /// The kind's name (`conv2d`, `linear`, ...).
            pub fn kind_name(&self) -> &'static str {
                match self { $( Self::$variant(_) => <<$ty as $crate::kind::Kind>::Spec as $crate::kind::KindSpec>::NAME, )* }
            }

            /// How many inputs the kind takes: `(min, max)`.
            pub fn arity(&self) -> $crate::kind::Arity {
                match self { $( Self::$variant(s) => <<$ty as $crate::kind::Kind>::Spec as $crate::kind::KindSpec>::arity(s), )* }
            }

            pub(crate) fn infer_unchecked(&self, inputs: &[$crate::FeatureShape]) -> Result<$crate::FeatureShape, String> {
                match self { $( Self::$variant(s) => <<$ty as $crate::kind::Kind>::Spec as $crate::kind::KindSpec>::infer(s, inputs), )* }
            }

            /// Parameters, state and MACs for these input and output shapes (see
            /// [`crate::kind::KindSpec::counts`]).
            pub fn counts(&self, inputs: &[$crate::FeatureShape], output: $crate::FeatureShape) -> $crate::kind::Counts {
                match self { $( Self::$variant(s) => <<$ty as $crate::kind::Kind>::Spec as $crate::kind::KindSpec>::counts(s, inputs, output), )* }
            }

            /// How channels flow through the kind (see [`crate::kind::KindSpec::flow`]).
            pub fn flow(&self, inputs: &[$crate::FeatureShape], output: $crate::FeatureShape) -> $crate::kind::ChannelFlow {
                match self { $( Self::$variant(s) => <<$ty as $crate::kind::Kind>::Spec as $crate::kind::KindSpec>::flow(s, inputs, output), )* }
            }

            /// The layer with seeded initial weights (the spec must have passed
            /// [`OpSpec::infer_shape`]).
            pub fn init(&self, init: &mut $crate::Initializer, device: &burn::tensor::Device) -> Layer {
                match self { $( Self::$variant(s) => Layer::$variant(<<$ty as $crate::kind::Kind>::Spec as $crate::kind::KindSpec>::init(s, init, device)), )* }
            }

            pub(crate) fn to_json_value(&self) -> Result<serde_json::Value, serde_json::Error> {
                match self { $( Self::$variant(s) => serde_json::to_value(s), )* }
            }

            pub(crate) fn from_json_value(op: &str, v: serde_json::Value) -> Option<Result<Self, serde_json::Error>> {
                $(
                    if op == <<$ty as $crate::kind::Kind>::Spec as $crate::kind::KindSpec>::NAME {
                        return Some(serde_json::from_value(v).map(Self::$variant));
                    }
                )*
                None
            }
        }

        /// Offers an ONNX node to every kind that lists its op type, in registration order:
        /// the first conversion wins; when none converts it, the first kind's error (why it
        /// cannot be converted) is returned, and `None` when no kind takes the op at all.
        pub fn import_node(node: &$crate::kind::OpImport<'_>) -> Option<Result<$crate::kind::Imported, $crate::kind::ImportError>> {
            let mut first_error: Option<$crate::kind::ImportError> = None;
            $(
                if <<$ty as $crate::kind::Kind>::Spec as $crate::kind::KindSpec>::ONNX_OPS.contains(&node.op) {
                    match <<$ty as $crate::kind::Kind>::Spec as $crate::kind::KindSpec>::import(node) {
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
            $( ops.extend_from_slice(<<$ty as $crate::kind::Kind>::Spec as $crate::kind::KindSpec>::ONNX_OPS); )*
            ops.sort_unstable();
            ops.dedup();
            ops
        }

        /// Every kind's rewrites of neutral ONNX graphs, in registration order.
        pub fn fusions() -> Vec<$crate::kind::Fusion> {
            let mut out: Vec<$crate::kind::Fusion> = Vec::new();
            $( out.extend_from_slice(<<$ty as $crate::kind::Kind>::Spec as $crate::kind::KindSpec>::FUSIONS); )*
            out
        }
    };
}
pub(crate) use registry;

impl OpSpec {
    /// Checks the number of inputs, the hyper-parameters and the input shapes, and returns the
    /// output shape, which must pass [`FeatureShape::check_size`]. The message says what does
    /// not fit; the caller adds the node name.
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
        let out = self.infer_unchecked(inputs)?;
        out.check_size()?;
        Ok(out)
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
