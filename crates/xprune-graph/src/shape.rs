//! Per-sample feature shapes (four layouts: vectors, token sequences, channels-first and
//! channels-last maps) and the window arithmetic of convolutions and pools.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The most values one sample may have at one node (`2^28`, 1 GiB of `f32`): the bound of
/// [`FeatureShape::check_size`].
pub const MAX_SAMPLE_VALUES: usize = 1 << 28;

/// The most channels all nodes of a graph may have together (`2^26`): channel groups, masks
/// and plans allocate per channel of every node, so this bounds them for any structure.
pub const MAX_GRAPH_CHANNELS: usize = 1 << 26;

/// Adds the channels of `shape` to `total`, an error once they exceed
/// [`MAX_GRAPH_CHANNELS`].
pub(crate) fn add_channels(total: &mut usize, shape: &FeatureShape) -> Result<(), String> {
    *total = total.saturating_add(shape.channels());
    if *total > MAX_GRAPH_CHANNELS {
        return Err(format!(
            "the nodes up to here have more than {MAX_GRAPH_CHANNELS} channels together, the \
             most a graph may have"
        ));
    }
    Ok(())
}

/// The shape of one sample's values at a node. Shapes never include the batch dimension.
///
/// Every layout has one *channel axis*: the axis that convolutions, linear layers and channel
/// pruning act on.
///
/// | variant | per sample | batch tensor | channel axis (batch tensor) |
/// |---|---|---|---|
/// | `Flat(c)` | `[C]` | `[N, C]` | 1 |
/// | `Tokens([l, c])` | `[L, C]` | `[N, L, C]` | 2 |
/// | `Spatial([c, h, w])` | `[C, H, W]` | `[N, C, H, W]` | 1 |
/// | `SpatialLast([h, w, c])` | `[H, W, C]` | `[N, H, W, C]` | 3 |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureShape {
    /// A vector of `features` values (the output of a linear layer or a flatten).
    Flat(usize),
    /// A sequence of `L` tokens of `C` channels, `[L, C]` (channels last).
    Tokens([usize; 2]),
    /// A `[channels, height, width]` feature map (channels first).
    Spatial([usize; 3]),
    /// A `[height, width, channels]` feature map (channels last, as inside ConvNeXt blocks).
    SpatialLast([usize; 3]),
}

/// The layout of a [`FeatureShape`] without its sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// `[N, C]`.
    Flat,
    /// `[N, L, C]`.
    Tokens,
    /// `[N, C, H, W]`.
    Spatial,
    /// `[N, H, W, C]`.
    SpatialLast,
}

impl Layout {
    /// The rank of a batch tensor of this layout.
    pub fn rank(self) -> usize {
        match self {
            Self::Flat => 2,
            Self::Tokens => 3,
            Self::Spatial | Self::SpatialLast => 4,
        }
    }

    /// The channel axis of a batch tensor of this layout.
    pub fn channel_axis(self) -> usize {
        match self {
            Self::Flat | Self::Spatial => 1,
            Self::Tokens => 2,
            Self::SpatialLast => 3,
        }
    }

    /// Whether channels are the last axis (linear layers and layer norms act on them directly).
    pub fn channels_last(self) -> bool {
        self.channel_axis() + 1 == self.rank()
    }

