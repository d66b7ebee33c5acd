//! Weight-norm criteria (Li et al. 2017): the norm of each channel's filter.

use crate::criterion::{Criterion, Needs, ScoringContext};
use crate::error::Result;
use crate::scores::Scores;
use xprune_graph::Layer;
use xprune_graph::tensor_util::to_vec;
use xprune_surgery::Member;

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
/// producer, the filter `W[k, :, :, :]` of a convolution or the column `W[:, k]` of a linear
/// layer (Burn stores `[in, out]`), summed over the group's producers (residual groups have
/// several). Needs no data.
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
            Norm::L1 => "l1".into(),
            Norm::L2 => "l2".into(),
        }
    }

    fn needs(&self) -> Needs {
        Needs::Weights
    }

    fn score(&self, ctx: &ScoringContext<'_>) -> Result<Scores> {
        let mut scores = Scores::new(self.name());
        for group in ctx.groups.prunable() {
            let mut acc = vec![0.0f64; group.channels()];
            for m in group.members() {
                let Member::Producer { node } = m else {
                    continue;
                };
                // Per channel: sum of |w| (L1) or of w^2 (L2, square-rooted below).
                let (values, per_channel, channel_major) = match ctx.graph.layer(*node)? {
                    Layer::Conv2d(conv) => {
                        let w = conv.weight.val();
                        let [out, i, kh, kw] = w.dims();
                        (to_vec(&w), i * kh * kw, out > 0)
                    }
                    Layer::Linear(lin) => {
                        let w = lin.weight.val();
                        let [inp, _] = w.dims();
                        (to_vec(&w), inp, false)
                    }
                    _ => continue,
                };
                let channels = group.channels();
                let mut norms = vec![0.0f64; channels];
                if channel_major {
                    for (k, n) in norms.iter_mut().enumerate() {
                        for v in &values[k * per_channel..(k + 1) * per_channel] {
                            *n += self.term(*v);
                        }
                    }
                } else {
                    // linear weight [in, out]: column k
                    for row in 0..per_channel {
                        for (k, n) in norms.iter_mut().enumerate() {
                            *n += self.term(values[row * channels + k]);
                        }
                    }
                }
                for (a, n) in acc.iter_mut().zip(norms) {
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
