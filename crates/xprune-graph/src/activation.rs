//! [`Activation`]: the value flowing along a graph edge, a batch of flat vectors or of maps.

use crate::shape::FeatureShape;
use burn::tensor::{Device, Tensor, TensorData};

/// A batch of values at one node: `[batch, features]` or `[batch, channels, height, width]`.
///
/// Tensors are reference counted in Burn, so cloning an activation is cheap.
#[derive(Clone, Debug)]
pub enum Activation {
    /// A batch of flat feature vectors, `[batch, features]`.
    Flat(Tensor<2>),
    /// A batch of feature maps, `[batch, channels, height, width]`.
    Spatial(Tensor<4>),
}

impl From<Tensor<2>> for Activation {
    fn from(t: Tensor<2>) -> Self {
        Self::Flat(t)
    }
}

impl From<Tensor<4>> for Activation {
    fn from(t: Tensor<4>) -> Self {
        Self::Spatial(t)
    }
}

impl Activation {
    /// Builds an activation from host data with dimensions `dims` (batch first, rank 2 or 4).
    ///
    /// Returns `None` for any other rank or when the data length does not match.
    pub fn from_vec(values: Vec<f32>, dims: &[usize], device: &Device) -> Option<Self> {
        if dims.iter().product::<usize>() != values.len() {
            return None;
        }
        match dims {
            [b, f] => Some(Self::Flat(Tensor::from_data(
                TensorData::new(values, [*b, *f]),
                device,
            ))),
            [b, c, h, w] => Some(Self::Spatial(Tensor::from_data(
                TensorData::new(values, [*b, *c, *h, *w]),
                device,
            ))),
            _ => None,
        }
    }

    /// Dimensions, batch first.
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Self::Flat(t) => t.dims().to_vec(),
            Self::Spatial(t) => t.dims().to_vec(),
        }
    }

    /// Batch size.
    pub fn batch(&self) -> usize {
        self.dims()[0]
    }

    /// Per-sample shape.
    pub fn feature_shape(&self) -> FeatureShape {
        match self {
            Self::Flat(t) => FeatureShape::Flat(t.dims()[1]),
            Self::Spatial(t) => {
                let [_, c, h, w] = t.dims();
                FeatureShape::Spatial([c, h, w])
            }
        }
    }

    /// Number of channels (features for flat activations).
    pub fn channels(&self) -> usize {
        self.dims()[1]
    }

    /// The device holding the values.
    pub fn device(&self) -> Device {
        match self {
            Self::Flat(t) => t.device(),
            Self::Spatial(t) => t.device(),
        }
    }

    /// The flat tensor, or `None` for a spatial activation.
    pub fn as_flat(&self) -> Option<&Tensor<2>> {
        match self {
            Self::Flat(t) => Some(t),
            Self::Spatial(_) => None,
        }
    }

    /// The spatial tensor, or `None` for a flat activation.
    pub fn as_spatial(&self) -> Option<&Tensor<4>> {
        match self {
            Self::Spatial(t) => Some(t),
            Self::Flat(_) => None,
        }
    }

    /// The values as `[batch, numel]`, flattening feature maps in channel-major order.
    pub fn flatten(self) -> Tensor<2> {
        match self {
            Self::Flat(t) => t,
            Self::Spatial(t) => {
                let [b, c, h, w] = t.dims();
                t.reshape([b, c * h * w])
            }
        }
    }

    /// Reshapes `[batch, numel]` values into this activation's layout.
    pub fn unflatten_like(&self, values: Tensor<2>) -> Self {
        match self {
            Self::Flat(_) => Self::Flat(values),
            Self::Spatial(t) => Self::Spatial(values.reshape(t.dims())),
        }
    }

    /// Applies `f` to the underlying tensor, whatever its rank.
    pub fn map(
        self,
        f2: impl FnOnce(Tensor<2>) -> Tensor<2>,
        f4: impl FnOnce(Tensor<4>) -> Tensor<4>,
    ) -> Self {
        match self {
            Self::Flat(t) => Self::Flat(f2(t)),
            Self::Spatial(t) => Self::Spatial(f4(t)),
        }
    }

    /// Multiplies every channel by a factor: `factors` is `[1, channels]` (the same for every
    /// sample) or `[batch, channels]` (one row per sample).
    pub fn scale_channels(self, factors: Tensor<2>) -> Self {
        match self {
            Self::Flat(t) => Self::Flat(t * factors),
            Self::Spatial(t) => {
                let [b, c] = factors.dims();
                Self::Spatial(t * factors.reshape([b, c, 1, 1]))
            }
        }
    }

    /// Sums the values of each channel over spatial positions: `[batch, channels]`.
    pub fn channel_sums(&self) -> Tensor<2> {
        match self {
            Self::Flat(t) => t.clone(),
            Self::Spatial(t) => {
                let [b, c, h, w] = t.dims();
                t.clone().reshape([b, c, h * w]).sum_dim(2).reshape([b, c])
            }
        }
    }

    /// Repeats the whole batch `times` times along the batch dimension (tiles, sample order
    /// `0..b, 0..b, ...`).
    pub fn repeat_batch(&self, times: usize) -> Self {
        if times == 1 {
            return self.clone();
        }
        match self {
            Self::Flat(t) => Self::Flat(t.clone().repeat(&[times, 1])),
            Self::Spatial(t) => Self::Spatial(t.clone().repeat(&[times, 1, 1, 1])),
        }
    }

    /// Element-wise sum of two activations of the same layout.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        match (self, other) {
            (Self::Flat(a), Self::Flat(b)) => Some(Self::Flat(a + b)),
            (Self::Spatial(a), Self::Spatial(b)) => Some(Self::Spatial(a + b)),
            _ => None,
        }
    }

    /// Detaches the values from any autodiff graph.
    pub fn detach(self) -> Self {
        self.map(|t| t.detach(), |t| t.detach())
    }

    /// Moves the values to `device`.
    pub fn to_device(self, device: &Device) -> Self {
        self.map(|t| t.to_device(device), |t| t.to_device(device))
    }

    /// Copies the values to the host as `f32`, in row-major order.
    pub fn to_vec(&self) -> Vec<f32> {
        let data = match self {
            Self::Flat(t) => t.to_data(),
            Self::Spatial(t) => t.to_data(),
        };
        crate::tensor_util::data_to_f32(data)
    }

    /// Sum of all values, as `f64` on the host.
    pub fn sum(&self) -> f64 {
        self.to_vec().iter().map(|v| *v as f64).sum()
    }
}
