//! The LRP criterion (Yeom et al. 2021): a channel's relevance summed over the reference
//! samples and positions.

use crate::criterion::{Criterion, Needs, ScoringContext};
use crate::devices::across_devices;
use crate::error::Result;
use crate::scores::Scores;
use crate::sites::{channel_sums, consumer_sites};
use burn::tensor::{Int, Tensor};
use std::collections::BTreeMap;
use xprune_graph::Dataset;
use xprune_graph::tensor_util::to_vec;
use xprune_lrp::{AlphaBeta, Attribution, Attributor, Composite, Epsilon, RuleClass, Target};
use xprune_surgery::{ChannelSlot, GroupId};

/// The initial relevance at the output, for a batch with labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LrpTarget {
    /// The label's output value (logit), zero elsewhere, as in Yeom et al.'s code.
    #[default]
    LabelLogits,
    /// One-hot at the label (Zennit's convention).
    Labels,
    /// One-hot at the predicted class.
    ArgMax,
}

impl LrpTarget {
    fn target(self, labels: Tensor<1, Int>) -> Target {
        match self {
            Self::LabelLogits => Target::LabelLogits(labels),
            Self::Labels => Target::Labels(labels),
            Self::ArgMax => Target::ArgMax,
        }
    }
}

/// How relevance values are summed into a channel score.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Aggregation {
    /// `sum R` (negative evidence lowers the score), as in Yeom et al.
    #[default]
    Signed,
    /// `sum |R|` (any evidence counts).
    Absolute,
}

/// The composite of Yeom et al.: epsilon (1e-6) on fully connected layers, alpha1-beta0 on
/// convolutions, batch norms folded, Zennit's base rules elsewhere.
pub fn yeom_composite() -> Composite {
    Composite::new("yeom")
        .rule_for_kind(RuleClass::Dense, Epsilon::default())
        .rule_for_kind(
            RuleClass::Convolution,
            AlphaBeta::new(1.0, 0.0).expect("1 - 0 = 1"),
        )
}

/// Scores channel `k` of a group by `sum_n sum_p R_k(n, p)`: the relevance arriving at the
/// channel where the group's consumers read it, summed over reference samples `n` and
/// positions `p` (Yeom et al. 2021). The composite, initial relevance and aggregation are
/// configurable; the default composite is the paper's ([`yeom_composite`]).
#[derive(Clone, Debug)]
pub struct LrpCriterion {
    /// Rules per layer.
    pub composite: Composite,
    /// Initial relevance.
    pub target: LrpTarget,
    /// Signed or absolute sums.
    pub aggregation: Aggregation,
}

impl Default for LrpCriterion {
    fn default() -> Self {
        Self {
            composite: yeom_composite(),
            target: LrpTarget::LabelLogits,
            aggregation: Aggregation::Signed,
        }
    }
}

impl LrpCriterion {
    /// The criterion with another composite.
    pub fn with_composite(composite: Composite) -> Self {
        Self {
            composite,
            ..Self::default()
        }
    }
}

/// Runs attribution over the reference data batch by batch, on the devices of `ctx`
/// ([`across_devices`]): `extract` turns a batch's attribution, labels and predictions into a
/// value on the device that computed it, and `fold` receives the values in batch order.
pub(crate) fn attribute_batches<R: Send>(
    ctx: &ScoringContext<'_>,
    data: &Dataset,
    composite: &Composite,
    target: LrpTarget,
    extract: impl Fn(&Attribution, &[i64], &[i64]) -> Result<R> + Sync,
    fold: impl FnMut(R) -> Result<()>,
) -> Result<()> {
    across_devices(
        ctx,
        data.batch_indices(ctx.batch_size),
        |device| {
            Ok((
                Attributor::new(&ctx.graph_on(device), composite)?,
                device.clone(),
            ))
        },
        |(attributor, device), idx| {
            let batch = data.batch(&idx, device)?;
            let labels: Vec<i64> = idx.iter().map(|&i| data.labels()[i]).collect();
            let attribution = attributor.attribute(batch.inputs, target.target(batch.labels))?;
            let predicted: Vec<i64> = xprune_graph::tensor_util::to_vec_int(
                &attribution.logits.clone().argmax(1).reshape([idx.len()]),
            );
            extract(&attribution, &labels, &predicted)
        },
        fold,
    )
}

/// The per-sample relevance of every group channel at a site: `[batch, channels]`.
pub(crate) fn site_relevance(
    a: &Attribution,
    slot: &ChannelSlot,
    channels: usize,
    absolute: bool,
) -> Option<Vec<f32>> {
    let r = a.node(slot.node)?;
    let r = if absolute {
        xprune_graph::map_activation!(r.clone(), t => t.abs())
    } else {
        r.clone()
    };
    Some(to_vec(&channel_sums(&r, slot, channels)))
}

impl Criterion for LrpCriterion {
    fn name(&self) -> String {
        format!("lrp[{}]", self.composite.name())
    }

    fn needs(&self) -> Needs {
        Needs::Data
    }

    fn score(&self, ctx: &ScoringContext<'_>) -> Result<Scores> {
        let data = ctx.require_data(crate::names::LRP)?;
        let sites: Vec<(GroupId, usize, Vec<ChannelSlot>)> = ctx
            .groups
            .prunable()
            .map(|g| (g.id(), g.channels(), consumer_sites(ctx.graph, g)))
            .collect();
        let mut sums: BTreeMap<GroupId, Vec<f64>> =
            sites.iter().map(|(g, c, _)| (*g, vec![0.0; *c])).collect();
        let absolute = self.aggregation == Aggregation::Absolute;
        // Per batch, per group: the channels' relevance summed over the batch's samples and
        // the group's sites (in f64, on the device that computed it); folded in batch order.
        attribute_batches(
            ctx,
            data,
            &self.composite,
            self.target,
            |a, _, _| {
                Ok(sites
                    .iter()
                    .map(|(_, c, slots)| {
                        let mut acc = vec![0.0f64; *c];
                        for slot in slots {
                            if let Some(r) = site_relevance(a, slot, *c, absolute) {
                                for (i, v) in r.iter().enumerate() {
                                    acc[i % c] += *v as f64;
                                }
                            }
                        }
                        acc
                    })
                    .collect::<Vec<_>>())
            },
            |batch| {
                for ((g, _, _), part) in sites.iter().zip(batch) {
                    let acc = sums.get_mut(g).expect("initialised");
                    for (a, v) in acc.iter_mut().zip(part) {
                        *a += v;
                    }
                }
                Ok(())
            },
        )?;
        let mut scores = Scores::new(self.name());
        for (g, values) in sums {
            scores.insert(ctx.groups, g, values)?;
        }
        Ok(scores)
    }
}
