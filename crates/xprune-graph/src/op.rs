//! [`OpSpec`]: the hyper-parameters of every supported layer kind, serialisable, and the shape
//! inference that checks them against their inputs.

use crate::shape::{FeatureShape, window_output_len};
use serde::{Deserialize, Serialize};

/// Padding of a 2-D window: `[top, left, bottom, right]`, as in ONNX order `[begin..., end...]`
/// rearranged per side.
pub type Padding2d = [usize; 4];

/// A layer kind with its hyper-parameters, without weights.
///
/// This is the readable structure description of a node (it is what
/// [`GraphSpec`](crate::GraphSpec) stores) and what the builder turns into Burn layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OpSpec {
    /// The graph input.
    Input {
        /// Per-sample shape of the input.
        shape: FeatureShape,
    },
    /// 2-D convolution (`burn::nn::conv::Conv2d`).
    Conv2d {
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Kernel `[height, width]`.
        kernel: [usize; 2],
        /// Stride `[height, width]`.
        stride: [usize; 2],
        /// Padding `[top, left, bottom, right]`.
        padding: Padding2d,
        /// Dilation `[height, width]`.
        dilation: [usize; 2],
        /// Groups: `in_channels` and `out_channels` must both be multiples of it.
        groups: usize,
        /// Whether the layer has a bias.
        bias: bool,
    },
    /// Fully connected layer (`burn::nn::Linear`).
    Linear {
        /// Input features.
        in_features: usize,
        /// Output features.
        out_features: usize,
        /// Whether the layer has a bias.
        bias: bool,
    },
    /// Batch normalisation over channels (`burn::nn::BatchNorm`).
    BatchNorm {
        /// Number of channels.
        features: usize,
        /// Stabiliser added to the variance.
        epsilon: f64,
        /// Running statistics update rate.
        momentum: f64,
    },
    /// Rectified linear unit.
    Relu,
    /// 2-D max pooling.
    MaxPool2d {
        /// Window `[height, width]`.
        kernel: [usize; 2],
        /// Stride `[height, width]`.
        stride: [usize; 2],
        /// Padding `[top, left, bottom, right]`.
        padding: Padding2d,
        /// Dilation `[height, width]`.
        dilation: [usize; 2],
        /// Keep the last partial window.
        ceil_mode: bool,
    },
    /// 2-D average pooling.
    AvgPool2d {
        /// Window `[height, width]`.
        kernel: [usize; 2],
        /// Stride `[height, width]`.
        stride: [usize; 2],
        /// Padding `[top, left, bottom, right]`.
        padding: Padding2d,
        /// Whether padded zeros count in the average.
        count_include_pad: bool,
        /// Keep the last partial window.
        ceil_mode: bool,
    },
    /// Adaptive average pooling to a fixed output size (`[1, 1]` is global average pooling).
    AdaptiveAvgPool2d {
        /// Output `[height, width]`.
        output: [usize; 2],
    },
    /// Flattens `[C, H, W]` maps into `C*H*W` vectors (channel-major), identity on vectors.
    Flatten,
    /// Element-wise sum of two or more inputs of the same shape.
    Add,
    /// Concatenation of two or more inputs along the channel (feature) dimension.
    Concat,
    /// Dropout with the given drop probability (active in training only).
    Dropout {
        /// Probability of dropping a value, in `[0, 1)`.
        prob: f64,
    },
    /// Passes its input through.
    Identity,
}

