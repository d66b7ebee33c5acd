//! Layers that move relevance without a rule: ReLU (passes it, as Zennit's composites do for
//! activations), flatten (reshapes), channel concatenation (splits by channel slices).

use crate::error::{Result, shape_err};
use burn::nn::Relu;
use burn::tensor::Tensor;

/// Relevance propagation through Burn's ReLU: the relevance passes unchanged.
pub trait ReluLrp {
    /// The relevance of `input`: `relevance_out`, after checking that the shapes agree.
    fn relevance<const D: usize>(
        &self,
        input: &Tensor<D>,
        relevance_out: Tensor<D>,
    ) -> Result<Tensor<D>>;
}

impl ReluLrp for Relu {
    fn relevance<const D: usize>(
        &self,
        input: &Tensor<D>,
        relevance_out: Tensor<D>,
    ) -> Result<Tensor<D>> {
        if input.dims() != relevance_out.dims() {
            return Err(shape_err(
                "relu",
                format!(
                    "relevance has shape {:?}, the input has {:?}",
                    relevance_out.dims(),
                    input.dims()
                ),
            ));
        }
        Ok(relevance_out)
    }
}

/// Relevance of the inputs of a channel concatenation (dimension 1): the slices of
/// `relevance` that each input produced, in order.
pub fn concat_relevance<const D: usize>(
    inputs: &[Tensor<D>],
    relevance: Tensor<D>,
) -> Result<Vec<Tensor<D>>> {
    let sizes: Vec<usize> = inputs.iter().map(|t| t.dims()[1]).collect();
    let mut expected = relevance.dims();
    if let Some(first) = inputs.first() {
        expected = first.dims();
        expected[1] = sizes.iter().sum();
    }
    if inputs.is_empty() || relevance.dims() != expected {
        return Err(shape_err(
            "concat",
            format!(
                "relevance has shape {:?}, the concatenation of inputs with {sizes:?} channels has {expected:?}",
                relevance.dims()
            ),
        ));
    }
    Ok(relevance.split_with_sizes(sizes, 1))
}
