//! The one function that applies any [`Rule`] to any layer kind that is linear in its input
//! ([`propagate`], over a kind's [`LinearMap`]), and the rule for sums ([`sum_relevance`]).
//!
//! The layer arithmetic (modified forward pass and transpose) lives with each kind in
//! `xprune-graph` ([`LinearMap`]); rules are data ([`crate::rule`]). This engine combines them,
//! on activations of any layout, without autodiff.

use crate::error::{LrpError, Result, shape_err};
use crate::modifier::{InputMod, ParamMod};
use crate::rule::{Gate, Group, Propagation, Rule, Term};
use xprune_graph::kind::{LinearMap, Modified};
use xprune_graph::{Activation, map_activation, zip_activation};

/// What the caller knows about a layer call beyond its input, to save work.
#[derive(Clone, Default)]
pub struct Hints<'a> {
    /// The layer's unmodified output `f(x; w) + b` (e.g. from a recorded forward pass); it is
    /// reused instead of recomputed.
    pub output: Option<Activation>,
    /// The input is known to be non-negative (it comes from a ReLU), so terms that read only
    /// its negative part vanish and are skipped.
    pub nonnegative_input: bool,
    /// A name for error messages (the graph node), instead of the layer kind.
    pub name: Option<String>,
    /// The modified parameters of every term of the rule, in group and term order, computed
    /// once by the caller (see [`modified_params`]); computed on the fly when absent.
    pub params: Option<&'a [Modified]>,
}

impl std::fmt::Debug for Hints<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hints")
            .field("output", &self.output.as_ref().map(|o| o.dims()))
            .field("nonnegative_input", &self.nonnegative_input)
            .field("name", &self.name)
            .field("params", &self.params.map(|p| p.len()))
            .finish()
    }
}

fn zip(a: Activation, b: Activation, what: &str, name: &str) -> Result<(Activation, Activation)> {
    if a.layout() != b.layout() {
        return Err(shape_err(
            name,
            format!(
                "{what}: layouts {} and {} differ",
                a.layout().name(),
                b.layout().name()
            ),
        ));
    }
    Ok((a, b))
}

fn add(a: Activation, b: Activation) -> Activation {
    zip_activation!(a, b, x, y => x + y).expect("same layout")
}

fn mul(a: Activation, b: Activation) -> Activation {
    zip_activation!(a, b, x, y => x * y).expect("same layout")
}

fn scale(a: Activation, f: f32) -> Activation {
    if f == 1.0 {
        a
    } else {
        map_activation!(a, t => t.mul_scalar(f))
    }
}

/// `z + eps * sign0(z)` with `sign0(0) = 1` (Zennit's stabiliser;
/// [`xprune_graph::tensor_util::stabilize`] on each layout).
pub fn stabilize(z: Activation, epsilon: f64) -> Activation {
    map_activation!(z, t => xprune_graph::tensor_util::stabilize(t, epsilon))
}

/// [`stabilize`] for a `z` known to have no negative values: `z + eps` (one pass instead of
/// four; equal to [`stabilize`] on such tensors, `-0.0` included).
fn stabilize_nonnegative(z: Activation, epsilon: f64) -> Activation {
    if epsilon == 0.0 {
        z
    } else {
        map_activation!(z, t => t.add_scalar(epsilon))
    }
}

/// The modified parameters of every term of `rule` on `map`, in group and term order (the
/// order [`Hints::params`] expects). Compute them once per layer and rule and pass them to
/// every [`propagate`] call: the layer's parameters do not change between batches.
pub fn modified_params(map: &dyn LinearMap, rule: &dyn Rule) -> Vec<Modified> {
    match rule.propagation() {
        Propagation::Pass => Vec::new(),
        Propagation::Terms { groups, .. } => groups
            .iter()
            .flat_map(|g| &g.terms)
            .map(|t| map.modify(&t.weight, &t.bias))
            .collect(),
    }
}