    /// A readable name (`flat`, `tokens`, `spatial`, `spatial_last`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Flat => "flat",
            Self::Tokens => "tokens",
            Self::Spatial => "spatial",
            Self::SpatialLast => "spatial_last",
        }
    }
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

    /// A `[length, channels]` token sequence.
    pub fn tokens(length: usize, channels: usize) -> Self {
        Self::Tokens([length, channels])
    }

    /// A `[height, width, channels]` channels-last map.
    pub fn spatial_last(height: usize, width: usize, channels: usize) -> Self {
        Self::SpatialLast([height, width, channels])
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

    /// Number of channels (the features of a flat shape).
    pub fn channels(&self) -> usize {
        match self {
            Self::Flat(c) | Self::Tokens([_, c]) | Self::Spatial([c, _, _]) => *c,
            Self::SpatialLast([_, _, c]) => *c,
        }
    }

    /// Number of values per channel (1 for flat shapes, `L` for tokens, `H * W` for maps).
    pub fn positions(&self) -> usize {
        match self {
            Self::Flat(_) => 1,
            Self::Tokens([l, _]) => *l,
            Self::Spatial([_, h, w]) | Self::SpatialLast([h, w, _]) => h.saturating_mul(*w),
        }
    }

    /// Checks that one sample of this shape has at most [`MAX_SAMPLE_VALUES`] values: every
    /// shape of a graph is checked when the graph is built, before anything is allocated
    /// from it, so that a corrupt or hostile file cannot make the process allocate without
    /// bound (or abort). The message gives the shape and the limit.
    pub fn check_size(&self) -> Result<(), String> {
        let values = self
            .dims()
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .filter(|&n| n <= MAX_SAMPLE_VALUES);
        match values {
            Some(_) => Ok(()),
            None => Err(format!(
                "shape [{self}] has more than {MAX_SAMPLE_VALUES} values per sample, the most \
                 a node may hold"
            )),
        }
    }

    /// `[height, width]` of a map (either channel order), `None` otherwise.
    pub fn hw(&self) -> Option<[usize; 2]> {
        match self {
            Self::Spatial([_, h, w]) | Self::SpatialLast([h, w, _]) => Some([*h, *w]),
            Self::Flat(_) | Self::Tokens(_) => None,
        }
    }

    /// Total number of values per sample (saturating, for hostile sizes).
    pub fn numel(&self) -> usize {
        self.channels().saturating_mul(self.positions())
    }

    /// Whether this is a channels-first map.
    pub fn is_spatial(&self) -> bool {
        matches!(self, Self::Spatial(_))
    }

    /// The same shape with another channel count.
    pub fn with_channels(&self, channels: usize) -> Self {
        match *self {
            Self::Flat(_) => Self::Flat(channels),
            Self::Tokens([l, _]) => Self::Tokens([l, channels]),
            Self::Spatial([_, h, w]) => Self::Spatial([channels, h, w]),
            Self::SpatialLast([h, w, _]) => Self::SpatialLast([h, w, channels]),
        }
    }

    /// The per-sample dimensions, in tensor order.
    pub fn dims(&self) -> Vec<usize> {
        match *self {
            Self::Flat(c) => vec![c],
            Self::Tokens([l, c]) => vec![l, c],
            Self::Spatial([c, h, w]) => vec![c, h, w],
            Self::SpatialLast([h, w, c]) => vec![h, w, c],
        }
    }

    /// Dimensions of a batch of `batch` samples of this shape, batch first.
    pub fn batch_dims(&self, batch: usize) -> Vec<usize> {
        let mut d = vec![batch];
        d.extend(self.dims());
        d
    }

    /// The shape of one sample of a batch with dimensions `dims` (batch first) in `layout`, if
    /// the rank fits the layout.
    pub fn from_batch_dims_in(dims: &[usize], layout: Layout) -> Option<Self> {
        Some(match (layout, dims) {
            (Layout::Flat, [_, c]) => Self::Flat(*c),
            (Layout::Tokens, [_, l, c]) => Self::Tokens([*l, *c]),
            (Layout::Spatial, [_, c, h, w]) => Self::Spatial([*c, *h, *w]),
            (Layout::SpatialLast, [_, h, w, c]) => Self::SpatialLast([*h, *w, *c]),
            _ => return None,
        })
    }

    /// The shape of one sample of a batch with dimensions `dims` (batch first): rank 2 is flat,
    /// rank 3 tokens, rank 4 a channels-first map.
    pub fn from_batch_dims(dims: &[usize]) -> Option<Self> {
        let layout = match dims.len() {
            2 => Layout::Flat,
            3 => Layout::Tokens,
            4 => Layout::Spatial,
            _ => return None,
        };
        Self::from_batch_dims_in(dims, layout)
    }
}

