//! The building blocks of rules: how a rule modifies a layer's input ([`InputMod`]) and its
//! parameters ([`ParamMod`]) before the modified forward pass, and box bounds ([`Bound`]).

use burn::tensor::{Device, Tensor, TensorData};
use std::fmt;
use std::sync::Arc;

/// An element-wise tensor function for custom modifiers. It receives the tensor flattened to
/// one dimension and must return a tensor of the same length.
pub type ElementwiseFn = Arc<dyn Fn(Tensor<1>) -> Tensor<1> + Send + Sync>;

/// A named element-wise function, the custom case of [`InputMod`] and [`ParamMod`].
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

    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
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

/// A lower or upper bound of the input values, for the z-box rule.
///
/// Bounds broadcast over the batch: a scalar, one value per channel (per feature for flat
/// inputs), or one value per element of a sample (`C*H*W` values in channel-major order).
#[derive(Clone, Debug, PartialEq)]
pub enum Bound {
    /// The same bound for every input value.
    Scalar(f32),
    /// One bound per channel (per feature for flat inputs).
    PerChannel(Vec<f32>),
    /// One bound per value of a sample, in channel-major (`C, H, W`) order.
    PerElement(Vec<f32>),
}

impl Bound {
    /// The bound as a tensor of the input's dimensions with batch size 1.
    ///
    /// Returns an error message when a per-channel or per-element bound has the wrong length.
    pub fn to_tensor<const D: usize>(
        &self,
        input_dims: [usize; D],
        device: &Device,
    ) -> Result<Tensor<D>, String> {
        let mut one = input_dims;
        one[0] = 1;
        let per_sample: usize = one.iter().product();
        match self {
            Self::Scalar(v) => Ok(Tensor::<D>::ones(one, device).mul_scalar(*v)),
            Self::PerChannel(values) => {
                let channels = if D > 1 { input_dims[1] } else { 1 };
                if values.len() != channels {
                    return Err(format!(
                        "a per-channel bound has {} values, the input has {channels} channels",
                        values.len()
                    ));
                }
                let mut dims = [1usize; D];
                if D > 1 {
                    dims[1] = channels;
                }
                let t = Tensor::<D>::from_data(TensorData::new(values.clone(), dims), device);
                Ok(t.expand(one))
            }
            Self::PerElement(values) => {
                if values.len() != per_sample {
                    return Err(format!(
                        "a per-element bound has {} values, one input sample has {per_sample}",
                        values.len()
                    ));
                }
                Ok(Tensor::<D>::from_data(
                    TensorData::new(values.clone(), one),
                    device,
                ))
            }
        }
    }

    /// The bound's values (one for a scalar).
    pub fn values(&self) -> Vec<f32> {
        match self {
            Self::Scalar(v) => vec![*v],
            Self::PerChannel(v) | Self::PerElement(v) => v.clone(),
        }
    }
}

impl From<f32> for Bound {
    fn from(v: f32) -> Self {
        Self::Scalar(v)
    }
}

/// How a rule term modifies the layer's input before the modified forward pass.
#[derive(Clone, Debug)]
pub enum InputMod {
    /// The input as it is.
    Identity,
    /// The positive part `max(x, 0)`.
    Positive,
    /// The negative part `min(x, 0)`.
    Negative,
    /// All ones (flat and w-square rules): the relevance does not depend on the input.
    Ones,
    /// A constant bound (z-box rule).
    Bound(Bound),
    /// A custom element-wise function of the input.
    Custom(CustomMod),
}

impl InputMod {
    /// Whether the modified input is the same for every sample (it does not read the input).
    pub fn is_constant(&self) -> bool {
        matches!(self, Self::Ones | Self::Bound(_))
    }

    /// Whether the modified input is zero wherever the input is non-negative.
    pub fn vanishes_on_nonnegative(&self) -> bool {
        matches!(self, Self::Negative)
    }

    /// Applies the modifier. Constant modifiers return a batch of one sample (it broadcasts).
    pub fn apply<const D: usize>(&self, x: &Tensor<D>) -> Result<Tensor<D>, String> {
        Ok(match self {
            Self::Identity => x.clone(),
            Self::Positive => x.clone().clamp_min(0.0),
            Self::Negative => x.clone().clamp_max(0.0),
            Self::Ones => {
                let mut one = x.dims();
                one[0] = 1;
                Tensor::<D>::ones(one, &x.device())
            }
            Self::Bound(b) => b.to_tensor(x.dims(), &x.device())?,
            Self::Custom(c) => c.apply(x.clone()),
        })
    }
}

/// How a rule term modifies a layer parameter (weight or bias) before the modified forward
/// pass.
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
