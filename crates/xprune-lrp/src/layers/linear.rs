//! Fully connected layers (`burn::nn::Linear`, weight stored `[in, out]`).

use crate::engine::{Hints, LinearLayer, propagate};
use crate::error::Result;
use crate::modifier::ParamMod;
use crate::rule::Rule;
use burn::nn::Linear;
use burn::tensor::Tensor;

impl LinearLayer<2, 2> for Linear {
    fn describe(&self) -> String {
        let [i, o] = self.weight.dims();
        format!("linear {i}->{o}")
    }

    fn output_dims(
        &self,
        [batch, features]: [usize; 2],
    ) -> std::result::Result<[usize; 2], String> {
        let [i, o] = self.weight.dims();
        if features != i {
            return Err(format!(
                "input has {features} features, the layer expects {i}"
            ));
        }
        Ok([batch, o])
    }

    fn has_weight(&self) -> bool {
        true
    }

    fn has_bias(&self) -> bool {
        self.bias.is_some()
    }

    fn forward(&self, x: Tensor<2>, weight: &ParamMod) -> Tensor<2> {
        x.matmul(weight.apply(self.weight.val()))
    }

    fn bias(&self, bias: &ParamMod) -> Option<Tensor<2>> {
        self.bias.as_ref().map(|b| {
            let b = bias.apply(b.val());
            let [o] = b.dims();
            b.reshape([1, o])
        })
    }

    fn transpose(&self, s: Tensor<2>, weight: &ParamMod, _input: [usize; 2]) -> Tensor<2> {
        s.matmul(weight.apply(self.weight.val()).transpose())
    }
}

/// Relevance propagation through Burn's fully connected layer.
pub trait LinearLrp {
    /// The relevance of `input` (`[batch, in]`) given the relevance of the layer's output
    /// (`[batch, out]`), with `rule`.
    fn relevance(
        &self,
        input: &Tensor<2>,
        relevance_out: Tensor<2>,
        rule: &dyn Rule,
    ) -> Result<Tensor<2>>;
}

impl LinearLrp for Linear {
    fn relevance(
        &self,
        input: &Tensor<2>,
        relevance_out: Tensor<2>,
        rule: &dyn Rule,
    ) -> Result<Tensor<2>> {
        propagate(self, input, relevance_out, rule, Hints::default())
    }
}
