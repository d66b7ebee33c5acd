//! Per-sample feature shapes and the output-size arithmetic of convolutions and pools.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The shape of one sample's features at a node: a flat vector or a spatial map.
///
/// Shapes never include the batch dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureShape {
    /// A vector of `features` values (the output of a linear layer or a flatten).
    Flat(usize),
    /// A `[channels, height, width]` feature map.
    Spatial([usize; 3]),
}

impl FeatureShape {
    /// A flat shape of `features` values.
    pub fn flat(features: usize) -> Self {
        Self::Flat(features)
    }

    /// A `[channels, height, width]` spatial shape.
    pub fn spatial(channels: usize, height: usize, width: usize) -> Self {
        Self::Spatial([channels, height, width])
    }

    /// Number of channels: the features of a flat shape, the first dimension of a spatial one.
    pub fn channels(&self) -> usize {
        match self {
            Self::Flat(f) => *f,
            Self::Spatial([c, _, _]) => *c,
        }
    }

    /// Number of values per channel (1 for flat shapes, `height * width` for spatial ones).
    pub fn positions(&self) -> usize {
        match self {
            Self::Flat(_) => 1,
            Self::Spatial([_, h, w]) => h * w,
        }
    }

    /// Total number of values per sample.
    pub fn numel(&self) -> usize {
        self.channels() * self.positions()
    }

    /// Whether this is a spatial map.
    pub fn is_spatial(&self) -> bool {
        matches!(self, Self::Spatial(_))
    }

    /// The same shape with another channel count.
    pub fn with_channels(&self, channels: usize) -> Self {
        match self {
            Self::Flat(_) => Self::Flat(channels),
            Self::Spatial([_, h, w]) => Self::Spatial([channels, *h, *w]),
        }
    }

    /// Dimensions of a batch of `batch` samples of this shape, batch first.
    pub fn batch_dims(&self, batch: usize) -> Vec<usize> {
        match self {
            Self::Flat(f) => vec![batch, *f],
            Self::Spatial([c, h, w]) => vec![batch, *c, *h, *w],
        }
    }

    /// The shape of one sample of a batch with dimensions `dims` (batch first), if it is a
    /// rank 2 or rank 4 batch.
    pub fn from_batch_dims(dims: &[usize]) -> Option<Self> {
        match dims {
            [_, f] => Some(Self::Flat(*f)),
            [_, c, h, w] => Some(Self::Spatial([*c, *h, *w])),
            _ => None,
        }
    }
}

impl fmt::Display for FeatureShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flat(n) => write!(f, "{n}"),
            Self::Spatial([c, h, w]) => write!(f, "{c}, {h}, {w}"),
        }
    }
}

/// Output length of a sliding window over one spatial dimension, following PyTorch and ONNX.
///
/// `size` is the input length, `(pad_begin, pad_end)` the padding, `kernel` the window,
/// `dilation` the dilation of the window, `stride` the step. With `ceil_mode` the last partial
/// window is kept, unless it would start in the end padding. Returns `None` when the window
/// does not fit at all.
pub fn window_output_len(
    size: usize,
    (pad_begin, pad_end): (usize, usize),
    kernel: usize,
    stride: usize,
    dilation: usize,
    ceil_mode: bool,
) -> Option<usize> {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return None;
    }
    let padded = size + pad_begin + pad_end;
    let span = dilation * (kernel - 1) + 1;
    if padded < span {
        return None;
    }
    let room = padded - span;
    let mut out = if ceil_mode {
        room.div_ceil(stride) + 1
    } else {
        room / stride + 1
    };
    if ceil_mode && out > 1 && (out - 1) * stride >= size + pad_begin {
        out -= 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_sizes_match_pytorch() {
        // conv 3x3, pad 1, stride 1 keeps the size
        assert_eq!(window_output_len(32, (1, 1), 3, 1, 1, false), Some(32));
        // stride 2 halves
        assert_eq!(window_output_len(32, (1, 1), 3, 2, 1, false), Some(16));
        // max pool 3, stride 2, ceil mode on 6 -> 3 (floor gives 2)
        assert_eq!(window_output_len(6, (0, 0), 3, 2, 1, false), Some(2));
        assert_eq!(window_output_len(6, (0, 0), 3, 2, 1, true), Some(3));
        // dilation 2, kernel 3 spans 5
        assert_eq!(window_output_len(7, (0, 0), 3, 1, 2, false), Some(3));
        assert_eq!(window_output_len(2, (0, 0), 3, 1, 1, false), None);
    }

    #[test]
    fn shape_helpers() {
        let s = FeatureShape::spatial(8, 4, 5);
        assert_eq!(s.channels(), 8);
        assert_eq!(s.numel(), 160);
        assert_eq!(s.batch_dims(2), vec![2, 8, 4, 5]);
        assert_eq!(FeatureShape::from_batch_dims(&[2, 8, 4, 5]), Some(s));
        assert_eq!(FeatureShape::flat(3).to_string(), "3");
    }
}
