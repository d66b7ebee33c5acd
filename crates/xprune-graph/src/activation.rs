//! [`Activation`]: the value flowing along a graph edge, a batch in one of the four layouts of
//! [`FeatureShape`].

use crate::shape::{FeatureShape, Layout};
use burn::tensor::{Device, Int, Tensor, TensorData};

/// A batch of values at one node, in one of four layouts (see [`FeatureShape`]).
///
/// Tensors are reference counted in Burn, so cloning an activation is cheap.
#[derive(Clone, Debug)]
pub enum Activation {
    /// A batch of flat feature vectors, `[batch, features]`.
    Flat(Tensor<2>),
    /// A batch of token sequences, `[batch, length, channels]`.
    Tokens(Tensor<3>),
    /// A batch of channels-first feature maps, `[batch, channels, height, width]`.
    Spatial(Tensor<4>),
    /// A batch of channels-last feature maps, `[batch, height, width, channels]`.
    SpatialLast(Tensor<4>),
}

/// Applies a rank-generic tensor expression to the tensor of an [`Activation`], keeping its
/// layout: `map_activation!(a, t => t.clamp_min(0.0))`.
#[macro_export]
macro_rules! map_activation {
    ($a:expr, $t:ident => $body:expr) => {
        match $a {
            $crate::Activation::Flat($t) => $crate::Activation::Flat($body),
            $crate::Activation::Tokens($t) => $crate::Activation::Tokens($body),
            $crate::Activation::Spatial($t) => $crate::Activation::Spatial($body),
            $crate::Activation::SpatialLast($t) => $crate::Activation::SpatialLast($body),
        }
    };
}

/// Evaluates a rank-generic tensor expression on the tensor of an [`Activation`] and returns
/// its (rank-independent) value: `with_activation!(&a, t => t.dims().to_vec())`.
#[macro_export]
macro_rules! with_activation {
    ($a:expr, $t:ident => $body:expr) => {
        match $a {
            $crate::Activation::Flat($t) => $body,
            $crate::Activation::Tokens($t) => $body,
            $crate::Activation::Spatial($t) => $body,
            $crate::Activation::SpatialLast($t) => $body,
        }
    };
}

/// Combines two activations of the same layout element-wise with a rank-generic expression;
/// `None` when the layouts differ: `zip_activation!(a, b, x, y => x + y)`.
#[macro_export]
macro_rules! zip_activation {
    ($a:expr, $b:expr, $x:ident, $y:ident => $body:expr) => {
        match ($a, $b) {
            ($crate::Activation::Flat($x), $crate::Activation::Flat($y)) => {
                Some($crate::Activation::Flat($body))
            }
            ($crate::Activation::Tokens($x), $crate::Activation::Tokens($y)) => {
                Some($crate::Activation::Tokens($body))
            }
            ($crate::Activation::Spatial($x), $crate::Activation::Spatial($y)) => {
                Some($crate::Activation::Spatial($body))
            }
            ($crate::Activation::SpatialLast($x), $crate::Activation::SpatialLast($y)) => {
                Some($crate::Activation::SpatialLast($body))
            }
            _ => None,
        }
    };
}

impl From<Tensor<2>> for Activation {
    fn from(t: Tensor<2>) -> Self {
        Self::Flat(t)
    }
}

impl From<Tensor<3>> for Activation {
    fn from(t: Tensor<3>) -> Self {
        Self::Tokens(t)
    }
}

impl From<Tensor<4>> for Activation {
    fn from(t: Tensor<4>) -> Self {
        Self::Spatial(t)
    }
}

/// A tensor of the given rank, reshaped from any rank (a metadata change only).
fn reshape_to<const A: usize, const B: usize>(t: Tensor<A>, dims: &[usize]) -> Tensor<B> {
    let mut d = [0usize; B];
    d.copy_from_slice(dims);
    t.reshape(d)
}

impl Activation {
    /// Builds an activation from host data with dimensions `dims` (batch first): rank 2 is
    /// flat, rank 3 tokens, rank 4 a channels-first map.
    ///
    /// Returns `None` for any other rank or when the data length does not match.
    pub fn from_vec(values: Vec<f32>, dims: &[usize], device: &Device) -> Option<Self> {
        let shape = FeatureShape::from_batch_dims(dims)?;
        Self::from_vec_in(values, dims[0], shape, device)
    }

