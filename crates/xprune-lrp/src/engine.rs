//! The layer arithmetic ([`LinearLayer`]: a modified forward pass and its transpose, written
//! once per layer kind) and the one function that applies any [`Rule`] over it
//! ([`propagate`]).

use crate::error::{LrpError, Result, shape_err};
use crate::modifier::{InputMod, ParamMod};
use crate::rule::{Gate, Group, Propagation, Rule, Term};
use burn::tensor::Tensor;

/// A layer that is linear in its input plus a bias, `y = f(x; w) + b`, seen through what LRP
/// needs: a forward pass with modified weights, the bias with a modified value, and the
/// transposed map.
///
/// Implemented for Burn's `Linear`, `Conv2d` (every stride, padding, dilation and groups),
/// batch norm in inference ([`crate::AffineChannels`]), average and adaptive average pooling
/// and sums ([`crate::layers::Sum`]). Implement it to give a new layer kind every rule.
pub trait LinearLayer<const DI: usize, const DO: usize> {
    /// A short description for error messages (`conv2d 3->8 [3, 3]`, ...).
    fn describe(&self) -> String;

    /// The output dimensions for an input of dimensions `input`, or why the input does not fit.
    fn output_dims(&self, input: [usize; DI]) -> std::result::Result<[usize; DO], String>;

    /// Whether the layer has a weight (parameter-free layers ignore weight modifiers).
    fn has_weight(&self) -> bool;

    /// Whether the layer has a bias.
    fn has_bias(&self) -> bool;

    /// `f(x; weight(w))`, without the bias. `x` may have batch size 1 (constant inputs).
    fn forward(&self, x: Tensor<DI>, weight: &ParamMod) -> Tensor<DO>;

    /// The modified bias `bias(b)` as a tensor that broadcasts against the output (`[1, C]`,
    /// `[1, C, 1, 1]`), or `None` without a bias.
    fn bias(&self, bias: &ParamMod) -> Option<Tensor<DO>>;

    /// The transposed map with weight `weight(w)` applied to `s` (output-shaped), giving a
    /// tensor of dimensions `input`.
    fn transpose(&self, s: Tensor<DO>, weight: &ParamMod, input: [usize; DI]) -> Tensor<DI>;

    /// `f(x; weight(w)) + bias(b)`: the modified forward pass with its bias (none when `bias`
    /// is [`ParamMod::Zero`] or the layer has none). The default adds [`LinearLayer::bias`] to
    /// [`LinearLayer::forward`]; layers whose kernel adds a bias itself (convolutions) override
    /// it to save a pass over the output.
    fn forward_biased(&self, x: Tensor<DI>, weight: &ParamMod, bias: &ParamMod) -> Tensor<DO> {
        let out = self.forward(x, weight);
        if bias.is_zero() {
            return out;
        }
        match self.bias(bias) {
            Some(b) => out + b,
            None => out,
        }
    }
}

/// What the caller knows about a layer call beyond its input, to save work.
#[derive(Clone, Debug, Default)]
pub struct Hints<const DO: usize> {
    /// The layer's unmodified output `f(x; w) + b` (e.g. from a recorded forward pass); it is
    /// reused instead of recomputed.
    pub output: Option<Tensor<DO>>,
    /// The input is known to be non-negative (it comes from a ReLU), so terms that read only
    /// its negative part vanish and are skipped.
    pub nonnegative_input: bool,
    /// A name for error messages (the graph node), instead of the layer description.
    pub name: Option<String>,
}

/// `z + eps * sign0(z)` with `sign0(0) = 1` (Zennit's stabiliser).
pub fn stabilize<const D: usize>(z: Tensor<D>, epsilon: f64) -> Tensor<D> {
    if epsilon == 0.0 {
        return z;
    }
    // eps * sign0(z) = 2 eps [z >= 0] - eps, computed without a branch per element (a select
    // on mixed signs is several times slower on CPU backends); both steps are exact in f32, so
    // the result equals `z + eps` or `z - eps` exactly.
    let shift = z
        .clone()
        .greater_equal_elem(0.0)
        .float()
        .mul_scalar(2.0 * epsilon)
        .sub_scalar(epsilon);
    z + shift
}

/// [`stabilize`] for a `z` known to have no negative values: `z + eps` (one pass instead of
/// four; equal to [`stabilize`] on such tensors, `-0.0` included).
fn stabilize_nonnegative<const D: usize>(z: Tensor<D>, epsilon: f64) -> Tensor<D> {
    if epsilon == 0.0 {
        z
    } else {
        z.add_scalar(epsilon)
    }
}