impl fmt::Display for FeatureShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flat(n) => write!(f, "{n}"),
            Self::Tokens([l, c]) => write!(f, "{l} tokens, {c}"),
            Self::Spatial([c, h, w]) => write!(f, "{c}, {h}, {w}"),
            Self::SpatialLast([h, w, c]) => write!(f, "{h}, {w}, {c} (channels last)"),
        }
    }
}

/// Padding of a 2-D window: `[top, left, bottom, right]` (ONNX's `[begin..., end...]`
/// rearranged per side).
pub type Padding2d = [usize; 4];

/// Output `[height, width]` of a 2-D window over `[h, w]` (see [`window_output_len`]).
pub fn window_output_hw(
    [h, w]: [usize; 2],
    padding: &Padding2d,
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    ceil_mode: bool,
) -> Option<[usize; 2]> {
    let oh = window_output_len(
        h,
        (padding[0], padding[2]),
        kernel[0],
        stride[0],
        dilation[0],
        ceil_mode,
    )?;
    let ow = window_output_len(
        w,
        (padding[1], padding[3]),
        kernel[1],
        stride[1],
        dilation[1],
        ceil_mode,
    )?;
    Some([oh, ow])
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
    let padded = size.checked_add(pad_begin)?.checked_add(pad_end)?;
    let span = dilation.checked_mul(kernel - 1)?.checked_add(1)?;
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

/// The `(begin, end)` padding that gives a window an output of `ceil(size / stride)` values
/// ("same" padding). `upper` puts the odd extra value at the end (ONNX `SAME_UPPER`, Burn's and
/// TensorFlow's `Same`), otherwise at the beginning (`SAME_LOWER`).
///
/// This is the one place where "same" padding is computed. Note that Burn's own
/// `PaddingConfig2d::Same` ignores dilation; layers given with it are resolved with
/// `dilation = 1` so that xprune computes what Burn's forward pass computes.
pub fn same_padding(
    size: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    upper: bool,
) -> (usize, usize) {
    let out = size.div_ceil(stride.max(1));
    let span = dilation.max(1) * (kernel.max(1) - 1) + 1;
    let total = ((out.max(1) - 1) * stride.max(1) + span).saturating_sub(size);
    let (small, large) = (total / 2, total - total / 2);
    if upper {
        (small, large)
    } else {
        (large, small)
    }
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
        // hostile sizes do not overflow
        assert_eq!(window_output_len(usize::MAX, (1, 1), 3, 1, 1, false), None);
    }

    #[test]
    fn same_padding_with_dilation_and_sides() {
        // 4x4 kernel, stride 1 on 16: total 3, upper puts 2 at the end
        assert_eq!(same_padding(16, 4, 1, 1, true), (1, 2));
        assert_eq!(same_padding(16, 4, 1, 1, false), (2, 1));
        // dilation 2, kernel 3 spans 5: total 4
        assert_eq!(same_padding(16, 3, 1, 2, true), (2, 2));
        // stride 2 on 15: out 8, needed 17 -> total 2
        assert_eq!(same_padding(15, 3, 2, 1, true), (1, 1));
    }

    #[test]
    fn shape_helpers() {
        let s = FeatureShape::spatial(8, 4, 5);
        assert_eq!(s.channels(), 8);
        assert_eq!(s.numel(), 160);
        assert_eq!(s.batch_dims(2), vec![2, 8, 4, 5]);
        assert_eq!(FeatureShape::from_batch_dims(&[2, 8, 4, 5]), Some(s));
        assert_eq!(FeatureShape::flat(3).to_string(), "3");
        let t = FeatureShape::tokens(7, 16);
        assert_eq!((t.channels(), t.positions()), (16, 7));
        assert_eq!(t.layout().channel_axis(), 2);
        let l = FeatureShape::spatial_last(4, 5, 8);
        assert_eq!((l.channels(), l.positions(), l.hw()), (8, 20, Some([4, 5])));
        assert_eq!(l.batch_dims(1), vec![1, 4, 5, 8]);
        assert_eq!(
            FeatureShape::from_batch_dims_in(&[1, 4, 5, 8], Layout::SpatialLast),
            Some(l)
        );
        assert!(Layout::SpatialLast.channels_last() && !Layout::Spatial.channels_last());
    }
}
