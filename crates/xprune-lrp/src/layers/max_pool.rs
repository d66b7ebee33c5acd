//! Max pooling (`burn::nn::pool::MaxPool2d`): relevance goes to the winner of each window.

use crate::error::{Result, shape_err};
use burn::nn::pool::MaxPool2d;
use burn::tensor::module::{max_pool2d_with_indices, max_pool2d_with_indices_backward};
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{IndexingUpdateOp, Tensor};
use xprune_graph::resolve_padding;

/// Relevance of a max pool's input: each output's relevance goes to the input position that
/// won its window (summed where windows overlap), as the gradient does.
pub(crate) fn max_pool_relevance(
    pool: &MaxPool2d,
    input: &Tensor<4>,
    relevance: Tensor<4>,
    name: &str,
) -> Result<Tensor<4>> {
    let [b, c, h, w] = input.dims();
    let p = resolve_padding(&pool.padding, [h, w], pool.kernel_size, pool.stride);
    let options = MaxPoolOptions::new(pool.kernel_size)
        .with_stride(pool.stride)
        .with_padding_pairs([(p[0], p[2]), (p[1], p[3])])
        .with_dilation(pool.dilation)
        .with_ceil_mode(pool.ceil_mode);
    let (out, indices) = max_pool2d_with_indices(input.clone(), options);
    if out.dims() != relevance.dims() {
        return Err(shape_err(
            name,
            format!(
                "relevance has shape {:?}, the max pool's output for input {:?} has {:?}",
                relevance.dims(),
                input.dims(),
                out.dims()
            ),
        ));
    }
    if p[0] == p[2] && p[1] == p[3] {
        return Ok(max_pool2d_with_indices_backward(
            input.clone(),
            pool.kernel_size,
            pool.stride,
            [p[0], p[1]],
            pool.dilation,
            pool.ceil_mode,
            relevance,
            indices,
        ));
    }
    // Asymmetric padding: the indices refer to the unpadded input; scatter by index.
    let [_, _, oh, ow] = relevance.dims();
    let target = Tensor::<3>::zeros([b, c, h * w], &input.device());
    Ok(target
        .scatter(
            2,
            indices.reshape([b, c, oh * ow]),
            relevance.reshape([b, c, oh * ow]),
            IndexingUpdateOp::Add,
        )
        .reshape([b, c, h, w]))
}

/// Relevance propagation through Burn's 2-D max pooling (winner takes all).
pub trait MaxPool2dLrp {
    /// The relevance of `input` given the relevance of the pooling's output.
    fn relevance(&self, input: &Tensor<4>, relevance_out: Tensor<4>) -> Result<Tensor<4>>;
}

impl MaxPool2dLrp for MaxPool2d {
    fn relevance(&self, input: &Tensor<4>, relevance_out: Tensor<4>) -> Result<Tensor<4>> {
        max_pool_relevance(self, input, relevance_out, "max_pool2d")
    }
}
