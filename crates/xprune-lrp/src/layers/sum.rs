//! Element-wise sums of several inputs (residual connections), seen as a parameter-free linear
//! map over the inputs stacked along a new last axis, as Zennit's `Sum` layer does.

use crate::engine::{Hints, LinearLayer, propagate, stabilize};
use crate::error::{Result, shape_err};
use crate::modifier::{InputMod, ParamMod};
use crate::rule::{Gate, Group, Propagation, Rule};
use burn::tensor::Tensor;

/// The sum of `inputs` tensors stacked along a new last axis: `[..., k] -> [...]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sum {
    /// Number of summed inputs.
    pub inputs: usize,
}

macro_rules! impl_sum {
    ($di:literal, $do:literal) => {
        impl LinearLayer<$di, $do> for Sum {
            fn describe(&self) -> String {
                format!("sum of {} inputs", self.inputs)
            }

            fn output_dims(&self, input: [usize; $di]) -> std::result::Result<[usize; $do], String> {
                if input[$di - 1] != self.inputs {
                    return Err(format!(
                        "stacked input has shape {input:?}, expected {} inputs in the last dimension",
                        self.inputs
                    ));
                }
                let mut out = [0usize; $do];
                out.copy_from_slice(&input[..$do]);
                Ok(out)
            }

            fn has_weight(&self) -> bool {
                false
            }

            fn has_bias(&self) -> bool {
                false
            }

            fn forward(&self, x: Tensor<$di>, _weight: &ParamMod) -> Tensor<$do> {
                x.sum_dim($di - 1).squeeze_dim($di - 1)
            }

            fn bias(&self, _bias: &ParamMod) -> Option<Tensor<$do>> {
                None
            }

            fn transpose(&self, s: Tensor<$do>, _weight: &ParamMod, input: [usize; $di]) -> Tensor<$di> {
                s.unsqueeze_dim::<$di>($do).expand(input)
            }
        }
    };
}

impl_sum!(3, 2);
impl_sum!(5, 4);

/// Relevance of the inputs of an element-wise sum `y = x_1 + ... + x_k` of rank-`D` tensors
/// (`D` is 2 or 4), with `rule` (usually [`crate::Norm`]: proportional to each input's
/// contribution).
pub fn sum_relevance<const D: usize>(
    inputs: &[Tensor<D>],
    relevance: Tensor<D>,
    rule: &dyn Rule,
) -> Result<Vec<Tensor<D>>> {
    sum_relevance_with(inputs, relevance, rule, None, "add")
}

pub(crate) fn sum_relevance_with<const D: usize>(
    inputs: &[Tensor<D>],
    relevance: Tensor<D>,
    rule: &dyn Rule,
    output: Option<Tensor<D>>,
    name: &str,
) -> Result<Vec<Tensor<D>>> {
    if inputs.is_empty() {
        return Err(shape_err(name, "a sum needs at least one input"));
    }
    let dims = inputs[0].dims();
    if let Some(bad) = inputs.iter().find(|t| t.dims() != dims) {
        return Err(shape_err(
            name,
            format!(
                "summed inputs have different shapes {dims:?} and {:?}",
                bad.dims()
            ),
        ));
    }
    if relevance.dims() != dims {
        return Err(shape_err(
            name,
            format!(
                "relevance has shape {:?}, the summed inputs have {dims:?}",
                relevance.dims()
            ),
        ));
    }
    if let Some(o) = &output
        && o.dims() != dims
    {
        return Err(shape_err(
            name,
            format!("given output has shape {:?}, expected {dims:?}", o.dims()),
        ));
    }
    if let Propagation::Terms { groups, epsilon } = rule.propagation()
        && groups.iter().flat_map(|g| &g.terms).all(|t| {
            matches!(
                t.input,
                InputMod::Identity | InputMod::Positive | InputMod::Negative
            )
        })
    {
        return Ok(sum_direct(inputs, relevance, &groups, epsilon, output));
    }
    let k = inputs.len();
    match D {
        2 => {
            let stacked: Tensor<3> = Tensor::stack(
                inputs
                    .iter()
                    .map(|t| t.clone().reshape([dims[0], dims[1]]))
                    .collect(),
                2,
            );
            let r: Tensor<2> = relevance.reshape([dims[0], dims[1]]);
            let out = output.map(|o| o.reshape([dims[0], dims[1]]));
            let rin = propagate(&Sum { inputs: k }, &stacked, r, rule, hints(out, name))?;
            Ok((0..k)
                .map(|i| rin.clone().narrow(2, i, 1).reshape(dims))
                .collect())
        }
        4 => {
            let d4 = [dims[0], dims[1], dims[2], dims[3]];
            let stacked: Tensor<5> =
                Tensor::stack(inputs.iter().map(|t| t.clone().reshape(d4)).collect(), 4);
            let r: Tensor<4> = relevance.reshape(d4);
            let out = output.map(|o| o.reshape(d4));
            let rin = propagate(&Sum { inputs: k }, &stacked, r, rule, hints(out, name))?;
            Ok((0..k)
                .map(|i| rin.clone().narrow(4, i, 1).reshape(dims))
                .collect())
        }
        _ => Err(shape_err(
            name,
            format!("sums of rank-{D} tensors are not supported (rank 2 or 4)"),
        )),
    }
}

