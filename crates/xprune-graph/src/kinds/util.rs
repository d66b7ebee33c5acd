//! Small helpers that several kinds share.

use crate::activation::Activation;
use crate::kind::onnx::ImportError;
use crate::kind::{ChannelCut, ConstTensor, OpAttrs};
use crate::registry::Layer;
use crate::shape::{FeatureShape, Padding2d, same_padding};
use burn::nn::PaddingConfig2d;
use burn::tensor::Tensor;

/// The single input of a one-input kind.
pub(crate) fn one(inputs: Vec<Activation>, kind: &str) -> Result<Activation, String> {
    let mut it = inputs.into_iter();
    match (it.next(), it.next()) {
        (Some(x), None) => Ok(x),
        _ => Err(format!("{kind} takes one input")),
    }
}

/// The `[channels, height, width]` of a channels-first map input, or why not.
pub(crate) fn spatial_in(shape: FeatureShape, kind: &str) -> Result<[usize; 3], String> {
    match shape {
        FeatureShape::Spatial(s) => Ok(s),
        other => Err(format!(
            "{kind} expects a [channels, height, width] map, its input has shape [{other}] ({})",
            other.layout().name()
        )),
    }
}

/// The channels-first map of an activation, or why not.
pub(crate) fn into_spatial(a: Activation, kind: &str) -> Result<Tensor<4>, String> {
    let layout = a.layout();
    a.into_spatial().ok_or_else(|| {
        format!(
            "{kind} expects a channels-first map, got a {} value",
            layout.name()
        )
    })
}

/// An explicit Burn padding configuration.
pub(crate) fn explicit(p: Padding2d) -> PaddingConfig2d {
    PaddingConfig2d::Explicit(p[0], p[1], p[2], p[3])
}

/// The explicit padding `[top, left, bottom, right]` that a Burn padding configuration gives
/// for an input of `[h, w]` (Burn's `Same` ignores dilation; see
/// [`same_padding`](crate::same_padding)).
pub fn resolve_padding(
    padding: &PaddingConfig2d,
    [h, w]: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
) -> Padding2d {
    match padding {
        PaddingConfig2d::Valid => [0; 4],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [*top, *left, *bottom, *right],
        PaddingConfig2d::Same => {
            let (t, b) = same_padding(h, kernel[0], stride[0], 1, true);
            let (l, r) = same_padding(w, kernel[1], stride[1], 1, true);
            [t, l, b, r]
        }
    }
}

/// The padding of an explicit configuration (anything else reads as no padding; kinds make
/// their padding explicit in `normalize`).
pub(crate) fn padding_of(p: &PaddingConfig2d) -> Padding2d {
    resolve_padding(p, [0, 0], [1, 1], [1, 1])
}

/// Checks that a pool's padding is at most half its window (PyTorch's and Burn's rule).
pub(crate) fn check_pool_padding(kernel: &[usize; 2], padding: &Padding2d) -> Result<(), String> {
    let too_big = padding[0] > kernel[0] / 2
        || padding[2] > kernel[0] / 2
        || padding[1] > kernel[1] / 2
        || padding[3] > kernel[1] / 2;
    if too_big {
        return Err(format!(
            "pool padding {padding:?} must be at most half the window {kernel:?}"
        ));
    }
    Ok(())
}

/// The host copy of a tensor as a constant.
pub(crate) fn constant_of<const D: usize>(t: &Tensor<D>) -> ConstTensor {
    ConstTensor::f32(
        t.dims().to_vec(),
        crate::tensor_util::data_to_f32(t.to_data()),
    )
}

/// The slice of a kind whose channels pass through unchanged and that holds no per-channel
/// state: the same layer, after checking that every side loses the same channels.
pub(crate) fn pass_slice(layer: impl Into<Layer>, cut: &ChannelCut<'_>) -> Result<Layer, String> {
    cut.check_elementwise()?;
    Ok(layer.into())
}

/// The slice of a kind that may lose no channel at all.
pub(crate) fn no_slice(
    layer: impl Into<Layer>,
    cut: &ChannelCut<'_>,
    kind: &str,
) -> Result<Layer, String> {
    if cut.is_empty() {
        Ok(layer.into())
    } else {
        Err(format!("a {kind} layer cannot lose channels"))
    }
}