/// Propagates `relevance` (output-shaped) through `layer` on `input` with `rule`, returning
/// the relevance of the input.
///
/// Every shape is checked first; a rule that cannot apply (e.g. [`crate::Pass`] on a layer that
/// changes shape) is an error naming the rule and the layer.
pub fn propagate<const DI: usize, const DO: usize, L>(
    layer: &L,
    input: &Tensor<DI>,
    relevance: Tensor<DO>,
    rule: &dyn Rule,
    hints: Hints<DO>,
) -> Result<Tensor<DI>>
where
    L: LinearLayer<DI, DO> + ?Sized,
{
    let name = hints.name.clone().unwrap_or_else(|| layer.describe());
    let in_dims = input.dims();
    let out_dims = layer
        .output_dims(in_dims)
        .map_err(|m| shape_err(&name, m))?;
    if relevance.dims() != out_dims {
        return Err(shape_err(
            &name,
            format!(
                "relevance has shape {:?}, the layer's output for input {in_dims:?} has {out_dims:?}",
                relevance.dims()
            ),
        ));
    }
    if let Some(o) = &hints.output
        && o.dims() != out_dims
    {
        return Err(shape_err(
            &name,
            format!(
                "given output has shape {:?}, expected {out_dims:?}",
                o.dims()
            ),
        ));
    }
    let (groups, epsilon) = match rule.propagation() {
        Propagation::Pass => {
            if in_dims.as_slice() != out_dims.as_slice() {
                return Err(LrpError::RuleNotApplicable {
                    rule: rule.name(),
                    layer: name,
                    message: format!(
                        "it passes relevance unchanged, but the input {in_dims:?} and output {out_dims:?} shapes differ"
                    ),
                });
            }
            return Ok(relevance.reshape(in_dims));
        }
        Propagation::Terms { groups, epsilon } => (groups, epsilon),
    };

    let mut original = hints.output.clone();
    let mut total: Option<Tensor<DI>> = None;
    // The groups that contribute, with their non-vanishing terms.
    let active: Vec<(&Group, Vec<&Term>)> = groups
        .iter()
        .filter(|g| g.coefficient != 0.0)
        .map(|g| {
            let terms = g
                .terms
                .iter()
                .filter(|t| !vanishes(layer, t, hints.nonnegative_input))
                .collect::<Vec<_>>();
            (g, terms)
        })
        .filter(|(_, terms)| !terms.is_empty())
        .collect();
    let mut relevance = Some(relevance);
    let last = active.len().saturating_sub(1);
    for (index, (group, terms)) in active.into_iter().enumerate() {
        let mut inputs = Vec::with_capacity(terms.len());
        let mut z: Option<Tensor<DO>> = None;
        for t in &terms {
            let x = match t.input {
                // the positive part of a non-negative input is the input
                InputMod::Positive if hints.nonnegative_input => input.clone(),
                _ => t.input.apply(input).map_err(|m| shape_err(&name, m))?,
            };
            let zk = term_output(layer, t, x.clone(), hints.output.as_ref());
            let zk = if t.sign == 1.0 {
                zk
            } else {
                zk.mul_scalar(t.sign)
            };
            z = Some(match z {
                Some(acc) => acc + zk,
                None => zk,
            });
            inputs.push(x);
        }
        let z = z.expect("a group with terms has an output");
        let z = if terms
            .iter()
            .all(|t| term_nonnegative(layer, t, hints.nonnegative_input))
        {
            stabilize_nonnegative(z, epsilon)
        } else {
            stabilize(z, epsilon)
        };
        // The last group takes the relevance itself (no copy of a shared tensor).
        let r = if index == last {
            relevance.take().expect("taken by the last group only")
        } else {
            relevance.clone().expect("taken by the last group only")
        };
        let mut s = r / z;
        if group.gate != Gate::All {
            let o = original
                .get_or_insert_with(|| {
                    let out = layer.forward(input.clone(), &ParamMod::Identity);
                    match layer.bias(&ParamMod::Identity) {
                        Some(b) => out + b,
                        None => out,
                    }
                })
                .clone();
            let mask = match group.gate {
                Gate::PositiveOutput => o.greater_elem(0.0),
                Gate::NegativeOutput => o.lower_elem(0.0),
                Gate::All => unreachable!("handled above"),
            };
            s = s * mask.float();
        }
        let mut acc: Option<Tensor<DI>> = None;
        let mut s = Some(s);
        let count = terms.len();
        for (k, (t, x)) in terms.iter().zip(inputs).enumerate() {
            // The last term takes `s` itself.
            let sk = if k + 1 == count {
                s.take().expect("taken by the last term only")
            } else {
                s.clone().expect("taken by the last term only")
            };
            let g = layer.transpose(sk, &t.weight, in_dims);
            let r = match t.input {
                InputMod::Ones => g,
                _ => x * g,
            };
            let r = if t.sign == 1.0 {
                r
            } else {
                r.mul_scalar(t.sign)
            };
            acc = Some(match acc {
                Some(a) => a + r,
                None => r,
            });
        }
        let acc = acc.expect("a group with terms has relevance");
        let acc = if group.coefficient == 1.0 {
            acc
        } else {
            acc.mul_scalar(group.coefficient)
        };
        total = Some(match total {
            Some(t) => t + acc,
            None => acc,
        });
    }
    Ok(total.unwrap_or_else(|| input.zeros_like()))
}

