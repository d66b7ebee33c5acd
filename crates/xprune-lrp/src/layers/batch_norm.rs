//! Batch normalisation in inference, seen as a per-channel affine map `y = x * scale + shift`
//! (when it cannot be folded into the layer before it, see [`crate::canonize`]).

use crate::engine::{Hints, LinearLayer, propagate};
use crate::error::Result;
use crate::modifier::ParamMod;
use crate::rule::Rule;
use burn::nn::BatchNorm;
use burn::tensor::Tensor;

/// A per-channel affine map `y = x * scale + shift` over dimension 1 (channels, or features of
/// flat inputs): batch norm in inference. Rules see `scale` as the weight and `shift` as the
/// bias.
#[derive(Clone, Debug)]
pub struct AffineChannels {
    /// Per-channel factor `gamma / sqrt(var + eps)`.
    pub scale: Tensor<1>,
    /// Per-channel offset `beta - mean * scale`.
    pub shift: Tensor<1>,
}

impl AffineChannels {
    /// The inference-mode map of a Burn batch norm (running statistics).
    pub fn from_batch_norm(bn: &BatchNorm) -> Self {
        let device = bn.gamma.val().device();
        let var = bn.running_var.value().to_device(&device);
        let mean = bn.running_mean.value().to_device(&device);
        let scale = bn.gamma.val() / var.add_scalar(bn.epsilon).sqrt();
        let shift = bn.beta.val() - mean * scale.clone();
        Self { scale, shift }
    }

    fn channels(&self) -> usize {
        self.scale.dims()[0]
    }

    fn broadcast<const D: usize>(&self, t: Tensor<1>) -> Tensor<D> {
        let mut dims = [1usize; D];
        dims[1] = self.channels();
        t.reshape(dims)
    }
}

impl<const D: usize> LinearLayer<D, D> for AffineChannels {
    fn describe(&self) -> String {
        format!("batch_norm over {} channels", self.channels())
    }

    fn output_dims(&self, input: [usize; D]) -> std::result::Result<[usize; D], String> {
        if D < 2 || input[1] != self.channels() {
            return Err(format!(
                "input has shape {input:?}, batch norm expects {} channels in dimension 1",
                self.channels()
            ));
        }
        Ok(input)
    }

    fn has_weight(&self) -> bool {
        true
    }

    fn has_bias(&self) -> bool {
        true
    }

    fn forward(&self, x: Tensor<D>, weight: &ParamMod) -> Tensor<D> {
        x * self.broadcast::<D>(weight.apply(self.scale.clone()))
    }

    fn bias(&self, bias: &ParamMod) -> Option<Tensor<D>> {
        Some(self.broadcast::<D>(bias.apply(self.shift.clone())))
    }

    fn transpose(&self, s: Tensor<D>, weight: &ParamMod, _input: [usize; D]) -> Tensor<D> {
        s * self.broadcast::<D>(weight.apply(self.scale.clone()))
    }
}

/// Relevance propagation through Burn's batch norm in inference mode.
pub trait BatchNormLrp {
    /// The relevance of `input` (`[batch, C, ...]`) given the relevance of the layer's output,
    /// with `rule` (the scale acts as the weight, the shift as the bias).
    fn relevance<const D: usize>(
        &self,
        input: &Tensor<D>,
        relevance_out: Tensor<D>,
        rule: &dyn Rule,
    ) -> Result<Tensor<D>>;
}

impl BatchNormLrp for BatchNorm {
    fn relevance<const D: usize>(
        &self,
        input: &Tensor<D>,
        relevance_out: Tensor<D>,
        rule: &dyn Rule,
    ) -> Result<Tensor<D>> {
        propagate(
            &AffineChannels::from_batch_norm(self),
            input,
            relevance_out,
            rule,
            Hints::default(),
        )
    }
}
