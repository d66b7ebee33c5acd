//! [`Layer`]: one node's Burn module, with its forward pass and its hyper-parameters.

use crate::activation::Activation;
use crate::init::Initializer;
use crate::op::{OpSpec, Padding2d};
use crate::ops::{Add, Concat, Flatten, Input};
use crate::shape::FeatureShape;
use burn::module::{Module, Param, RunningState};
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
use burn::nn::{BatchNorm, Dropout, Identity, Linear, PaddingConfig2d, Relu};
use burn::tensor::{Device, Tensor, TensorData};

/// The Burn module held by a graph node.
///
/// Parameterised nodes hold Burn's own layer types, so everything Burn offers for modules
/// (devices, optimizers, parameter visitors) works on them, and a user who knows Burn reads
/// them directly.
#[derive(Module, Debug)]
pub enum Layer {
    /// The graph input.
    Input(Input),
    /// 2-D convolution.
    Conv2d(Conv2d),
    /// Fully connected layer; Burn stores its weight as `[in, out]`.
    Linear(Linear),
    /// Batch normalisation.
    BatchNorm(BatchNorm),
    /// Rectified linear unit.
    Relu(Relu),
    /// 2-D max pooling.
    MaxPool2d(MaxPool2d),
    /// 2-D average pooling.
    AvgPool2d(AvgPool2d),
    /// Adaptive average pooling.
    AdaptiveAvgPool2d(AdaptiveAvgPool2d),
    /// Flatten to vectors.
    Flatten(Flatten),
    /// Element-wise sum.
    Add(Add),
    /// Channel concatenation.
    Concat(Concat),
    /// Dropout (training only).
    Dropout(Dropout),
    /// Identity.
    Identity(Identity),
}

/// Padding `[top, left, bottom, right]` of a Burn padding configuration for a given input.
pub fn resolve_padding(
    padding: &PaddingConfig2d,
    [h, w]: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
) -> Padding2d {
    fn same(kernel: usize, stride: usize, size: usize) -> (usize, usize) {
        let out = size.div_ceil(stride.max(1));
        let needed = (out.saturating_sub(1)) * stride + kernel;
        let total = needed.saturating_sub(size);
        (total / 2, total - total / 2)
    }
    match padding {
        PaddingConfig2d::Valid => [0; 4],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [*top, *left, *bottom, *right],
        PaddingConfig2d::Same => {
            let (t, b) = same(kernel[0], stride[0], h);
            let (l, r) = same(kernel[1], stride[1], w);
            [t, l, b, r]
        }
    }
}

fn explicit(p: Padding2d) -> PaddingConfig2d {
    PaddingConfig2d::Explicit(p[0], p[1], p[2], p[3])
}

fn spatial_hw(shape: Option<FeatureShape>) -> [usize; 2] {
    match shape {
        Some(FeatureShape::Spatial([_, h, w])) => [h, w],
        _ => [0, 0],
    }
}