/// The rule over a sum computed input by input, without stacking the inputs: for the input
/// modifiers that act element-wise on each input (identity, positive and negative parts), the
/// stacked formulation gives, for input `i`,
/// `R_i = sum_g alpha_g sum_k c_k x'_{k,i} * s_g` with `s_g = gate_g * R / stab(sum_k c_k sum_i
/// x'_{k,i})`. Same values as [`propagate`] over [`Sum`], one copy of the inputs fewer.
fn sum_direct<const D: usize>(
    inputs: &[Tensor<D>],
    relevance: Tensor<D>,
    groups: &[Group],
    epsilon: f64,
    output: Option<Tensor<D>>,
) -> Vec<Tensor<D>> {
    let modified = |m: &InputMod, x: &Tensor<D>| match m {
        InputMod::Positive => x.clone().clamp_min(0.0),
        InputMod::Negative => x.clone().clamp_max(0.0),
        _ => x.clone(),
    };
    let sum = |xs: &[Tensor<D>]| {
        xs.iter()
            .cloned()
            .reduce(|a, b| a + b)
            .expect("at least one input")
    };
    let mut total: Vec<Option<Tensor<D>>> = vec![None; inputs.len()];
    let mut original = output.clone();
    for group in groups
        .iter()
        .filter(|g| g.coefficient != 0.0 && !g.terms.is_empty())
    {
        let mut z: Option<Tensor<D>> = None;
        let mut modified_inputs = Vec::with_capacity(group.terms.len());
        for t in &group.terms {
            let xs: Vec<Tensor<D>> = inputs.iter().map(|x| modified(&t.input, x)).collect();
            let zk = match (&t.input, &output) {
                (InputMod::Identity, Some(o)) => o.clone(),
                _ => sum(&xs),
            };
            let zk = if t.sign == 1.0 {
                zk
            } else {
                zk.mul_scalar(t.sign)
            };
            z = Some(match z {
                Some(acc) => acc + zk,
                None => zk,
            });
            modified_inputs.push(xs);
        }
        let z = z.expect("a group with terms has an output");
        let mut s = relevance.clone() / stabilize(z, epsilon);
        if group.gate != Gate::All {
            let o = original.get_or_insert_with(|| sum(inputs)).clone();
            let mask = match group.gate {
                Gate::PositiveOutput => o.greater_elem(0.0),
                Gate::NegativeOutput => o.lower_elem(0.0),
                Gate::All => unreachable!("handled above"),
            };
            s = s * mask.float();
        }
        let factor = |sign: f32| group.coefficient * sign;
        for (t, xs) in group.terms.iter().zip(modified_inputs) {
            let f = factor(t.sign);
            for (acc, x) in total.iter_mut().zip(xs) {
                let r = x * s.clone();
                let r = if f == 1.0 { r } else { r.mul_scalar(f) };
                *acc = Some(match acc.take() {
                    Some(a) => a + r,
                    None => r,
                });
            }
        }
    }
    total
        .into_iter()
        .zip(inputs)
        .map(|(r, x)| r.unwrap_or_else(|| x.zeros_like()))
        .collect()
}

fn hints<const D: usize>(output: Option<Tensor<D>>, name: &str) -> Hints<D> {
    Hints {
        output,
        nonnegative_input: false,
        name: Some(name.to_string()),
    }
}
