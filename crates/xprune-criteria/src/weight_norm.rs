//! Weight-norm criteria (Li et al. 2017): the norm of each channel's filter.

use crate::criterion::{Criterion, Needs, ScoringContext};
use crate::error::Result;
use crate::names;
use crate::scores::Scores;
use xprune_graph::tensor_util::data_to_f32;
use xprune_surgery::Role;

/// Which norm of a filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Norm {
    /// Sum of absolute values.
    #[default]
    L1,
    /// Euclidean norm.
    L2,
}

/// Scores channel `k` of a group by the norm of the weights that produce it: for every
/// producer, the filter of its output channel `k` along the weight's output axis (`W[k, :, :,
/// :]` of a convolution, the column `W[:, k]` of a linear layer, which Burn stores `[in,
/// out]`; every filter of the group's channels for a grouped convolution's unit), summed over
/// the group's producers (residual groups have several). Needs no data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WeightNorm {
    /// The norm.
    pub norm: Norm,
}

impl WeightNorm {
    /// The L1 criterion.
    pub fn l1() -> Self {
        Self { norm: Norm::L1 }
    }

    /// The L2 criterion.
    pub fn l2() -> Self {
        Self { norm: Norm::L2 }
    }
}

impl Criterion for WeightNorm {
    fn name(&self) -> String {
        match self.norm {
            Norm::L1 => names::L1.into(),
            Norm::L2 => names::L2.into(),
        }
    }

    fn needs(&self) -> Needs {
        Needs::Weights
    }

    fn score(&self, ctx: &ScoringContext<'_>) -> Result<Scores> {
        let mut scores = Scores::new(self.name());
        for group in ctx.groups.prunable() {
            let mut acc = vec![0.0f64; group.channels()];
            for m in group.members().iter().filter(|m| m.role == Role::Producer) {
                // The producer's weight and the axis of its output channels.
                let Some(w) = ctx
                    .graph
                    .layer(m.node())?
                    .params()
                    .into_iter()
                    .find(|p| p.role == "weight" && p.out_axis.is_some())
                else {
                    continue;
                };
                let dims = w.dims();
                let axis = w.out_axis.expect("filtered above");
                let (outs, inner) = (dims[axis], dims[axis + 1..].iter().product::<usize>());
                // Per output channel: sum of |w| (L1) or of w^2 (L2, square-rooted below).
                let mut filters = vec![0.0f64; outs];
                for (i, v) in data_to_f32(w.data).iter().enumerate() {
                    filters[(i / inner) % outs] += self.term(*v);
                }
                for (k, a) in acc.iter_mut().enumerate() {
                    let n: f64 = m.slot.indices(k).map(|j| filters[j]).sum();
                    *a += match self.norm {
                        Norm::L1 => n,
                        Norm::L2 => n.sqrt(),
                    };
                }
            }
            scores.insert(ctx.groups, group.id(), acc)?;
        }
        Ok(scores)
    }
}

impl WeightNorm {
    fn term(&self, v: f32) -> f64 {
        let v = v as f64;
        match self.norm {
            Norm::L1 => v.abs(),
            Norm::L2 => v * v,
        }
    }
}
