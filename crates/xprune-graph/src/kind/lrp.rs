//! What relevance propagation needs from a kind: the math only (modified forward passes and
//! transposed maps). Rules, composites and the propagation engine live in `xprune-lrp`.

use crate::activation::Activation;
use burn::tensor::Tensor;
use std::fmt;
use std::sync::Arc;

/// An element-wise tensor function for custom modifiers. It receives the tensor flattened to
/// one dimension and must return a tensor of the same length.
pub type ElementwiseFn = Arc<dyn Fn(Tensor<1>) -> Tensor<1> + Send + Sync>;

/// A named element-wise function, the custom case of [`ParamMod`] (and of the LRP crate's
/// input modifiers).
#[derive(Clone)]
pub struct CustomMod {
    name: String,
    f: ElementwiseFn,
}

impl CustomMod {
    /// A custom element-wise modifier; `name` appears in debug output.
    pub fn new(
        name: impl Into<String>,
        f: impl Fn(Tensor<1>) -> Tensor<1> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            f: Arc::new(f),
        }
    }

    /// The modifier's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Applies the function to a tensor of any rank.
    pub fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        let dims = t.dims();
        let n = dims.iter().product::<usize>();
        (self.f)(t.reshape([n])).reshape(dims)
    }
}

impl fmt::Debug for CustomMod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Custom({})", self.name)
    }
}

/// How a rule modifies a layer parameter (weight or bias) before a modified forward pass.
#[derive(Clone, Debug)]
pub enum ParamMod {
    /// The parameter as it is.
    Identity,
    /// The positive part `max(p, 0)`.
    Positive,
    /// The negative part `min(p, 0)`.
    Negative,
    /// Zero (e.g. a bias ignored by the rule).
    Zero,
    /// All ones (flat rule).
    Ones,
    /// The square `p^2` (w-square rule).
    Square,
    /// `p + gamma * max(p, 0)` (gamma rule).
    AddPositive(f32),
    /// `p + gamma * min(p, 0)` (gamma rule, negative side).
    AddNegative(f32),
    /// A custom element-wise function of the parameter.
    Custom(CustomMod),
}

impl ParamMod {
    /// Whether the modifier leaves the parameter unchanged.
    pub fn is_identity(&self) -> bool {
        match self {
            Self::Identity => true,
            Self::AddPositive(g) | Self::AddNegative(g) => *g == 0.0,
            _ => false,
        }
    }

    /// Whether the modified parameter is zero whatever the parameter.
    pub fn is_zero(&self) -> bool {
        matches!(self, Self::Zero)
    }

    /// Applies the modifier to a parameter tensor of any rank.
    pub fn apply<const D: usize>(&self, p: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Identity => p,
            Self::Positive => p.clamp_min(0.0),
            Self::Negative => p.clamp_max(0.0),
            Self::Zero => p.zeros_like(),
            Self::Ones => p.ones_like(),
            Self::Square => p.square(),
            Self::AddPositive(g) => p.clone() + p.clamp_min(0.0).mul_scalar(*g),
            Self::AddNegative(g) => p.clone() + p.clamp_max(0.0).mul_scalar(*g),
            Self::Custom(c) => c.apply(p),
        }
    }
}

/// A (modified) parameter tensor of the rank its kind uses.
#[derive(Clone, Debug)]
pub enum ParamTensor {
    /// A vector (biases, per-channel scales).
    R1(Tensor<1>),
    /// A matrix (linear weights).
    R2(Tensor<2>),
    /// A rank-4 tensor (convolution weights).
    R4(Tensor<4>),
}

impl ParamTensor {
    /// The vector, if this is one.
    pub fn r1(&self) -> Option<&Tensor<1>> {
        match self {
            Self::R1(t) => Some(t),
            _ => None,
        }
    }

    /// The matrix, if this is one.
    pub fn r2(&self) -> Option<&Tensor<2>> {
        match self {
            Self::R2(t) => Some(t),
            _ => None,
        }
    }

    /// The rank-4 tensor, if this is one.
    pub fn r4(&self) -> Option<&Tensor<4>> {
        match self {
            Self::R4(t) => Some(t),
            _ => None,
        }
    }
}

/// The modified weight and bias of a linear map, computed once per rule term by
/// [`LinearMap::modify`] and reused for every batch. `bias` is `None` when the layer has no
/// bias or the rule zeroes it.
#[derive(Clone, Debug, Default)]
pub struct Modified {
    /// The modified weight (`None` for parameter-free maps).
    pub weight: Option<ParamTensor>,
    /// The modified bias.
    pub bias: Option<ParamTensor>,
}

/// A layer that is linear in its input plus a bias, `y = f(x; w) + b`, seen through what LRP
/// needs: a forward pass with modified parameters and the transposed map.
///
/// `at` is the input at which the layer is evaluated; layers that are linear only once a
/// statistic of their input is held constant (layer norm's standard deviation) take that
/// statistic from `at`, so that a rule's modified inputs see the same map. Modified inputs
/// may have batch size 1 (constant inputs of the flat and z-box rules): the result then
/// broadcasts over the batch.
pub trait LinearMap {
    /// Whether the layer has a weight (parameter-free maps ignore weight modifiers).
    fn has_weight(&self) -> bool;