    /// Builds a batch of `batch` samples of `shape` from host data (row-major, batch first).
    pub fn from_vec_in(
        values: Vec<f32>,
        batch: usize,
        shape: FeatureShape,
        device: &Device,
    ) -> Option<Self> {
        let dims = shape.batch_dims(batch);
        if dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(values.len()) {
            return None;
        }
        let data = TensorData::new(values, dims);
        Some(match shape.layout() {
            Layout::Flat => Self::Flat(Tensor::from_data(data, device)),
            Layout::Tokens => Self::Tokens(Tensor::from_data(data, device)),
            Layout::Spatial => Self::Spatial(Tensor::from_data(data, device)),
            Layout::SpatialLast => Self::SpatialLast(Tensor::from_data(data, device)),
        })
    }

    /// A tensor of any rank as an activation of `layout` (its rank must be the layout's).
    pub fn from_tensor<const D: usize>(t: Tensor<D>, layout: Layout) -> Option<Self> {
        if D != layout.rank() {
            return None;
        }
        let dims = t.dims().to_vec();
        Some(match layout {
            Layout::Flat => Self::Flat(reshape_to::<D, 2>(t, &dims)),
            Layout::Tokens => Self::Tokens(reshape_to::<D, 3>(t, &dims)),
            Layout::Spatial => Self::Spatial(reshape_to::<D, 4>(t, &dims)),
            Layout::SpatialLast => Self::SpatialLast(reshape_to::<D, 4>(t, &dims)),
        })
    }

    /// The same tensor read in another layout of the same rank (`Spatial` and `SpatialLast`
    /// are both rank 4); `None` when the ranks differ.
    pub fn with_layout(self, layout: Layout) -> Option<Self> {
        if self.layout() == layout {
            return Some(self);
        }
        match (self, layout) {
            (Self::Spatial(t), Layout::SpatialLast) => Some(Self::SpatialLast(t)),
            (Self::SpatialLast(t), Layout::Spatial) => Some(Self::Spatial(t)),
            _ => None,
        }
    }

    /// The tensor as a rank-`D` tensor, if `D` is this activation's rank.
    pub fn into_tensor<const D: usize>(self) -> Option<Tensor<D>> {
        let dims = self.dims();
        if dims.len() != D {
            return None;
        }
        Some(match self {
            Self::Flat(t) => reshape_to::<2, D>(t, &dims),
            Self::Tokens(t) => reshape_to::<3, D>(t, &dims),
            Self::Spatial(t) | Self::SpatialLast(t) => reshape_to::<4, D>(t, &dims),
        })
    }

    /// The layout.
    pub fn layout(&self) -> Layout {
        match self {
            Self::Flat(_) => Layout::Flat,
            Self::Tokens(_) => Layout::Tokens,
            Self::Spatial(_) => Layout::Spatial,
            Self::SpatialLast(_) => Layout::SpatialLast,
        }
    }

    /// Dimensions, batch first.
    pub fn dims(&self) -> Vec<usize> {
        with_activation!(self, t => t.dims().to_vec())
    }

    /// Batch size.
    pub fn batch(&self) -> usize {
        self.dims()[0]
    }

    /// Per-sample shape.
    pub fn feature_shape(&self) -> FeatureShape {
        FeatureShape::from_batch_dims_in(&self.dims(), self.layout())
            .expect("an activation's rank fits its layout")
    }

    /// Number of channels (features for flat activations).
    pub fn channels(&self) -> usize {
        self.dims()[self.layout().channel_axis()]
    }

    /// The device holding the values.
    pub fn device(&self) -> Device {
        with_activation!(self, t => t.device())
    }

    /// The flat tensor, or `None` for other layouts.
    pub fn as_flat(&self) -> Option<&Tensor<2>> {
        match self {
            Self::Flat(t) => Some(t),
            _ => None,
        }
    }

    /// The channels-first map, or `None` for other layouts.
    pub fn as_spatial(&self) -> Option<&Tensor<4>> {
        match self {
            Self::Spatial(t) => Some(t),
            _ => None,
        }
    }

    /// The token tensor, or `None` for other layouts.
    pub fn as_tokens(&self) -> Option<&Tensor<3>> {
        match self {
            Self::Tokens(t) => Some(t),
            _ => None,
        }
    }

    /// The values as `[batch, numel]`, flattening in memory order (channel-major for
    /// channels-first maps).
    pub fn flatten(self) -> Tensor<2> {
        let dims = self.dims();
        let rest: usize = dims[1..].iter().product();
        with_activation!(self, t => t.reshape([dims[0], rest]))
    }

