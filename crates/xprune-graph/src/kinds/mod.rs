//! One file per layer kind (see [`crate::kind`] for the traits each file implements); the
//! registration list at the end of this file declares each file's module and its variant of
//! [`Layer`] and [`OpSpec`].

/// Implements a parameter-free, attribute-free element-wise activation kind: its spec type
/// (no fields), shape inference (the input's shape), counts (none), channel flow
/// (element-wise), LRP (relevance passes), import of one ONNX op without attributes, and
/// export as that op unless an `export` function is given.
///
/// ```text
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
            const FUSIONS: &'static [$crate::kind::Fusion] = &[$($($fuse),*)?];

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

pub(crate) mod util;

// The registry: one line per layer kind, `module: Variant(LayerType)`, with its doc comment.
// Adding a kind is one new file `src/kinds/<module>.rs` and one line here.
crate::registry::registry! {
    /// The graph input.
    input: Input(input::Input),
    /// 2-D convolution (plain, grouped, depthwise).
    conv2d: Conv2d(burn::nn::conv::Conv2d),
    /// Fully connected layer over the channel axis of a channels-last layout; Burn stores its
    /// weight as `[in, out]`.
    linear: Linear(burn::nn::Linear),
    /// Batch normalisation.
    batch_norm: BatchNorm(burn::nn::BatchNorm),
    /// Rectified linear unit.
    relu: Relu(burn::nn::Relu),
    /// 2-D max pooling.
    max_pool2d: MaxPool2d(burn::nn::pool::MaxPool2d),
    /// 2-D average pooling.
    avg_pool2d: AvgPool2d(burn::nn::pool::AvgPool2d),
    /// Adaptive (and global) average pooling.
    adaptive_avg_pool2d: AdaptiveAvgPool2d(burn::nn::pool::AdaptiveAvgPool2d),
    /// Flatten to vectors.
    flatten: Flatten(flatten::Flatten),
    /// Element-wise sum.
    add: Add(add::Add),
    /// Channel concatenation.
    concat: Concat(concat::Concat),
    /// Dropout (training only).
    dropout: Dropout(burn::nn::Dropout),
    /// Identity.
    identity: Identity(burn::nn::Identity),
    /// `min(max(x, 0), 6)`.
    relu6: Relu6(burn::nn::activation::Relu6),
    /// Clamp to `[min, max]`.
    hardtanh: Hardtanh(burn::nn::activation::Hardtanh),
    /// Logistic sigmoid.
    sigmoid: Sigmoid(burn::nn::Sigmoid),
    /// `max(0, min(1, alpha * x + beta))`.
    hard_sigmoid: HardSigmoid(burn::nn::HardSigmoid),
    /// `x * relu6(x + 3) / 6`.
    hard_swish: HardSwish(burn::nn::activation::HardSwish),
    /// `x * sigmoid(x)`.
    silu: Silu(burn::nn::activation::SiLU),
    /// Gaussian error linear unit.
    gelu: Gelu(burn::nn::Gelu),
    /// Hyperbolic tangent.
    tanh: Tanh(burn::nn::Tanh),
    /// Leaky ReLU.
    leaky_relu: LeakyRelu(burn::nn::LeakyRelu),
    /// Exponential linear unit.
    elu: Elu(burn::nn::activation::Elu),
    /// Parametric ReLU.
    prelu: PRelu(burn::nn::PRelu),
    /// Softmax over channels.
    softmax: Softmax(softmax::Softmax),
    /// Element-wise product of a map and a gate (squeeze-and-excitation).
    mul: Mul(mul::Mul),
    /// Per-channel constant factors (layer scale).
    scale: Scale(scale::Scale),
    /// Global max pooling.
    global_max_pool: GlobalMaxPool(global_max_pool::GlobalMaxPool),
    /// Mean over positions, to vectors.
    mean: Mean(mean::Mean),
    /// A contiguous range of channels.
    slice: Slice(slice::Slice),
    /// ShuffleNet's channel shuffle.
    channel_shuffle: ChannelShuffle(channel_shuffle::ChannelShuffle),
    /// Channels in a given order.
    channel_permute: ChannelPermute(channel_permute::ChannelPermute),
    /// Channels-first to channels-last maps and back.
    permute: Permute(permute::Permute),
    /// Layer normalisation over channels.
    layer_norm: LayerNorm(layer_norm::LayerNorm),
    /// Constant padding of maps.
    pad: Pad(pad::Pad),
    /// Nearest-neighbour upsampling by integer factors.
    upsample: Upsample(upsample::Upsample),
    /// Transposed 2-D convolution.
    conv_transpose2d: ConvTranspose2d(burn::nn::conv::ConvTranspose2d),
    /// Multi-head scaled dot-product attention of queries, keys and values.
    attention: Attention(attention::Attention),
    /// A feature map as a token sequence (one token per position).
    tokens: Tokens(tokens::Tokens),
    /// A learned class token before a token sequence.
    class_token: ClassToken(class_token::ClassToken),
    /// A learned position embedding added to a token sequence.
    position_embedding: PositionEmbedding(position_embedding::PositionEmbedding),
    /// One token of a sequence as a vector.
    select_token: SelectToken(select_token::SelectToken),
}