impl Layer {
    /// Creates the layer of `op` with seeded initial weights on `device`.
    ///
    /// Convolutions and linear layers get He-uniform weights and PyTorch-style biases; batch
    /// norms start as the identity (`gamma = 1`, `beta = 0`, mean 0, variance 1).
    pub fn from_op(op: &OpSpec, init: &mut Initializer, device: &Device) -> Self {
        match op {
            OpSpec::Input { .. } => Self::Input(Input),
            OpSpec::Conv2d {
                in_channels,
                out_channels,
                kernel,
                stride,
                padding,
                dilation,
                groups,
                bias,
            } => {
                let fan_in = in_channels / groups * kernel[0] * kernel[1];
                let weight = init.he_uniform(
                    [*out_channels, in_channels / groups, kernel[0], kernel[1]],
                    fan_in,
                    device,
                );
                let bias = bias.then(|| init.bias(*out_channels, fan_in, device));
                Self::Conv2d(Conv2d {
                    weight,
                    bias,
                    stride: *stride,
                    kernel_size: *kernel,
                    dilation: *dilation,
                    groups: *groups,
                    padding: explicit(*padding),
                })
            }
            OpSpec::Linear {
                in_features,
                out_features,
                bias,
            } => {
                let weight = init.he_uniform([*in_features, *out_features], *in_features, device);
                let bias = bias.then(|| init.bias(*out_features, *in_features, device));
                Self::Linear(Linear { weight, bias })
            }
            OpSpec::BatchNorm {
                features,
                epsilon,
                momentum,
            } => Self::BatchNorm(batch_norm(
                vec![1.0; *features],
                vec![0.0; *features],
                vec![0.0; *features],
                vec![1.0; *features],
                *epsilon,
                *momentum,
                device,
            )),
            OpSpec::Relu => Self::Relu(Relu),
            OpSpec::MaxPool2d {
                kernel,
                stride,
                padding,
                dilation,
                ceil_mode,
            } => Self::MaxPool2d(MaxPool2d {
                stride: *stride,
                kernel_size: *kernel,
                padding: explicit(*padding),
                dilation: *dilation,
                ceil_mode: *ceil_mode,
            }),
            OpSpec::AvgPool2d {
                kernel,
                stride,
                padding,
                count_include_pad,
                ceil_mode,
            } => Self::AvgPool2d(AvgPool2d {
                stride: *stride,
                kernel_size: *kernel,
                padding: explicit(*padding),
                count_include_pad: *count_include_pad,
                ceil_mode: *ceil_mode,
            }),
            OpSpec::AdaptiveAvgPool2d { output } => Self::AdaptiveAvgPool2d(AdaptiveAvgPool2d {
                output_size: *output,
            }),
            OpSpec::Flatten => Self::Flatten(Flatten),
            OpSpec::Add => Self::Add(Add),
            OpSpec::Concat => Self::Concat(Concat),
            OpSpec::Dropout { prob } => Self::Dropout(Dropout {
                prob: *prob,
                training: Param::from_bool(true),
            }),
            OpSpec::Identity => Self::Identity(Identity),
        }
    }

    /// The hyper-parameters of this layer. `input` is the shape of its first input (needed to
    /// resolve `Same` padding; `None` is fine for explicit padding).
    pub fn op_spec(&self, input: Option<FeatureShape>) -> OpSpec {
        match self {
            Self::Input(_) => OpSpec::Input {
                shape: input.unwrap_or(FeatureShape::Flat(0)),
            },
            Self::Conv2d(conv) => {
                let [out_channels, in_per_group, kh, kw] = conv.weight.dims();
                OpSpec::Conv2d {
                    in_channels: in_per_group * conv.groups,
                    out_channels,
                    kernel: [kh, kw],
                    stride: conv.stride,
                    padding: resolve_padding(
                        &conv.padding,
                        spatial_hw(input),
                        [kh, kw],
                        conv.stride,
                    ),
                    dilation: conv.dilation,
                    groups: conv.groups,
                    bias: conv.bias.is_some(),
                }
            }
            Self::Linear(linear) => {
                let [in_features, out_features] = linear.weight.dims();
                OpSpec::Linear {
                    in_features,
                    out_features,
                    bias: linear.bias.is_some(),
                }
            }
            Self::BatchNorm(bn) => OpSpec::BatchNorm {
                features: bn.gamma.dims()[0],
                epsilon: bn.epsilon,
                momentum: bn.momentum,
            },
            Self::Relu(_) => OpSpec::Relu,
            Self::MaxPool2d(p) => OpSpec::MaxPool2d {
                kernel: p.kernel_size,
                stride: p.stride,
                padding: resolve_padding(&p.padding, spatial_hw(input), p.kernel_size, p.stride),
                dilation: p.dilation,
                ceil_mode: p.ceil_mode,
            },
            Self::AvgPool2d(p) => OpSpec::AvgPool2d {
                kernel: p.kernel_size,
                stride: p.stride,
                padding: resolve_padding(&p.padding, spatial_hw(input), p.kernel_size, p.stride),
                count_include_pad: p.count_include_pad,
                ceil_mode: p.ceil_mode,
            },
            Self::AdaptiveAvgPool2d(p) => OpSpec::AdaptiveAvgPool2d {
                output: p.output_size,
            },
            Self::Flatten(_) => OpSpec::Flatten,
            Self::Add(_) => OpSpec::Add,
            Self::Concat(_) => OpSpec::Concat,
            Self::Dropout(d) => OpSpec::Dropout { prob: d.prob },
            Self::Identity(_) => OpSpec::Identity,
        }
    }