    /// Reshapes `[batch, numel]` values into this activation's layout and dimensions.
    pub fn unflatten_like(&self, values: Tensor<2>) -> Self {
        let dims = self.dims();
        match self {
            Self::Flat(_) => Self::Flat(values),
            Self::Tokens(_) => Self::Tokens(reshape_to::<2, 3>(values, &dims)),
            Self::Spatial(_) => Self::Spatial(reshape_to::<2, 4>(values, &dims)),
            Self::SpatialLast(_) => Self::SpatialLast(reshape_to::<2, 4>(values, &dims)),
        }
    }

    /// A per-channel vector as a batch-1 activation of `layout` that broadcasts along every
    /// axis but the channels (`[1, C]`, `[1, 1, C]`, `[1, C, 1, 1]`, `[1, 1, 1, C]`).
    pub fn channel_vector(v: Tensor<1>, layout: Layout) -> Self {
        let [c] = v.dims();
        match layout {
            Layout::Flat => Self::Flat(v.reshape([1, c])),
            Layout::Tokens => Self::Tokens(v.reshape([1, 1, c])),
            Layout::Spatial => Self::Spatial(v.reshape([1, c, 1, 1])),
            Layout::SpatialLast => Self::SpatialLast(v.reshape([1, 1, 1, c])),
        }
    }

    /// The per-channel factors `[rows, C]` reshaped to broadcast against this activation.
    fn channel_broadcast(&self, factors: Tensor<2>) -> Self {
        let [b, c] = factors.dims();
        match self {
            Self::Flat(_) => Self::Flat(factors),
            Self::Tokens(_) => Self::Tokens(factors.reshape([b, 1, c])),
            Self::Spatial(_) => Self::Spatial(factors.reshape([b, c, 1, 1])),
            Self::SpatialLast(_) => Self::SpatialLast(factors.reshape([b, 1, 1, c])),
        }
    }

    /// Multiplies every channel by a factor: `factors` is `[1, channels]` (the same for every
    /// sample) or `[batch, channels]` (one row per sample).
    pub fn scale_channels(self, factors: Tensor<2>) -> Self {
        let f = self.channel_broadcast(factors);
        zip_activation!(self, f, x, y => x * y).expect("same layout")
    }

    /// Adds a per-channel offset `[1, channels]` or `[batch, channels]`.
    pub fn shift_channels(self, offsets: Tensor<2>) -> Self {
        let f = self.channel_broadcast(offsets);
        zip_activation!(self, f, x, y => x + y).expect("same layout")
    }

    /// Sums the values of each channel over positions: `[batch, channels]`.
    pub fn channel_sums(&self) -> Tensor<2> {
        match self {
            Self::Flat(t) => t.clone(),
            Self::Tokens(t) => {
                let [b, _, c] = t.dims();
                t.clone().sum_dim(1).reshape([b, c])
            }
            Self::Spatial(t) => {
                let [b, c, h, w] = t.dims();
                t.clone().reshape([b, c, h * w]).sum_dim(2).reshape([b, c])
            }
            Self::SpatialLast(t) => {
                let [b, h, w, c] = t.dims();
                t.clone().reshape([b, h * w, c]).sum_dim(1).reshape([b, c])
            }
        }
    }

    /// The channels `start .. start + len`.
    pub fn narrow_channels(self, start: usize, len: usize) -> Self {
        let axis = self.layout().channel_axis();
        map_activation!(self, t => t.narrow(axis, start, len))
    }

