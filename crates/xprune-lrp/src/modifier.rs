//! The building blocks of rules: how a rule modifies a layer's input ([`InputMod`]) and its
//! parameters ([`ParamMod`], defined with the layer math in `xprune-graph`) before the
//! modified forward pass, and box bounds ([`Bound`]).

use burn::tensor::{Device, Tensor, TensorData};
use xprune_graph::{Activation, map_activation};

pub use xprune_graph::kind::{CustomMod, ElementwiseFn, ParamMod};

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

    /// The bound as a batch-1 activation of the input's layout and dimensions (per-channel
    /// bounds run along the layout's channel axis).
    pub fn to_activation(&self, input: &Activation) -> Result<Activation, String> {
        let mut one = input.dims();
        one[0] = 1;
        let device = input.device();
        let per_sample: usize = one.iter().product();
        let layout = input.layout();
        let values = match self {
            Self::Scalar(v) => vec![*v; per_sample],
            Self::PerChannel(values) => {
                let axis = layout.channel_axis();
                let channels = one[axis];
                if values.len() != channels {
                    return Err(format!(
                        "a per-channel bound has {} values, the input has {channels} channels",
                        values.len()
                    ));
                }
                let inner: usize = one[axis + 1..].iter().product();
                (0..per_sample)
                    .map(|i| values[(i / inner) % channels])
                    .collect()
            }
            Self::PerElement(values) => {
                if values.len() != per_sample {
                    return Err(format!(
                        "a per-element bound has {} values, one input sample has {per_sample}",
                        values.len()
                    ));
                }
                values.clone()
            }
        };
        let shape = input.feature_shape();
        Activation::from_vec_in(values, 1, shape, &device)
            .ok_or_else(|| "the bound does not fit the input".to_string())
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
    pub fn apply(&self, x: &Activation) -> Result<Activation, String> {
        Ok(match self {
            Self::Identity => x.clone(),
            Self::Positive => map_activation!(x.clone(), t => t.clamp_min(0.0)),
            Self::Negative => map_activation!(x.clone(), t => t.clamp_max(0.0)),
            Self::Ones => map_activation!(x.clone(), t => t.narrow(0, 0, 1).ones_like()),
            Self::Bound(b) => b.to_activation(x)?,
            Self::Custom(c) => map_activation!(x.clone(), t => c.apply(t)),
        })
    }
}