/// Whether a term contributes nothing: its input vanishes (negative part of a non-negative
/// input) and so does its bias, or its weight is zero and so is its bias.
fn vanishes<const DI: usize, const DO: usize, L>(layer: &L, t: &Term, nonnegative: bool) -> bool
where
    L: LinearLayer<DI, DO> + ?Sized,
{
    let no_bias = !layer.has_bias() || t.bias.is_zero();
    let zero_input = nonnegative && t.input.vanishes_on_nonnegative();
    let zero_weight = layer.has_weight() && t.weight.is_zero();
    no_bias && (zero_input || zero_weight)
}

/// The output of one term, reusing the unmodified output when input and weight are unmodified.
fn term_output<const DI: usize, const DO: usize, L>(
    layer: &L,
    t: &Term,
    x: Tensor<DI>,
    output: Option<&Tensor<DO>>,
) -> Tensor<DO>
where
    L: LinearLayer<DI, DO> + ?Sized,
{
    let weight_unmodified = !layer.has_weight() || t.weight.is_identity();
    if let (Some(out), InputMod::Identity, true) = (output, &t.input, weight_unmodified) {
        if !layer.has_bias() || t.bias.is_identity() {
            return out.clone();
        }
        let original = layer
            .bias(&ParamMod::Identity)
            .expect("the layer has a bias");
        let out = out.clone() - original;
        return match (t.bias.is_zero(), layer.bias(&t.bias)) {
            (false, Some(b)) => out + b,
            _ => out,
        };
    }
    layer.forward_biased(x, &t.weight, &t.bias)
}

/// Whether a term's output `f(x'; w') + b'` has no negative values whatever the layer's
/// parameters: a non-negative input (`x+`, ones, or the input itself when it is known to be
/// non-negative) with a non-negative weight (`w+`, ones, `w^2`, or any parameter-free layer,
/// whose fixed weights are non-negative), or `x-` with `w-`; and a non-negative bias (none,
/// zero, `b+` or `b^2`); with sign `+1`.
fn term_nonnegative<const DI: usize, const DO: usize, L>(
    layer: &L,
    t: &Term,
    nonnegative_input: bool,
) -> bool
where
    L: LinearLayer<DI, DO> + ?Sized,
{
    let positive_weight = !layer.has_weight()
        || matches!(
            t.weight,
            ParamMod::Positive | ParamMod::Ones | ParamMod::Square
        );
    let negative_weight = layer.has_weight() && matches!(t.weight, ParamMod::Negative);
    let product = match t.input {
        InputMod::Positive | InputMod::Ones => positive_weight,
        InputMod::Identity => nonnegative_input && positive_weight,
        InputMod::Negative => negative_weight,
        _ => false,
    };
    let bias = !layer.has_bias()
        || matches!(
            t.bias,
            ParamMod::Zero | ParamMod::Positive | ParamMod::Square
        );
    t.sign == 1.0 && product && bias
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn stabilizer_shifts_away_from_zero_with_sign0_of_zero_positive() {
        let d = Device::flex();
        let z = Tensor::<1>::from_data(TensorData::new(vec![0.0f32, -0.0, 2.0, -3.0], [4]), &d);
        let s = xprune_graph::tensor_util::to_vec(&stabilize(z.clone(), 0.5));
        assert_eq!(s, vec![0.5, 0.5, 2.5, -3.5]);
        let s = xprune_graph::tensor_util::to_vec(&stabilize(z, 0.0));
        assert_eq!(s, vec![0.0, -0.0, 2.0, -3.0]);
    }
}