impl OpSpec {
    /// The op's short name, as used in listings and structure files (`conv2d`, `linear`, ...).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Input { .. } => "input",
            Self::Conv2d { .. } => "conv2d",
            Self::Linear { .. } => "linear",
            Self::BatchNorm { .. } => "batch_norm",
            Self::Relu => "relu",
            Self::MaxPool2d { .. } => "max_pool2d",
            Self::AvgPool2d { .. } => "avg_pool2d",
            Self::AdaptiveAvgPool2d { .. } => "adaptive_avg_pool2d",
            Self::Flatten => "flatten",
            Self::Add => "add",
            Self::Concat => "concat",
            Self::Dropout { .. } => "dropout",
            Self::Identity => "identity",
        }
    }

    /// How many inputs the op takes: `(min, max)`.
    pub fn arity(&self) -> (usize, usize) {
        match self {
            Self::Input { .. } => (0, 0),
            Self::Add | Self::Concat => (2, usize::MAX),
            _ => (1, 1),
        }
    }

    /// Checks the hyper-parameters and the input shapes, and returns the output shape.
    ///
    /// The error message says what does not fit; the caller adds the node name.
    pub fn infer_shape(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        let (lo, hi) = self.arity();
        if inputs.len() < lo || inputs.len() > hi {
            return Err(if lo == hi {
                format!(
                    "{} takes {lo} input(s), got {}",
                    self.kind_name(),
                    inputs.len()
                )
            } else {
                format!(
                    "{} takes at least {lo} inputs, got {}",
                    self.kind_name(),
                    inputs.len()
                )
            });
        }
        match self {
            Self::Input { shape } => {
                if shape.numel() == 0 {
                    return Err(format!("input shape [{shape}] has no values"));
                }
                Ok(*shape)
            }
            Self::Conv2d {
                in_channels,
                out_channels,
                kernel,
                stride,
                padding,
                dilation,
                groups,
                ..
            } => {
                if *in_channels == 0 || *out_channels == 0 {
                    return Err(format!(
                        "conv2d needs at least one input and one output channel, got {in_channels} -> {out_channels}"
                    ));
                }
                if *groups == 0 || in_channels % groups != 0 || out_channels % groups != 0 {
                    return Err(format!(
                        "conv2d groups = {groups} must divide both in_channels = {in_channels} and out_channels = {out_channels}"
                    ));
                }
                let [c, h, w] = spatial(inputs[0], "conv2d")?;
                if c != *in_channels {
                    return Err(format!(
                        "conv2d expects {in_channels} input channels, its input has shape [{}]",
                        inputs[0]
                    ));
                }
                let oh = window_output_len(
                    h,
                    (padding[0], padding[2]),
                    kernel[0],
                    stride[0],
                    dilation[0],
                    false,
                );
                let ow = window_output_len(
                    w,
                    (padding[1], padding[3]),
                    kernel[1],
                    stride[1],
                    dilation[1],
                    false,
                );
                match (oh, ow) {
                    (Some(oh), Some(ow)) => Ok(FeatureShape::Spatial([*out_channels, oh, ow])),
                    _ => Err(format!(
                        "conv2d kernel {kernel:?} (stride {stride:?}, padding {padding:?}, dilation {dilation:?}) does not fit input [{}]",
                        inputs[0]
                    )),
                }
            }
            Self::Linear {
                in_features,
                out_features,
                ..
            } => {
                if *in_features == 0 || *out_features == 0 {
                    return Err(format!(
                        "linear needs at least one input and one output feature, got {in_features} -> {out_features}"
                    ));
                }
                match inputs[0] {
                    FeatureShape::Flat(f) if f == *in_features => {
                        Ok(FeatureShape::Flat(*out_features))
                    }
                    FeatureShape::Flat(f) => Err(format!(
                        "linear expects {in_features} input features, its input has {f}"
                    )),
                    s => Err(format!(
                        "linear expects a flat input of {in_features} features, got a map of shape [{s}]; add a flatten node"
                    )),
                }
            }
            Self::BatchNorm {
                features,
                epsilon,
                momentum,
            } => {
                if !(epsilon.is_finite() && *epsilon > 0.0) {
                    return Err(format!(
                        "batch_norm epsilon must be finite and positive, got {epsilon}"
                    ));
                }
                if !(momentum.is_finite() && (0.0..=1.0).contains(momentum)) {
                    return Err(format!(
                        "batch_norm momentum must be in [0, 1], got {momentum}"
                    ));
                }
                if inputs[0].channels() != *features {
                    return Err(format!(
                        "batch_norm has {features} features, its input has shape [{}]",
                        inputs[0]
                    ));
                }
                Ok(inputs[0])
            }
            Self::Relu | Self::Identity => Ok(inputs[0]),
            Self::Dropout { prob } => {
                if !(prob.is_finite() && (0.0..1.0).contains(prob)) {
                    return Err(format!("dropout probability must be in [0, 1), got {prob}"));
                }
                Ok(inputs[0])
            }
            Self::MaxPool2d {
                kernel,
                stride,
                padding,
                dilation,
                ceil_mode,
            } => {
                let [c, h, w] = spatial(inputs[0], "max_pool2d")?;
                check_pool_padding(kernel, padding)?;
                let oh = window_output_len(
                    h,
                    (padding[0], padding[2]),
                    kernel[0],
                    stride[0],
                    dilation[0],
                    *ceil_mode,
                );
                let ow = window_output_len(
                    w,
                    (padding[1], padding[3]),
                    kernel[1],
                    stride[1],
                    dilation[1],
                    *ceil_mode,
                );
                match (oh, ow) {
                    (Some(oh), Some(ow)) => Ok(FeatureShape::Spatial([c, oh, ow])),
                    _ => Err(format!(
                        "max_pool2d window {kernel:?} (stride {stride:?}, padding {padding:?}) does not fit input [{}]",
                        inputs[0]
                    )),
                }
            }
            Self::AvgPool2d {
                kernel,
                stride,
                padding,
                ceil_mode,
                ..
            } => {
                let [c, h, w] = spatial(inputs[0], "avg_pool2d")?;
                check_pool_padding(kernel, padding)?;
                let oh = window_output_len(
                    h,
                    (padding[0], padding[2]),
                    kernel[0],
                    stride[0],
                    1,
                    *ceil_mode,
                );
                let ow = window_output_len(
                    w,
                    (padding[1], padding[3]),
                    kernel[1],
                    stride[1],
                    1,
                    *ceil_mode,
                );
                match (oh, ow) {
                    (Some(oh), Some(ow)) => Ok(FeatureShape::Spatial([c, oh, ow])),
                    _ => Err(format!(
                        "avg_pool2d window {kernel:?} (stride {stride:?}, padding {padding:?}) does not fit input [{}]",
                        inputs[0]
                    )),
                }
            }
            Self::AdaptiveAvgPool2d { output } => {
                let [c, _, _] = spatial(inputs[0], "adaptive_avg_pool2d")?;
                if output[0] == 0 || output[1] == 0 {
                    return Err(format!(
                        "adaptive_avg_pool2d output {output:?} must be positive"
                    ));
                }
                Ok(FeatureShape::Spatial([c, output[0], output[1]]))
            }
            Self::Flatten => Ok(FeatureShape::Flat(inputs[0].numel())),
            Self::Add => {
                let first = inputs[0];
                if let Some(other) = inputs.iter().find(|s| **s != first) {
                    return Err(format!(
                        "add needs inputs of one shape, got [{first}] and [{other}]"
                    ));
                }
                Ok(first)
            }
            Self::Concat => {
                let first = inputs[0];
                let mut channels = 0;
                for s in inputs {
                    let same_layout = match (first, s) {
                        (FeatureShape::Flat(_), FeatureShape::Flat(_)) => true,
                        (FeatureShape::Spatial([_, h, w]), FeatureShape::Spatial([_, h2, w2])) => {
                            h == *h2 && w == *w2
                        }
                        _ => false,
                    };
                    if !same_layout {
                        return Err(format!(
                            "concat needs inputs that differ only in channels, got [{first}] and [{s}]"
                        ));
                    }
                    channels += s.channels();
                }
                Ok(first.with_channels(channels))
            }
        }
    }

    /// Number of multiply-accumulate operations of this op for one sample, given its input and
    /// output shapes (0 for ops without multiplications).
    pub fn macs(&self, inputs: &[FeatureShape], output: FeatureShape) -> u64 {
        match self {
            Self::Conv2d {
                in_channels,
                kernel,
                groups,
                ..
            } => {
                let per_output = (in_channels / groups) * kernel[0] * kernel[1];
                (output.numel() * per_output) as u64
            }
            Self::Linear {
                in_features,
                out_features,
                ..
            } => (in_features * out_features) as u64,
            _ => {
                let _ = inputs;
                0
            }
        }
    }
}

