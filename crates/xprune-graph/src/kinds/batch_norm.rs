//! `batch_norm`: Burn's batch normalisation (`burn::nn::BatchNorm`) over the channels of
//! vectors and channels-first maps. In inference it is a per-channel affine map
//! `y = x * scale + shift`, which relevance propagation sees as a linear map (when the
//! canonizer has not folded it into the layer before it).

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, unsupported};
use crate::kind::param::{param_from, select_param, select_state, state_from, unknown_role};
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, Counts, Fusion, Imported, Kind, KindSpec, LinearMap,
    LrpView, Modified, OpImport, OpWriter, ParamInfo, ParamMod, ParamTensor, RuleClass,
};
use crate::kinds::util::{constant_of, one};
use crate::map_activation;
use crate::registry::Layer;
use crate::shape::{FeatureShape, Layout};
use burn::module::{Param, RunningState};
use burn::nn::BatchNorm;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of a batch normalisation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchNormOp {
    /// Number of channels.
    pub features: usize,
    /// Stabiliser added to the variance.
    pub epsilon: f64,
    /// Running statistics update rate (PyTorch's convention: the weight of the batch
    /// statistic).
    pub momentum: f64,
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

impl KindSpec for BatchNormOp {
    type Layer = BatchNorm;
    const NAME: &'static str = "batch_norm";
    const ONNX_OPS: &'static [&'static str] = &["BatchNormalization"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        let Self {
            features,
            epsilon,
            momentum,
        } = *self;
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(format!(
                "batch_norm epsilon must be finite and positive, got {epsilon}"
            ));
        }
        if !(momentum.is_finite() && (0.0..=1.0).contains(&momentum)) {
            return Err(format!(
                "batch_norm momentum must be in [0, 1], got {momentum}"
            ));
        }
        let x = inputs[0];
        if !matches!(x.layout(), Layout::Flat | Layout::Spatial) {
            return Err(format!(
                "batch_norm normalises vectors or channels-first maps, its input has shape [{x}]"
            ));
        }
        if x.channels() != features {
            return Err(format!(
                "batch_norm has {features} features, its input has shape [{x}]"
            ));
        }
        Ok(x)
    }

    fn counts(&self, _inputs: &[FeatureShape], output: FeatureShape) -> Counts {
        let c = output.channels() as u64;
        Counts {
            params: 2 * c,
            buffers: 2 * c,
            macs: 0,
        }
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise { unit: 1 }
    }

    fn init(&self, _init: &mut Initializer, device: &Device) -> BatchNorm {
        let n = self.features;
        batch_norm(
            vec![1.0; n],
            vec![0.0; n],
            vec![0.0; n],
            vec![1.0; n],
            self.epsilon,
            self.momentum,
            device,
        )
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some(import(node))
    }
}

/// An `f32` attribute as the `f64` with the shortest decimal form (`1e-5`, not
/// `9.99999974737875e-6`).
pub(crate) fn readable_f64(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(v as f64)
}

/// `1 - m` for an `f32` momentum, rounded to 9 decimals (`0.9` gives `0.1`).
fn one_minus(m: f32) -> f64 {
    ((1.0 - readable_f64(m)) * 1e9).round() / 1e9
}

fn import(node: &OpImport<'_>) -> Result<Imported, ImportError> {
    node.check_attrs(&["epsilon", "momentum", "training_mode"])?;
    let a = node.attrs;
    let (x, shape) = node.act(0, "X")?;
    let training = a.int("training_mode", 0)?;
    if training != 0 {
        return Err(unsupported(
            "training_mode",
            training,
            "only inference mode (0)",
        ));
    }
    let epsilon = a.float("epsilon", 1e-5)?;
    let momentum = a.float("momentum", 0.9)?;
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(unsupported("epsilon", epsilon, "a positive finite epsilon"));
    }
    if !(0.0..=1.0).contains(&momentum) {
        return Err(unsupported("momentum", momentum, "a momentum in [0, 1]"));
    }
    let c = shape.channels();
    let mut vectors = Vec::with_capacity(4);
    for (i, what) in [(1, "scale"), (2, "B"), (3, "input_mean"), (4, "input_var")] {
        let t = node.constant(i, what)?;
        if t.dims != [c] {
            return Err(format!(
                "{what} must have shape [{c}] (the input's channels), found {}",
                t.dims_string()
            )
            .into());
        }
        vectors.push(t.to_f32());
    }
    let var = vectors.pop().expect("four vectors");
    let mean = vectors.pop().expect("four vectors");
    let beta = vectors.pop().expect("four vectors");
    let gamma = vectors.pop().expect("four vectors");
    // ONNX: running = running * momentum + batch * (1 - momentum); Burn uses the PyTorch
    // convention where momentum weighs the batch statistic.
    let layer = batch_norm(
        gamma,
        beta,
        mean,
        var,
        readable_f64(epsilon),
        one_minus(momentum),
        node.device,
    );
    Ok(Imported::Node {
        layer: Layer::BatchNorm(layer),
        inputs: vec![x],
    })
}

