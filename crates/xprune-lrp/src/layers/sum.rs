//! Element-wise sums of several inputs (residual connections), seen as a parameter-free linear
//! map over the inputs stacked along a new last axis, as Zennit's `Sum` layer does.

use crate::engine::{Hints, LinearLayer, propagate};
use crate::error::{Result, shape_err};
use crate::modifier::ParamMod;
use crate::rule::Rule;
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

fn hints<const D: usize>(output: Option<Tensor<D>>, name: &str) -> Hints<D> {
    Hints {
        output,
        nonnegative_input: false,
        name: Some(name.to_string()),
    }
}