/// Propagates `relevance` (output-shaped) through the linear map `map` on `input` with `rule`,
/// returning the relevance of the input.
///
/// A relevance whose shape is not the layer's output shape, or a rule that cannot apply (e.g.
/// [`crate::Pass`] on a layer that changes shape), is an error naming the rule and the layer.
pub fn propagate(
    map: &dyn LinearMap,
    input: &Activation,
    relevance: Activation,
    rule: &dyn Rule,
    hints: Hints<'_>,
) -> Result<Activation> {
    let name = hints.name.clone().unwrap_or_else(|| "layer".to_string());
    let in_dims = input.dims();
    if let Some(o) = &hints.output
        && o.dims() != relevance.dims()
    {
        return Err(shape_err(
            &name,
            format!(
                "relevance has shape {:?}, the layer's output has {:?}",
                relevance.dims(),
                o.dims()
            ),
        ));
    }
    let (groups, epsilon) = match rule.propagation() {
        Propagation::Pass => {
            if relevance.dims() != in_dims || relevance.layout() != input.layout() {
                return Err(LrpError::RuleNotApplicable {
                    rule: rule.name(),
                    layer: name,
                    message: format!(
                        "it passes relevance unchanged, but the input {in_dims:?} and output {:?} shapes differ",
                        relevance.dims()
                    ),
                });
            }
            return Ok(relevance);
        }
        Propagation::Terms { groups, epsilon } => (groups, epsilon),
    };
    let owned;
    let params: &[Modified] = match hints.params {
        Some(p) => p,
        None => {
            owned = groups
                .iter()
                .flat_map(|g| &g.terms)
                .map(|t| map.modify(&t.weight, &t.bias))
                .collect::<Vec<_>>();
            &owned
        }
    };
    let term_count: usize = groups.iter().map(|g| g.terms.len()).sum();
    if params.len() != term_count {
        return Err(LrpError::Composite(format!(
            "{name}: {} cached parameter sets for a rule of {term_count} terms",
            params.len()
        )));
    }

    let mut original = hints.output.clone();
    let mut total: Option<Activation> = None;
    // The groups that contribute, with their non-vanishing terms (and each term's index into
    // `params`).
    let mut offset = 0;
    let mut active: Vec<(&Group, Vec<(&Term, &Modified)>)> = Vec::new();
    for g in &groups {
        let terms: Vec<(&Term, &Modified)> = g
            .terms
            .iter()
            .zip(&params[offset..offset + g.terms.len()])
            .filter(|(t, _)| !vanishes(map, t, hints.nonnegative_input))
            .collect();
        offset += g.terms.len();
        if g.coefficient != 0.0 && !terms.is_empty() {
            active.push((g, terms));
        }
    }
    let mut relevance = Some(relevance);
    let last = active.len().saturating_sub(1);
    let mut checked = hints.output.is_some();
    for (index, (group, terms)) in active.into_iter().enumerate() {
        let mut inputs = Vec::with_capacity(terms.len());
        let mut z: Option<Activation> = None;
        for (t, p) in &terms {
            let x = match t.input {
                // the positive part of a non-negative input is the input
                InputMod::Positive if hints.nonnegative_input => input.clone(),
                _ => t.input.apply(input).map_err(|m| shape_err(&name, m))?,
            };
            let zk = term_output(map, t, p, &x, input, hints.output.as_ref());
            let zk = scale(zk, t.sign);
            z = Some(match z {
                Some(acc) => add(acc, zk),
                None => zk,
            });
            inputs.push(x);
        }
        let z = z.expect("a group with terms has an output");
        let z = if terms
            .iter()
            .all(|(t, _)| term_nonnegative(map, t, hints.nonnegative_input))
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
        if !checked {
            let (zd, rd) = (z.dims(), r.dims());
            let batch_ok = zd[0] == rd[0] || zd[0] == 1;
            if !batch_ok || zd[1..] != rd[1..] || z.layout() != r.layout() {
                return Err(shape_err(
                    &name,
                    format!(
                        "relevance has shape {rd:?}, the layer's output for input {in_dims:?} has {zd:?}"
                    ),
                ));
            }
            checked = true;
        }
        let (r, z) = zip(r, z, "relevance and output", &name)?;
        let mut s = zip_activation!(r, z, a, b => a / b).expect("same layout");
        if group.gate != Gate::All {
            let o = original
                .get_or_insert_with(|| {
                    let id = map.modify(&ParamMod::Identity, &ParamMod::Identity);
                    map.forward(input, input, &id)
                })
                .clone();
            let mask = match group.gate {
                Gate::PositiveOutput => map_activation!(o, t => t.greater_elem(0.0).float()),
                Gate::NegativeOutput => map_activation!(o, t => t.lower_elem(0.0).float()),
                Gate::All => unreachable!("handled above"),
            };
            s = mul(s, mask);
        }
        let mut acc: Option<Activation> = None;
        let mut s = Some(s);
        let count = terms.len();
        for (k, ((t, p), x)) in terms.iter().zip(inputs).enumerate() {
            // The last term takes `s` itself.
            let sk = if k + 1 == count {
                s.take().expect("taken by the last term only")
            } else {
                s.clone().expect("taken by the last term only")
            };
            let g = map.transpose(sk, input, p);
            let r = match t.input {
                InputMod::Ones => g,
                _ => mul(x, g),
            };
            let r = scale(r, t.sign);
            acc = Some(match acc {
                Some(a) => add(a, r),
                None => r,
            });
        }
        let acc = scale(
            acc.expect("a group with terms has relevance"),
            group.coefficient,
        );
        total = Some(match total {
            Some(t) => add(t, acc),
            None => acc,
        });
    }
    Ok(total.unwrap_or_else(|| input.zeros_like()))
}