/// Batch norm in inference mode (running statistics).
pub(crate) fn batch_norm_eval<const D: usize>(bn: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
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

impl Kind for BatchNorm {
    type Spec = BatchNormOp;

    fn spec(&self) -> BatchNormOp {
        BatchNormOp {
            features: self.gamma.dims()[0],
            epsilon: self.epsilon,
            momentum: self.momentum,
        }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, training: bool) -> Result<Activation, String> {
        let x = one(inputs, "batch_norm")?;
        if !matches!(x.layout(), Layout::Flat | Layout::Spatial) {
            return Err("batch_norm expects vectors or channels-first maps".into());
        }
        Ok(if training {
            map_activation!(x, t => self.forward(t))
        } else {
            map_activation!(x, t => batch_norm_eval(self, t))
        })
    }

    fn params(&self) -> Vec<ParamInfo> {
        vec![
            ParamInfo::trainable("gamma", &self.gamma.val(), Some(0)),
            ParamInfo::trainable("beta", &self.beta.val(), Some(0)),
            ParamInfo::buffer("running_mean", &self.running_mean.value(), Some(0)),
            ParamInfo::buffer("running_var", &self.running_var.value(), Some(0)),
        ]
    }

    fn set_param(&mut self, role: &str, data: TensorData, device: &Device) -> Result<(), String> {
        match role {
            "gamma" => self.gamma = param_from(data, device)?,
            "beta" => self.beta = param_from(data, device)?,
            "running_mean" => self.running_mean = state_from(data, device)?,
            "running_var" => self.running_var = state_from(data, device)?,
            _ => return Err(unknown_role("batch_norm", role)),
        }
        Ok(())
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        cut.check_elementwise()?;
        let mut bn = self.clone();
        if !cut.removed_output.is_empty() {
            let kept = cut.kept_output();
            bn.gamma = select_param(&bn.gamma, 0, &kept);
            bn.beta = select_param(&bn.beta, 0, &kept);
            // New states: Burn's running states are shared between clones.
            bn.running_mean = select_state(&bn.running_mean, 0, &kept);
            bn.running_var = select_state(&bn.running_var, 0, &kept);
        }
        Ok(Layer::BatchNorm(bn))
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Linear {
            map: Box::new(AffineChannels::from_batch_norm(self)),
            class: RuleClass::Affine,
        }
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        false
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let inputs = vec![
            w.input(0),
            w.constant("gamma", constant_of(&self.gamma.val())),
            w.constant("beta", constant_of(&self.beta.val())),
            w.constant("running_mean", constant_of(&self.running_mean.value())),
            w.constant("running_var", constant_of(&self.running_var.value())),
        ];
        w.op(
            "BatchNormalization",
            inputs,
            vec![
                ("epsilon", Attr::Float(self.epsilon as f32)),
                // ONNX momentum weighs the running statistic, Burn's the batch statistic.
                ("momentum", Attr::Float((1.0 - self.momentum) as f32)),
            ],
        );
        Ok(())
    }
}

/// A per-channel affine map `y = x * scale + shift` over the channel axis: batch norm in
/// inference, layer scale. Rules see `scale` as the weight and `shift` as the bias.
#[derive(Clone, Debug)]
pub struct AffineChannels {
    /// Per-channel factor (`gamma / sqrt(var + eps)` for a batch norm).
    pub scale: Tensor<1>,
    /// Per-channel offset (`beta - mean * scale`), if any.
    pub shift: Option<Tensor<1>>,
}

impl AffineChannels {
    /// The inference-mode map of a Burn batch norm (running statistics).
    pub fn from_batch_norm(bn: &BatchNorm) -> Self {
        let device = bn.gamma.val().device();
        let var = bn.running_var.value().to_device(&device);
        let mean = bn.running_mean.value().to_device(&device);
        let scale = bn.gamma.val() / var.add_scalar(bn.epsilon).sqrt();
        let shift = bn.beta.val() - mean * scale.clone();
        Self {
            scale,
            shift: Some(shift),
        }
    }
}

fn row(t: Tensor<1>) -> Tensor<2> {
    let [c] = t.dims();
    t.reshape([1, c])
}

impl LinearMap for AffineChannels {
    fn has_weight(&self) -> bool {
        true
    }

    fn has_bias(&self) -> bool {
        self.shift.is_some()
    }

    fn modify(&self, weight: &ParamMod, bias: &ParamMod) -> Modified {
        Modified {
            weight: Some(ParamTensor::R1(weight.apply(self.scale.clone()))),
            bias: match (&self.shift, bias.is_zero()) {
                (Some(s), false) => Some(ParamTensor::R1(bias.apply(s.clone()))),
                _ => None,
            },
        }
    }

    fn forward(&self, x: &Activation, _at: &Activation, p: &Modified) -> Activation {
        let scale = p
            .weight
            .as_ref()
            .and_then(|w| w.r1().cloned())
            .unwrap_or_else(|| self.scale.clone());
        let out = x.clone().scale_channels(row(scale));
        match p.bias.as_ref().and_then(|b| b.r1().cloned()) {
            Some(b) => out.shift_channels(row(b)),
            None => out,
        }
    }

    fn bias(&self, p: &Modified, at: &Activation) -> Option<Activation> {
        let b = p.bias.as_ref()?.r1()?.clone();
        Some(Activation::channel_vector(b, at.layout()))
    }

    fn transpose(&self, s: Activation, _at: &Activation, p: &Modified) -> Activation {
        let scale = p
            .weight
            .as_ref()
            .and_then(|w| w.r1().cloned())
            .unwrap_or_else(|| self.scale.clone());
        s.scale_channels(row(scale))
    }
}