    /// Whether the layer has a bias.
    fn has_bias(&self) -> bool;

    /// The weight and bias after the modifiers.
    fn modify(&self, weight: &ParamMod, bias: &ParamMod) -> Modified;

    /// `f(x; w') + b'` (no bias when `p.bias` is `None`).
    fn forward(&self, x: &Activation, at: &Activation, p: &Modified) -> Activation;

    /// The bias `b'` alone, broadcastable against the output, or `None`.
    fn bias(&self, p: &Modified, at: &Activation) -> Option<Activation>;

    /// The transposed map with weight `w'` applied to `s` (output-shaped), giving a tensor of
    /// `at`'s shape.
    fn transpose(&self, s: Activation, at: &Activation, p: &Modified) -> Activation;
}

/// A layer that moves relevance by its own routine (no rule): rearrangements pass it back
/// through the exact adjoint of their index map, max pooling gives it to each window's winner,
/// an element-wise product gives it to the gated map.
pub trait Redistribute {
    /// The relevance of each input (`None`: the input receives none) given the relevance of
    /// the output.
    fn redistribute(
        &self,
        inputs: &[&Activation],
        output: &Activation,
        relevance: Activation,
    ) -> Result<Vec<Option<Activation>>, String>;
}

/// How relevance passes through the two products between activations of attention
/// (`softmax(Q K^T) V`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AttentionRule {
    /// AttnLRP (Achtibat et al. 2024): the uniform rule on both products (half of each term's
    /// relevance to either factor, epsilon-stabilised) and the softmax rule
    /// `R_in = x * (R_out - s * sum(R_out))` between them; relevance reaches queries, keys and
    /// values.
    #[default]
    Uniform,
    /// CP-LRP: the attention weights are held constant, so all relevance of `A V` goes to the
    /// values and none to queries and keys.
    ConstantWeights,
}

impl AttentionRule {
    /// The rule's name (`uniform`, `constant-weights`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Uniform => "uniform",
            Self::ConstantWeights => "constant-weights",
        }
    }
}

/// A kind that computes attention's relevance itself, by the rule the composite gives.
pub trait AttentionLrp {
    /// The relevance of each input (queries, keys, values; `None`: the input receives none)
    /// given the relevance of the output, with `rule` and the stabiliser `epsilon` of its
    /// divisions.
    fn relevance(
        &self,
        inputs: &[&Activation],
        relevance: Activation,
        rule: AttentionRule,
        epsilon: f32,
    ) -> Result<Vec<Option<Activation>>, String>;
}

/// Classes of linear kinds that composites give rules to (after Zennit's abstract layer
/// types: `Convolution` covers every convolution).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleClass {
    /// Convolutions (plain, grouped, depthwise, transposed).
    Convolution,
    /// Fully connected layers and matrix products with a weight.
    Dense,
    /// Per-channel affine maps: batch norm that was not folded, layer scale.
    Affine,
    /// Layer norm with its standard deviation held constant.
    Norm,
    /// Average pooling, adaptive and global average pooling, resizing, padding.
    Pool,
    /// Element-wise sums (residual connections).
    Sum,
}

impl RuleClass {
    /// Every class.
    pub const ALL: [RuleClass; 6] = [
        Self::Convolution,
        Self::Dense,
        Self::Affine,
        Self::Norm,
        Self::Pool,
        Self::Sum,
    ];

    /// The class's name (`convolution`, `dense`, `affine`, `norm`, `pool`, `sum`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Convolution => "convolution",
            Self::Dense => "dense",
            Self::Affine => "affine",
            Self::Norm => "norm",
            Self::Pool => "pool",
            Self::Sum => "sum",
        }
    }
}

impl fmt::Display for RuleClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What relevance propagation needs from one layer.
pub enum LrpView<'a> {
    /// The graph input: relevance stops here.
    Source,
    /// Relevance passes unchanged to input 0 (element-wise activations, dropout, identity,
    /// layout changes), as Zennit's composites do for activations.
    Pass,
    /// A linear map: every rule applies; composites choose the rule by class, kind and node.
    Linear {
        /// The map.
        map: Box<dyn LinearMap + 'a>,
        /// Its class.
        class: RuleClass,
    },
    /// An element-wise sum of the inputs: the composite's rule for [`RuleClass::Sum`]
    /// distributes relevance among them (Zennit's norm rule by default).
    Sum,
    /// A routine of the kind's own.
    Redistribute(&'a dyn Redistribute),
    /// Scaled dot-product attention: the composite chooses the [`AttentionRule`].
    Attention(&'a dyn AttentionLrp),
}

impl fmt::Debug for LrpView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Source => write!(f, "Source"),
            Self::Pass => write!(f, "Pass"),
            Self::Linear { class, .. } => write!(f, "Linear({class})"),
            Self::Sum => write!(f, "Sum"),
            Self::Redistribute(_) => write!(f, "Redistribute"),
            Self::Attention(_) => write!(f, "Attention"),
        }
    }
}