    /// The channels at `indices`, in that order.
    pub fn select_channels(self, indices: &[usize]) -> Self {
        let axis = self.layout().channel_axis();
        let device = self.device();
        let idx: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [indices.len()]), &device);
        map_activation!(self, t => t.select(axis, idx.clone()))
    }

    /// Concatenates activations of one layout along the channel axis; `None` for an empty list
    /// or mixed layouts.
    pub fn cat_channels(inputs: Vec<Self>) -> Option<Self> {
        let layout = inputs.first()?.layout();
        if inputs.iter().any(|a| a.layout() != layout) {
            return None;
        }
        let axis = layout.channel_axis();
        Some(match layout {
            Layout::Flat => Self::Flat(Tensor::cat(
                inputs.into_iter().filter_map(|a| a.into_flat()).collect(),
                axis,
            )),
            Layout::Tokens => Self::Tokens(Tensor::cat(
                inputs.into_iter().filter_map(|a| a.into_tokens()).collect(),
                axis,
            )),
            Layout::Spatial => Self::Spatial(Tensor::cat(
                inputs
                    .into_iter()
                    .filter_map(|a| a.into_spatial())
                    .collect(),
                axis,
            )),
            Layout::SpatialLast => Self::SpatialLast(Tensor::cat(
                inputs
                    .into_iter()
                    .filter_map(|a| a.into_spatial_last())
                    .collect(),
                axis,
            )),
        })
    }

    /// Splits along the channel axis into parts of the given sizes.
    pub fn split_channels(self, sizes: Vec<usize>) -> Vec<Self> {
        let axis = self.layout().channel_axis();
        match self {
            Self::Flat(t) => t
                .split_with_sizes(sizes, axis)
                .into_iter()
                .map(Self::Flat)
                .collect(),
            Self::Tokens(t) => t
                .split_with_sizes(sizes, axis)
                .into_iter()
                .map(Self::Tokens)
                .collect(),
            Self::Spatial(t) => t
                .split_with_sizes(sizes, axis)
                .into_iter()
                .map(Self::Spatial)
                .collect(),
            Self::SpatialLast(t) => t
                .split_with_sizes(sizes, axis)
                .into_iter()
                .map(Self::SpatialLast)
                .collect(),
        }
    }

    /// The flat tensor, consuming the activation.
    pub fn into_flat(self) -> Option<Tensor<2>> {
        match self {
            Self::Flat(t) => Some(t),
            _ => None,
        }
    }

    /// The token tensor, consuming the activation.
    pub fn into_tokens(self) -> Option<Tensor<3>> {
        match self {
            Self::Tokens(t) => Some(t),
            _ => None,
        }
    }

    /// The channels-first map, consuming the activation.
    pub fn into_spatial(self) -> Option<Tensor<4>> {
        match self {
            Self::Spatial(t) => Some(t),
            _ => None,
        }
    }

    /// The channels-last map, consuming the activation.
    pub fn into_spatial_last(self) -> Option<Tensor<4>> {
        match self {
            Self::SpatialLast(t) => Some(t),
            _ => None,
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
            Self::Tokens(t) => Self::Tokens(t.clone().repeat(&[times, 1, 1])),
            Self::Spatial(t) => Self::Spatial(t.clone().repeat(&[times, 1, 1, 1])),
            Self::SpatialLast(t) => Self::SpatialLast(t.clone().repeat(&[times, 1, 1, 1])),
        }
    }

    /// Element-wise sum of two activations of the same layout.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        zip_activation!(self, other, a, b => a + b)
    }

    /// Element-wise product of two activations of the same layout (either may broadcast along
    /// axes of size 1).
    pub fn checked_mul(self, other: Self) -> Option<Self> {
        zip_activation!(self, other, a, b => a * b)
    }

    /// Zeros of the same shape and layout.
    pub fn zeros_like(&self) -> Self {
        map_activation!(self, t => t.zeros_like())
    }

    /// Detaches the values from any autodiff graph.
    pub fn detach(self) -> Self {
        map_activation!(self, t => t.detach())
    }

    /// Moves the values to `device`.
    pub fn to_device(self, device: &Device) -> Self {
        map_activation!(self, t => t.to_device(device))
    }

    /// Copies the values to the host as `f32`, in row-major order.
    pub fn to_vec(&self) -> Vec<f32> {
        let data = with_activation!(self, t => t.to_data());
        crate::tensor_util::data_to_f32(data)
    }

    /// Sum of all values, as `f64` on the host.
    pub fn sum(&self) -> f64 {
        self.to_vec().iter().map(|v| *v as f64).sum()
    }

    /// The same values in another layout with the same channels and positions: channels-first
    /// and channels-last maps convert into each other (a transpose); every other pair of
    /// distinct layouts is `None`.
    pub fn to_layout(self, layout: Layout) -> Option<Self> {
        match (self, layout) {
            (a, l) if a.layout() == l => Some(a),
            (Self::Spatial(t), Layout::SpatialLast) => {
                Some(Self::SpatialLast(t.permute([0, 2, 3, 1])))
            }
            (Self::SpatialLast(t), Layout::Spatial) => Some(Self::Spatial(t.permute([0, 3, 1, 2]))),
            _ => None,
        }
    }
}
