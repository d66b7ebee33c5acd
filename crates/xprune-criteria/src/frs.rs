//! Feature relevance scores (Aketi et al. 2020): class-weighted alpha2-beta1 relevance.

use crate::criterion::{Criterion, Needs, ScoringContext};
use crate::error::Result;
use crate::lrp::{LrpTarget, attribute_batches, site_relevance};
use crate::names;
use crate::scores::Scores;
use crate::sites::{consumer_sites, values_per_channel};
use std::collections::BTreeMap;
use xprune_lrp::{Composite, Epsilon};
use xprune_surgery::{ChannelSlot, GroupId};

/// Feature relevance scores (Aketi et al. 2020).
///
/// With alpha2-beta1 LRP (composite `epsilon-alpha2-beta1` by default: alpha2-beta1 on
/// convolutions, epsilon on fully connected layers) and one-hot initial relevance at the
/// label, for each group channel `k`:
///
/// 1. `r(n, k)`: the relevance of channel `k` for sample `n`, averaged over positions;
/// 2. `r(c, k)`: its mean over the reference samples of class `c`;
/// 3. `w(c) = sigmoid(1 / (acc(c) / max_c acc(c)))`: classes the model gets wrong more often
///    weigh more (`acc(c)` is the model's accuracy on the reference samples of class `c`;
///    a class with accuracy 0 gets weight 1);
/// 4. `s(k) = |sum_c w(c) r(c, k)|`, L2-normalised over the group's channels.
#[derive(Clone, Debug)]
pub struct FeatureRelevance {
    /// Rules per layer.
    pub composite: Composite,
}

impl Default for FeatureRelevance {
    fn default() -> Self {
        Self {
            composite: Composite::epsilon_alpha2_beta1(Epsilon::default()),
        }
    }
}

/// `sigmoid(1 / (acc / max_acc))`, with weight 1 for a class never predicted right.
pub fn class_weight(acc: f64, max_acc: f64) -> f64 {
    if acc <= 0.0 || max_acc <= 0.0 {
        return 1.0;
    }
    let x = max_acc / acc;
    1.0 / (1.0 + (-x).exp())
}

/// A group, its channel count, and its sites with their positions per channel.
type GroupSites = (GroupId, usize, Vec<(ChannelSlot, usize)>);

impl Criterion for FeatureRelevance {
    fn name(&self) -> String {
        names::FRS.into()
    }

    fn needs(&self) -> Needs {
        Needs::Data
    }

    fn score(&self, ctx: &ScoringContext<'_>) -> Result<Scores> {
        let data = ctx.require_data(names::FRS)?;
        let classes = data.num_classes();
        let sites: Vec<GroupSites> = ctx
            .groups
            .prunable()
            .map(|g| {
                let slots = consumer_sites(ctx.graph, g)
                    .into_iter()
                    .map(|s| {
                        let positions = values_per_channel(ctx.graph, &s);
                        (s, positions)
                    })
                    .collect();
                (g.id(), g.channels(), slots)
            })
            .collect();
        // Per group: per class, per channel sums of position-averaged relevance.
        let mut sums: BTreeMap<GroupId, Vec<Vec<f64>>> = sites
            .iter()
            .map(|(g, c, _)| (*g, vec![vec![0.0; *c]; classes]))
            .collect();
        let mut seen = vec![0usize; classes];
        let mut correct = vec![0usize; classes];
        attribute_batches(
            ctx,
            data,
            &self.composite,
            LrpTarget::Labels,
            |a, labels, predicted| {
                // Per group and site, the batch's per-sample relevance `[batch, channels]`.
                let relevance: Vec<Vec<Option<Vec<f32>>>> = sites
                    .iter()
                    .map(|(_, c, slots)| {
                        slots
                            .iter()
                            .map(|(slot, _)| site_relevance(a, slot, *c, false))
                            .collect()
                    })
                    .collect();
                Ok((labels.to_vec(), predicted.to_vec(), relevance))
            },
            |(labels, predicted, relevance)| {
                for (&l, &p) in labels.iter().zip(&predicted) {
                    seen[l as usize] += 1;
                    if l == p {
                        correct[l as usize] += 1;
                    }
                }
                for ((g, c, slots), relevance) in sites.iter().zip(&relevance) {
                    let acc = sums.get_mut(g).expect("initialised");
                    for ((_, positions), r) in slots.iter().zip(relevance) {
                        if let Some(r) = r {
                            for (n, &label) in labels.iter().enumerate() {
                                for k in 0..*c {
                                    acc[label as usize][k] +=
                                        r[n * c + k] as f64 / *positions as f64;
                                }
                            }
                        }
                    }
                }
                Ok(())
            },
        )?;
        let acc: Vec<f64> = (0..classes)
            .map(|c| {
                if seen[c] == 0 {
                    0.0
                } else {
                    correct[c] as f64 / seen[c] as f64
                }
            })
            .collect();
        let max_acc = acc.iter().cloned().fold(0.0, f64::max);
        let weights: Vec<f64> = acc.iter().map(|a| class_weight(*a, max_acc)).collect();
        let mut scores = Scores::new(self.name());
        for (g, per_class) in sums {
            let c = per_class[0].len();
            let mut s = vec![0.0; c];
            for (class, values) in per_class.iter().enumerate() {
                if seen[class] == 0 {
                    continue;
                }
                for k in 0..c {
                    s[k] += weights[class] * values[k] / seen[class] as f64;
                }
            }
            let s: Vec<f64> = s.iter().map(|v| v.abs()).collect();
            let norm = s.iter().map(|v| v * v).sum::<f64>().sqrt();
            let s = if norm > 0.0 {
                s.iter().map(|v| v / norm).collect()
            } else {
                s
            };
            scores.insert(ctx.groups, g, s)?;
        }
        Ok(scores)
    }
}