/// Whether every input is non-negative (and there is at least one).
pub(crate) fn all(inputs: &[bool]) -> bool {
    !inputs.is_empty() && inputs.iter().all(|&b| b)
}

/// Padding `[top, left, bottom, right]` of a conv or pool from ONNX's `auto_pad` and `pads`.
pub(crate) fn onnx_window_padding(
    a: &OpAttrs,
    hw: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
) -> Result<Padding2d, ImportError> {
    use crate::kind::onnx::unsupported;
    let auto_pad = a
        .string("auto_pad")?
        .unwrap_or_else(|| "NOTSET".to_string());
    let pads = a.ints("pads")?;
    let explicit_pads = || -> Result<Padding2d, ImportError> {
        let Some(p) = &pads else { return Ok([0; 4]) };
        let parsed: Option<Vec<usize>> = p.iter().map(|&v| usize::try_from(v).ok()).collect();
        match parsed {
            Some(v) if v.len() == 4 => Ok([v[0], v[1], v[2], v[3]]),
            _ => Err(unsupported(
                "pads",
                format!("{p:?}"),
                "4 non-negative values [top, left, bottom, right]",
            )),
        }
    };
    match auto_pad.as_str() {
        "NOTSET" | "" => explicit_pads(),
        "VALID" | "SAME_UPPER" | "SAME_LOWER" => {
            if explicit_pads()? != [0; 4] {
                return Err(unsupported(
                    "pads",
                    format!("{:?}", pads.unwrap_or_default()),
                    format!("pads cannot be combined with auto_pad = {auto_pad}"),
                ));
            }
            if auto_pad == "VALID" {
                return Ok([0; 4]);
            }
            let upper = auto_pad == "SAME_UPPER";
            let (t, b) = same_padding(hw[0], kernel[0], stride[0], dilation[0], upper);
            let (l, r) = same_padding(hw[1], kernel[1], stride[1], dilation[1], upper);
            Ok([t, l, b, r])
        }
        other => Err(unsupported(
            "auto_pad",
            format!("{other:?}"),
            "NOTSET, VALID, SAME_UPPER or SAME_LOWER",
        )),
    }
}

/// The `[h, w]` of an imported node's map input, or why not.
pub(crate) fn onnx_spatial_hw(shape: FeatureShape) -> Result<[usize; 2], ImportError> {
    match shape {
        FeatureShape::Spatial([_, h, w]) => Ok([h, w]),
        s => Err(format!("input X must be a [N, C, H, W] map, found [N, {s}]").into()),
    }
}

/// The channel axis of a batch of `shape`, as an ONNX axis attribute.
pub(crate) fn channel_axis(shape: FeatureShape) -> i64 {
    shape.layout().channel_axis() as i64
}

/// Whether ONNX `axis` (possibly negative) names the channel axis of a batch of `shape`.
pub(crate) fn is_channel_axis(axis: i64, shape: FeatureShape) -> bool {
    let rank = shape.layout().rank() as i64;
    let a = if axis < 0 { axis + rank } else { axis };
    a == channel_axis(shape)
}

/// The values of a constant that multiplies (or is added to) a value of per-sample shape
/// `shape` with ONNX broadcasting, as one factor per channel: a single value is repeated;
/// otherwise the constant, right-aligned against the batch tensor's rank, must be 1 on every
/// axis except the channel axis, which holds one value per channel. A constant of higher rank
/// than the value would change the output's rank, and is refused too.
pub(crate) fn per_channel_values(c: &ConstTensor, shape: FeatureShape) -> Result<Vec<f32>, String> {
    let channels = shape.channels();
    let rank = shape.layout().rank();
    let axis = shape.layout().channel_axis();
    let refuse = || {
        format!(
            "a constant of shape {} does not act per channel on [N, {shape}] (one value, or one \
             per channel along the channel axis, of rank at most {rank})",
            c.dims_string()
        )
    };
    if c.dims.len() > rank {
        return Err(refuse());
    }
    let values = c.to_f32();
    if values.len() == 1 {
        return Ok(vec![values[0]; channels]);
    }
    let mut dims = vec![1usize; rank - c.dims.len()];
    dims.extend(&c.dims);
    let along = dims
        .iter()
        .enumerate()
        .all(|(i, &d)| d == 1 || (i == axis && d == channels));
    if along && values.len() == channels {
        Ok(values)
    } else {
        Err(refuse())
    }
}