fn spatial(shape: FeatureShape, op: &str) -> Result<[usize; 3], String> {
    match shape {
        FeatureShape::Spatial(s) => Ok(s),
        FeatureShape::Flat(f) => Err(format!(
            "{op} expects a [channels, height, width] map, its input is a flat vector of {f} features"
        )),
    }
}

fn check_pool_padding(kernel: &[usize; 2], padding: &Padding2d) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(inc: usize, outc: usize, k: usize, s: usize, p: usize, g: usize) -> OpSpec {
        OpSpec::Conv2d {
            in_channels: inc,
            out_channels: outc,
            kernel: [k, k],
            stride: [s, s],
            padding: [p; 4],
            dilation: [1, 1],
            groups: g,
            bias: true,
        }
    }

    #[test]
    fn conv_shapes() {
        let x = FeatureShape::spatial(3, 32, 32);
        assert_eq!(
            conv(3, 16, 3, 1, 1, 1).infer_shape(&[x]),
            Ok(FeatureShape::spatial(16, 32, 32))
        );
        assert_eq!(
            conv(3, 16, 3, 2, 1, 1).infer_shape(&[x]),
            Ok(FeatureShape::spatial(16, 16, 16))
        );
        let err = conv(4, 16, 3, 1, 1, 1).infer_shape(&[x]).unwrap_err();
        assert!(err.contains("expects 4 input channels"), "{err}");
        let err = conv(3, 16, 3, 1, 1, 2).infer_shape(&[x]).unwrap_err();
        assert!(err.contains("groups"), "{err}");
        let err = conv(3, 16, 3, 1, 1, 1)
            .infer_shape(&[FeatureShape::flat(3)])
            .unwrap_err();
        assert!(err.contains("flat vector"), "{err}");
    }

    #[test]
    fn concat_and_add() {
        let a = FeatureShape::spatial(3, 8, 8);
        let b = FeatureShape::spatial(5, 8, 8);
        assert_eq!(
            OpSpec::Concat.infer_shape(&[a, b]),
            Ok(FeatureShape::spatial(8, 8, 8))
        );
        assert!(OpSpec::Add.infer_shape(&[a, b]).is_err());
        assert!(OpSpec::Add.infer_shape(&[a]).is_err());
        assert!(
            OpSpec::Concat
                .infer_shape(&[a, FeatureShape::spatial(3, 4, 4)])
                .is_err()
        );
    }

    #[test]
    fn linear_needs_flat() {
        let op = OpSpec::Linear {
            in_features: 12,
            out_features: 4,
            bias: true,
        };
        assert_eq!(
            op.infer_shape(&[FeatureShape::flat(12)]),
            Ok(FeatureShape::flat(4))
        );
        assert!(
            op.infer_shape(&[FeatureShape::spatial(3, 2, 2)])
                .unwrap_err()
                .contains("flatten")
        );
    }

    #[test]
    fn serde_round_trip() {
        let op = conv(3, 8, 3, 1, 1, 1);
        let json = serde_json::to_string(&op).unwrap();
        assert!(json.contains("\"op\":\"conv2d\""));
        let back: OpSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, op);
    }
}