/// Whether a term contributes nothing: its input vanishes (negative part of a non-negative
/// input) and so does its bias, or its weight is zero and so is its bias.
fn vanishes(map: &dyn LinearMap, t: &Term, nonnegative: bool) -> bool {
    let no_bias = !map.has_bias() || t.bias.is_zero();
    let zero_input = nonnegative && t.input.vanishes_on_nonnegative();
    let zero_weight = map.has_weight() && t.weight.is_zero();
    no_bias && (zero_input || zero_weight)
}

/// The output of one term, reusing the unmodified output when input and weight are
/// unmodified.
fn term_output(
    map: &dyn LinearMap,
    t: &Term,
    p: &Modified,
    x: &Activation,
    at: &Activation,
    output: Option<&Activation>,
) -> Activation {
    let weight_unmodified = !map.has_weight() || t.weight.is_identity();
    if let (Some(out), InputMod::Identity, true) = (output, &t.input, weight_unmodified) {
        if !map.has_bias() || t.bias.is_identity() {
            return out.clone();
        }
        let id = map.modify(&ParamMod::Identity, &ParamMod::Identity);
        let mut out = out.clone();
        if let Some(b) = map.bias(&id, at) {
            out = zip_activation!(out, b, o, b => o - b).expect("same layout");
        }
        if let Some(b) = map.bias(p, at) {
            out = add(out, b);
        }
        return out;
    }
    map.forward(x, at, p)
}

/// Whether a term's output `f(x'; w') + b'` has no negative values whatever the layer's
/// parameters: a non-negative input (`x+`, ones, or the input itself when it is known to be
/// non-negative) with a non-negative weight (`w+`, ones, `w^2`, or any parameter-free layer,
/// whose fixed weights are non-negative), or `x-` with `w-`; and a non-negative bias (none,
/// zero, `b+` or `b^2`); with sign `+1`.
fn term_nonnegative(map: &dyn LinearMap, t: &Term, nonnegative_input: bool) -> bool {
    let positive_weight = !map.has_weight()
        || matches!(
            t.weight,
            ParamMod::Positive | ParamMod::Ones | ParamMod::Square
        );
    let negative_weight = map.has_weight() && matches!(t.weight, ParamMod::Negative);
    let product = match t.input {
        InputMod::Positive | InputMod::Ones => positive_weight,
        InputMod::Identity => nonnegative_input && positive_weight,
        InputMod::Negative => negative_weight,
        _ => false,
    };
    let bias = !map.has_bias()
        || matches!(
            t.bias,
            ParamMod::Zero | ParamMod::Positive | ParamMod::Square
        );
    t.sign == 1.0 && product && bias
}

