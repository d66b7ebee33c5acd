//! One file per layer kind (see [`crate::kind`] for the traits each file implements and
//! `src/registry.rs` for the list).

/// Implements a parameter-free, attribute-free element-wise activation kind: its spec type
/// (no fields), shape inference (the input's shape), counts (none), channel flow
/// (element-wise), LRP (relevance passes), import of one ONNX op without attributes, and
/// export as that op unless an `export` function is given.
///
/// ```ignore
/// activation_kind! {
///     /// Rectified linear unit.
///     ReluOp for burn::nn::Relu, name "relu", onnx "Relu",
///     forward |t| burn::tensor::activation::relu(t),
///     nonnegative |_inputs| true,
///     new burn::nn::Relu
/// }
/// ```
macro_rules! activation_kind {
    (
        $(#[$doc:meta])*
        $Spec:ident for $Layer:ty, name $name:literal, onnx $onnx:literal,
        forward |$t:ident| $fwd:expr,
        nonnegative |$nn:ident| $nonneg:expr,
        new $ctor:expr
        $(, fusions [$($fuse:path),* $(,)?])?
        $(, import |$in:ident| $import:expr)?
        $(, export |$es:ident, $ew:ident| $export:expr)?
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct $Spec {}

        impl $crate::kind::KindSpec for $Spec {
            type Layer = $Layer;
            const NAME: &'static str = $name;
            const ONNX_OPS: &'static [&'static str] = &[$onnx];
            const FUSIONS: &'static [$crate::kind::FuseFn] = &[$($($fuse),*)?];

            fn arity(&self) -> $crate::kind::Arity {
                (1, 1)
            }

            fn infer(&self, inputs: &[$crate::FeatureShape]) -> Result<$crate::FeatureShape, String> {
                Ok(inputs[0])
            }

            fn counts(&self, _inputs: &[$crate::FeatureShape], _output: $crate::FeatureShape) -> $crate::kind::Counts {
                $crate::kind::Counts::ZERO
            }

            fn flow(&self, _inputs: &[$crate::FeatureShape], _output: $crate::FeatureShape) -> $crate::kind::ChannelFlow {
                $crate::kind::ChannelFlow::Elementwise { unit: 1 }
            }

            fn init(&self, _init: &mut $crate::Initializer, _device: &burn::tensor::Device) -> $Layer {
                $ctor
            }

            fn import(node: &$crate::kind::OpImport<'_>) -> Option<Result<$crate::kind::Imported, $crate::kind::ImportError>> {
                activation_kind!(@import node, $ctor $(, |$in| $import)?)
            }
        }

        impl $crate::kind::Kind for $Layer {
            type Spec = $Spec;

            fn spec(&self) -> $Spec {
                $Spec {}
            }

            fn normalize(&mut self, _inputs: &[$crate::FeatureShape]) {}

            fn forward(&self, inputs: Vec<$crate::Activation>, _training: bool) -> Result<$crate::Activation, String> {
                let x = $crate::kinds::util::one(inputs, $name)?;
                Ok($crate::map_activation!(x, $t => $fwd))
            }

            fn params(&self) -> Vec<$crate::kind::ParamInfo> {
                Vec::new()
            }

            fn set_param(&mut self, role: &str, _data: burn::tensor::TensorData, _device: &burn::tensor::Device) -> Result<(), String> {
                Err($crate::kind::param::unknown_role($name, role))
            }

            fn slice(&self, cut: &$crate::kind::ChannelCut<'_>) -> Result<$crate::Layer, String> {
                $crate::kinds::util::pass_slice(self.clone(), cut)
            }

            fn lrp(&self) -> $crate::kind::LrpView<'_> {
                $crate::kind::LrpView::Pass
            }

            fn nonnegative(&self, $nn: &[bool]) -> bool {
                $nonneg
            }

            fn export(&self, w: &mut dyn $crate::kind::OpWriter) -> Result<(), String> {
                activation_kind!(@export self, w, $onnx $(, |$es, $ew| $export)?)
            }
        }
    };
    (@import $node:ident, $ctor:expr) => {
        Some((|| -> Result<$crate::kind::Imported, $crate::kind::ImportError> {
            $node.check_attrs(&[])?;
            let (x, _) = $node.act(0, "X")?;
            Ok($crate::kind::Imported::Node {
                layer: $crate::Layer::from($ctor),
                inputs: vec![x],
            })
        })())
    };
    (@import $node:ident, $ctor:expr, |$in:ident| $import:expr) => {{
        let $in = $node;
        $import
    }};
    (@export $s:ident, $w:ident, $onnx:literal) => {{
        let _ = $s;
        let x = $w.input(0);
        $w.op($onnx, vec![x], vec![]);
        Ok(())
    }};
    (@export $s:ident, $w:ident, $onnx:literal, |$es:ident, $ew:ident| $export:expr) => {{
        let $es = $s;
        let $ew = $w;
        $export
    }};
}

pub mod adaptive_avg_pool2d;
pub mod add;
pub mod avg_pool2d;
pub mod batch_norm;
pub mod channel_permute;
pub mod channel_shuffle;
pub mod concat;
pub mod conv2d;
pub mod conv_transpose2d;
pub mod dropout;
pub mod flatten;
pub mod gelu;
pub mod global_max_pool;
pub mod hard_sigmoid;
pub mod hard_swish;
pub mod hardtanh;
pub mod identity;
pub mod input;
pub mod layer_norm;
pub mod leaky_relu;
pub mod linear;
pub mod max_pool2d;
pub mod mean;
pub mod mul;
pub mod pad;
pub mod permute;
pub mod prelu;
pub mod relu;
pub mod relu6;
pub mod scale;
pub mod sigmoid;
pub mod silu;
pub mod slice;
pub mod softmax;
pub mod tanh;
pub mod upsample;

pub(crate) mod util;
