//! Extension traits on Burn's layers, for propagating relevance through a hand-written Burn
//! model layer by layer. Each is a thin wrapper: the layer arithmetic is the kind's
//! ([`xprune_graph::kind::Kind::lrp`]), the rule application the engine's ([`propagate`]).

use crate::engine::{Hints, propagate, sum_relevance as sum_activations};
use crate::error::{Result, shape_err};
use crate::rule::Rule;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
use burn::nn::{BatchNorm, Linear, Relu};
use burn::tensor::Tensor;
use xprune_graph::kind::{Kind, KindSpec, LrpView};
use xprune_graph::{Activation, Layout};

pub use xprune_graph::AffineChannels;

fn layout_of<const D: usize>() -> Layout {
    match D {
        2 => Layout::Flat,
        3 => Layout::Tokens,
        _ => Layout::Spatial,
    }
}

fn act<const D: usize>(t: Tensor<D>, name: &str) -> Result<Activation> {
    Activation::from_tensor(t, layout_of::<D>()).ok_or_else(|| {
        shape_err(
            name,
            format!("rank-{D} tensors are not supported (rank 2, 3 or 4)"),
        )
    })
}

fn back<const D: usize>(a: Activation, name: &str) -> Result<Tensor<D>> {
    a.into_tensor::<D>()
        .ok_or_else(|| shape_err(name, "the relevance has another rank than the input"))
}

/// Relevance through any kind's layer on a rank-`D` input, checking the input first.
fn through<L: Kind, const D: usize>(
    layer: &L,
    input: &Tensor<D>,
    relevance: Tensor<D>,
    rule: Option<&dyn Rule>,
) -> Result<Tensor<D>> {
    let name = <L::Spec as KindSpec>::NAME;
    let x = act(input.clone(), name)?;
    layer
        .spec()
        .infer(&[x.feature_shape()])
        .map_err(|m| shape_err(name, m))?;
    let r = act(relevance, name)?;
    let out = match (layer.lrp(), rule) {
        (LrpView::Linear { map, .. }, Some(rule)) => propagate(
            &*map,
            &x,
            r,
            rule,
            Hints {
                name: Some(name.to_string()),
                ..Hints::default()
            },
        )?,
        (LrpView::Pass, _) => {
            if r.dims() != x.dims() {
                return Err(shape_err(
                    name,
                    format!(
                        "relevance has shape {:?}, the input has {:?}",
                        r.dims(),
                        x.dims()
                    ),
                ));
            }
            r
        }
        (LrpView::Redistribute(d), _) => {
            let out = layer
                .forward(vec![x.clone()], false)
                .map_err(|m| shape_err(name, m))?;
            d.redistribute(&[&x], &out, r)
                .map_err(|m| shape_err(name, m))?
                .into_iter()
                .next()
                .flatten()
                .unwrap_or_else(|| x.zeros_like())
        }
        (view, _) => {
            return Err(shape_err(
                name,
                format!("this layer's relevance ({view:?}) needs a rule"),
            ));
        }
    };
    back(out, name)
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
        through(self, input, relevance_out, Some(rule))
    }
}

/// Relevance propagation through Burn's 2-D convolution.
pub trait Conv2dLrp {
    /// The relevance of `input` (`[batch, C, H, W]`) given the relevance of the layer's output,
    /// with `rule`.
    fn relevance(
        &self,
        input: &Tensor<4>,
        relevance_out: Tensor<4>,
        rule: &dyn Rule,
    ) -> Result<Tensor<4>>;
}

impl Conv2dLrp for Conv2d {
    fn relevance(
        &self,
        input: &Tensor<4>,
        relevance_out: Tensor<4>,
        rule: &dyn Rule,
    ) -> Result<Tensor<4>> {
        through(self, input, relevance_out, Some(rule))
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
        through(self, input, relevance_out, Some(rule))
    }
}

/// Relevance propagation through Burn's 2-D average pooling.
pub trait AvgPool2dLrp {
    /// The relevance of `input` given the relevance of the pooling's output, with `rule`
    /// (usually [`crate::Norm`]).
    fn relevance(
        &self,
        input: &Tensor<4>,
        relevance_out: Tensor<4>,
        rule: &dyn Rule,
    ) -> Result<Tensor<4>>;
}

impl AvgPool2dLrp for AvgPool2d {
    fn relevance(
        &self,
        input: &Tensor<4>,
        relevance_out: Tensor<4>,
        rule: &dyn Rule,
    ) -> Result<Tensor<4>> {
        through(self, input, relevance_out, Some(rule))
    }
}

/// Relevance propagation through Burn's 2-D adaptive average pooling.
pub trait AdaptiveAvgPool2dLrp {
    /// The relevance of `input` given the relevance of the pooling's output, with `rule`
    /// (usually [`crate::Norm`]).
    fn relevance(
        &self,
        input: &Tensor<4>,
        relevance_out: Tensor<4>,
        rule: &dyn Rule,
    ) -> Result<Tensor<4>>;
}

impl AdaptiveAvgPool2dLrp for AdaptiveAvgPool2d {
    fn relevance(
        &self,
        input: &Tensor<4>,
        relevance_out: Tensor<4>,
        rule: &dyn Rule,
    ) -> Result<Tensor<4>> {
        through(self, input, relevance_out, Some(rule))
    }
}

/// Relevance propagation through Burn's 2-D max pooling (winner takes all).
pub trait MaxPool2dLrp {
    /// The relevance of `input` given the relevance of the pooling's output.
    fn relevance(&self, input: &Tensor<4>, relevance_out: Tensor<4>) -> Result<Tensor<4>>;
}

impl MaxPool2dLrp for MaxPool2d {
    fn relevance(&self, input: &Tensor<4>, relevance_out: Tensor<4>) -> Result<Tensor<4>> {
        through(self, input, relevance_out, None)
    }
}

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

/// Relevance of the inputs of an element-wise sum `y = x_1 + ... + x_k` of rank-`D` tensors
/// (`D` is 2, 3 or 4), with `rule` (usually [`crate::Norm`]: proportional to each input's
/// contribution).
pub fn sum_relevance<const D: usize>(
    inputs: &[Tensor<D>],
    relevance: Tensor<D>,
    rule: &dyn Rule,
) -> Result<Vec<Tensor<D>>> {
    let xs: Vec<Activation> = inputs
        .iter()
        .map(|t| act(t.clone(), "add"))
        .collect::<Result<_>>()?;
    let refs: Vec<&Activation> = xs.iter().collect();
    sum_activations(&refs, act(relevance, "add")?, rule, None, "add")?
        .into_iter()
        .map(|a| back(a, "add"))
        .collect()
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