/// Relevance of the inputs of an element-wise sum `y = x_1 + ... + x_k` with `rule` (usually
/// [`crate::Norm`]: in proportion to each input's contribution), as Zennit's `Sum` layer
/// does: a parameter-free linear map over the inputs stacked along a new axis, whose
/// transpose copies `s` to every input.
///
/// For every group `g` of terms `k` with input modifiers `x'_{k,i}` of input `i`:
/// `R_i = sum_g alpha_g sum_k c_k x'_{k,i} * s_g`, `s_g = gate_g * R / stab(sum_k c_k sum_i
/// x'_{k,i})`. `output` is the sum itself when the caller has it.
pub fn sum_relevance(
    inputs: &[&Activation],
    relevance: Activation,
    rule: &dyn Rule,
    output: Option<&Activation>,
    name: &str,
) -> Result<Vec<Activation>> {
    let Some(first) = inputs.first() else {
        return Err(shape_err(name, "a sum needs at least one input"));
    };
    let dims = first.dims();
    if let Some(bad) = inputs
        .iter()
        .find(|t| t.dims() != dims || t.layout() != first.layout())
    {
        return Err(shape_err(
            name,
            format!(
                "summed inputs have different shapes {dims:?} and {:?}",
                bad.dims()
            ),
        ));
    }
    if relevance.dims() != dims || relevance.layout() != first.layout() {
        return Err(shape_err(
            name,
            format!(
                "relevance has shape {:?}, the summed inputs have {dims:?}",
                relevance.dims()
            ),
        ));
    }
    if let Some(o) = output
        && o.dims() != dims
    {
        return Err(shape_err(
            name,
            format!("given output has shape {:?}, expected {dims:?}", o.dims()),
        ));
    }
    let (groups, epsilon) = match rule.propagation() {
        Propagation::Pass => {
            return Err(LrpError::RuleNotApplicable {
                rule: rule.name(),
                layer: name.to_string(),
                message: "a sum of several inputs cannot pass its relevance unchanged".into(),
            });
        }
        Propagation::Terms { groups, epsilon } => (groups, epsilon),
    };
    let sum = |xs: &[Activation]| -> Activation {
        xs.iter().cloned().reduce(add).expect("at least one input")
    };
    let mut total: Vec<Option<Activation>> = vec![None; inputs.len()];
    let mut original = output.cloned();
    for group in groups
        .iter()
        .filter(|g| g.coefficient != 0.0 && !g.terms.is_empty())
    {
        let mut z: Option<Activation> = None;
        let mut modified_inputs = Vec::with_capacity(group.terms.len());
        for t in &group.terms {
            let xs: Vec<Activation> = inputs
                .iter()
                .map(|x| t.input.apply(x).map_err(|m| shape_err(name, m)))
                .collect::<Result<_>>()?;
            let zk = match (&t.input, &output) {
                (InputMod::Identity, Some(o)) => (*o).clone(),
                _ => sum(&xs),
            };
            let zk = scale(zk, t.sign);
            z = Some(match z {
                Some(acc) => add(acc, zk),
                None => zk,
            });
            modified_inputs.push(xs);
        }
        let z = stabilize(z.expect("a group with terms has an output"), epsilon);
        let mut s = zip_activation!(relevance.clone(), z, a, b => a / b).expect("same layout");
        if group.gate != Gate::All {
            let o = original
                .get_or_insert_with(|| {
                    let xs: Vec<Activation> = inputs.iter().map(|x| (*x).clone()).collect();
                    sum(&xs)
                })
                .clone();
            let mask = match group.gate {
                Gate::PositiveOutput => map_activation!(o, t => t.greater_elem(0.0).float()),
                Gate::NegativeOutput => map_activation!(o, t => t.lower_elem(0.0).float()),
                Gate::All => unreachable!("handled above"),
            };
            s = mul(s, mask);
        }
        for (t, xs) in group.terms.iter().zip(modified_inputs) {
            let f = group.coefficient * t.sign;
            for (acc, x) in total.iter_mut().zip(xs) {
                let r = scale(mul(x, s.clone()), f);
                *acc = Some(match acc.take() {
                    Some(a) => add(a, r),
                    None => r,
                });
            }
        }
    }
    Ok(total
        .into_iter()
        .zip(inputs)
        .map(|(r, x)| r.unwrap_or_else(|| x.zeros_like()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Tensor, TensorData};

    #[test]
    fn stabilizer_shifts_away_from_zero_with_sign0_of_zero_positive() {
        let d = Device::flex();
        let z = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, -0.0, 2.0, -3.0], [1, 4]), &d);
        let s = stabilize(Activation::Flat(z.clone()), 0.5).to_vec();
        assert_eq!(s, vec![0.5, 0.5, 2.5, -3.5]);
        let s = stabilize(Activation::Flat(z), 0.0).to_vec();
        assert_eq!(s, vec![0.0, -0.0, 2.0, -3.0]);
    }
}