    /// Rewrites `Same`/`Valid` padding as explicit padding for the given input shape, so that
    /// the padding of every layer in a graph can be read without knowing its input.
    pub fn with_explicit_padding(self, input: Option<FeatureShape>) -> Self {
        let hw = spatial_hw(input);
        match self {
            Self::Conv2d(mut conv) => {
                let [_, _, kh, kw] = conv.weight.dims();
                conv.padding = explicit(resolve_padding(&conv.padding, hw, [kh, kw], conv.stride));
                Self::Conv2d(conv)
            }
            Self::MaxPool2d(mut p) => {
                p.padding = explicit(resolve_padding(&p.padding, hw, p.kernel_size, p.stride));
                Self::MaxPool2d(p)
            }
            Self::AvgPool2d(mut p) => {
                p.padding = explicit(resolve_padding(&p.padding, hw, p.kernel_size, p.stride));
                Self::AvgPool2d(p)
            }
            other => other,
        }
    }

    /// Short kind name (`conv2d`, `linear`, ...), the same as [`OpSpec::kind_name`].
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Input(_) => "input",
            Self::Conv2d(_) => "conv2d",
            Self::Linear(_) => "linear",
            Self::BatchNorm(_) => "batch_norm",
            Self::Relu(_) => "relu",
            Self::MaxPool2d(_) => "max_pool2d",
            Self::AvgPool2d(_) => "avg_pool2d",
            Self::AdaptiveAvgPool2d(_) => "adaptive_avg_pool2d",
            Self::Flatten(_) => "flatten",
            Self::Add(_) => "add",
            Self::Concat(_) => "concat",
            Self::Dropout(_) => "dropout",
            Self::Identity(_) => "identity",
        }
    }

    /// Runs the layer on its inputs. Shapes were checked when the graph was built.
    ///
    /// In `training` mode batch norm uses (and, on an autodiff device, updates) batch
    /// statistics and dropout is active; otherwise batch norm uses its running statistics and
    /// dropout is the identity.
    pub fn forward(&self, inputs: Vec<Activation>, training: bool) -> Activation {
        match self {
            Self::Add(_) => inputs
                .into_iter()
                .reduce(|acc, x| acc.checked_add(x).expect("add inputs share a layout"))
                .expect("add has at least two inputs"),
            Self::Concat(_) => concat_channels(inputs),
            _ => {
                let first = inputs.into_iter().next().expect("layer has one input");
                self.forward_single(first, training)
            }
        }
    }

    fn forward_single(&self, x: Activation, training: bool) -> Activation {
        match self {
            Self::Input(_) | Self::Identity(_) | Self::Add(_) | Self::Concat(_) => x,
            Self::Conv2d(conv) => Activation::Spatial(conv.forward(spatial(x))),
            Self::Linear(linear) => Activation::Flat(linear.forward(x.flatten())),
            Self::BatchNorm(bn) => {
                if training {
                    x.map(|t| bn.forward(t), |t| bn.forward(t))
                } else {
                    x.map(|t| batch_norm_eval(bn, t), |t| batch_norm_eval(bn, t))
                }
            }
            Self::Relu(_) => x.map(
                burn::tensor::activation::relu,
                burn::tensor::activation::relu,
            ),
            Self::MaxPool2d(p) => Activation::Spatial(p.forward(spatial(x))),
            Self::AvgPool2d(p) => Activation::Spatial(p.forward(spatial(x))),
            Self::AdaptiveAvgPool2d(p) => Activation::Spatial(p.forward(spatial(x))),
            Self::Flatten(_) => Activation::Flat(x.flatten()),
            Self::Dropout(d) => {
                if training {
                    x.map(|t| d.forward(t), |t| d.forward(t))
                } else {
                    x
                }
            }
        }
    }

    /// The layer's tensors by role (`weight`, `bias`, `gamma`, `beta`, `running_mean`,
    /// `running_var`), as host data. Empty for parameter-free layers.
    pub fn tensors(&self) -> Vec<(&'static str, TensorData)> {
        match self {
            Self::Conv2d(conv) => {
                let mut out = vec![("weight", conv.weight.val().to_data())];
                if let Some(b) = &conv.bias {
                    out.push(("bias", b.val().to_data()));
                }
                out
            }
            Self::Linear(linear) => {
                let mut out = vec![("weight", linear.weight.val().to_data())];
                if let Some(b) = &linear.bias {
                    out.push(("bias", b.val().to_data()));
                }
                out
            }
            Self::BatchNorm(bn) => vec![
                ("gamma", bn.gamma.val().to_data()),
                ("beta", bn.beta.val().to_data()),
                ("running_mean", bn.running_mean.value().to_data()),
                ("running_var", bn.running_var.value().to_data()),
            ],
            _ => Vec::new(),
        }
    }

    /// Returns the layer with the tensor of the given role replaced. The caller checks shapes.
    pub fn with_tensor(
        self,
        role: &str,
        data: TensorData,
        device: &Device,
    ) -> Result<Self, String> {
        fn param<const D: usize>(data: TensorData, device: &Device) -> Param<Tensor<D>> {
            Param::from_tensor(Tensor::from_data(data, device))
        }
        match (self, role) {
            (Self::Conv2d(mut c), "weight") => {
                c.weight = param(data, device);
                Ok(Self::Conv2d(c))
            }
            (Self::Conv2d(mut c), "bias") => {
                c.bias = Some(param(data, device));
                Ok(Self::Conv2d(c))
            }
            (Self::Linear(mut l), "weight") => {
                l.weight = param(data, device);
                Ok(Self::Linear(l))
            }
            (Self::Linear(mut l), "bias") => {
                l.bias = Some(param(data, device));
                Ok(Self::Linear(l))
            }
            (Self::BatchNorm(mut b), "gamma") => {
                b.gamma = param(data, device);
                Ok(Self::BatchNorm(b))
            }
            (Self::BatchNorm(mut b), "beta") => {
                b.beta = param(data, device);
                Ok(Self::BatchNorm(b))
            }
            (Self::BatchNorm(mut b), "running_mean") => {
                b.running_mean = RunningState::new(Tensor::from_data(data, device));
                Ok(Self::BatchNorm(b))
            }
            (Self::BatchNorm(mut b), "running_var") => {
                b.running_var = RunningState::new(Tensor::from_data(data, device));
                Ok(Self::BatchNorm(b))
            }
            (layer, role) => Err(format!(
                "a {} layer has no tensor `{role}`",
                layer.kind_name()
            )),
        }
    }

    /// Expected dimensions of the tensor of a role, for checking loaded weights.
    pub fn tensor_dims(&self, role: &str) -> Option<Vec<usize>> {
        self.tensors()
            .into_iter()
            .find(|(r, _)| *r == role)
            .map(|(_, d)| d.shape().as_slice().to_vec())
    }
}

/// Builds a Burn batch norm from its four vectors.
pub fn batch_norm(
    gamma: Vec<f32>,
    beta: Vec<f32>,
    mean: Vec<f32>,
    var: Vec<f32>,
    epsilon: f64,
    momentum: f64,
    device: &Device,
) -> BatchNorm {
    let n = gamma.len();
    let t = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v, [n]), device);
    BatchNorm {
        gamma: Param::from_tensor(t(gamma)),
        beta: Param::from_tensor(t(beta)),
        training: Param::from_bool(true),
        running_mean: RunningState::new(t(mean)),
        running_var: RunningState::new(t(var)),
        momentum,
        epsilon,
    }
}

fn batch_norm_eval<const D: usize>(bn: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    burn::tensor::module::batch_norm(
        x,
        bn.gamma.val(),
        bn.beta.val(),
        bn.running_mean.value().to_device(&device),
        bn.running_var.value().to_device(&device),
        bn.epsilon,
    )
}

fn spatial(a: Activation) -> Tensor<4> {
    match a {
        Activation::Spatial(t) => t,
        Activation::Flat(t) => {
            // Shape inference rejects this; keep a defined behaviour anyway.
            let [b, f] = t.dims();
            t.reshape([b, f, 1, 1])
        }
    }
}

/// Concatenates activations of one layout along the channel dimension.
pub fn concat_channels(inputs: Vec<Activation>) -> Activation {
    if inputs.iter().all(|a| matches!(a, Activation::Flat(_))) {
        Activation::Flat(Tensor::cat(
            inputs.into_iter().map(|a| a.flatten()).collect(),
            1,
        ))
    } else {
        Activation::Spatial(Tensor::cat(inputs.into_iter().map(spatial).collect(), 1))
    }
}
