//! Gradient and Taylor criteria (Sun et al. 2017; Molchanov et al. 2017), via autodiff.

use crate::criterion::{Criterion, Needs, ScoringContext};
use crate::devices::across_devices;
use crate::error::Result;
use crate::loss::per_sample_cross_entropy;
use crate::names;
use crate::scores::Scores;
use crate::sites::{SitePolicy, channel_sums, sites, values_per_channel};
use burn::module::Module;
use burn::tensor::Tensor;
use std::collections::BTreeMap;
use xprune_graph::tensor_util::to_vec;
use xprune_graph::{Activation, NodeId, map_activation, with_activation};
use xprune_surgery::{ChannelSlot, GroupId};

/// Where the absolute value of the gradient and Taylor criteria is taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SampleAbs {
    /// Per sample, then averaged: `mean_n |mean_p x(n, p)|` (Molchanov et al. 2017). A
    /// channel that matters for every sample scores high even when the signs of its effects
    /// differ between samples. The default.
    #[default]
    PerSample,
    /// Of the mean over samples and positions: `|mean_{n,p} x(n, p)|`. Effects of opposite
    /// sign on different samples cancel (the `-batch` criteria).
    OfBatchMean,
}

/// Per-channel sums of one site over the reference data.
#[derive(Clone, Debug)]
struct SiteSums {
    /// `sum_{n,p} x(n, p)`.
    signed: Vec<f64>,
    /// `sum_n |sum_p x(n, p)|`.
    per_sample_abs: Vec<f64>,
}

impl SiteSums {
    fn new(channels: usize) -> Self {
        Self {
            signed: vec![0.0; channels],
            per_sample_abs: vec![0.0; channels],
        }
    }

    /// Adds a batch of per-sample channel sums `[batch, channels]` (row-major).
    fn add(&mut self, per_sample: &[f32], channels: usize) {
        for row in per_sample.chunks(channels) {
            for (k, v) in row.iter().enumerate() {
                self.signed[k] += *v as f64;
                self.per_sample_abs[k] += (*v as f64).abs();
            }
        }
    }

    /// The score of every channel: the absolute mean under `abs`, over `samples` samples of
    /// `positions` values per channel.
    fn scores(&self, abs: SampleAbs, samples: usize, positions: usize) -> Vec<f64> {
        let norm = (samples * positions.max(1)) as f64;
        match abs {
            SampleAbs::PerSample => self.per_sample_abs.iter().map(|v| v / norm).collect(),
            SampleAbs::OfBatchMean => self.signed.iter().map(|v| (v / norm).abs()).collect(),
        }
    }
}

/// One probe entry: the group, the site, the group's channel count, the values per channel
/// at the site, and the sums of `dL/da` and of `a * dL/da`.
struct ProbeEntry {
    group: GroupId,
    slot: ChannelSlot,
    channels: usize,
    positions: usize,
    grad: SiteSums,
    taylor: SiteSums,
}

/// Per group and site: summed per-channel gradients and activation x gradient products.
struct ProbeSums {
    entries: Vec<ProbeEntry>,
    samples: usize,
}

/// Runs the reference data through the graph on an autodiff device (in inference mode: batch
/// norm uses its running statistics, so samples do not interact) with probes at every site,
/// and sums `dL/da` and `a * dL/da` per sample and channel (over positions).
///
/// The loss is the sum of the per-sample losses, so the probe gradients of a sample's row
/// are that sample's own gradients: per-sample sums come out of one batched backward pass.
fn probe(ctx: &ScoringContext<'_>, name: &str, policy: SitePolicy) -> Result<ProbeSums> {
    let data = ctx.require_data(name)?;
    let mut entries = Vec::new();
    let mut site_nodes: BTreeMap<NodeId, usize> = BTreeMap::new();
    for group in ctx.groups.prunable() {
        for slot in sites(ctx.graph, group, policy) {
            let shape = ctx.graph.node(slot.node)?.shape;
            site_nodes.insert(slot.node, shape.channels());
            let channels = group.channels();
            let positions = values_per_channel(ctx.graph, &slot);
            entries.push(ProbeEntry {
                group: group.id(),
                slot,
                channels,
                positions,
                grad: SiteSums::new(channels),
                taylor: SiteSums::new(channels),
            });
        }
    }
    let slots: Vec<(ChannelSlot, usize)> = entries
        .iter()
        .map(|e| (e.slot.clone(), e.channels))
        .collect();
    // Per batch, on the device that ran it: per entry the per-sample channel sums of
    // `a * dL/da` and of `dL/da` (`None` where the site got no gradient); folded in batch
    // order.
    across_devices(
        ctx,
        data.batch_indices(ctx.batch_size),
        |device| {
            let ad = device.clone().autodiff();
            let graph = ctx.graph.clone().no_grad().fork(&ad);
            Ok((graph, ad, device.clone()))
        },
        |(graph, ad, device), idx| {
            let batch = data.batch(&idx, ad)?;
            let b = idx.len();
            // Multiplicative probe m = 1 gives sum_pos a * g per channel; additive probe p = 0
            // gives g itself.
            let mut probes: BTreeMap<NodeId, (Tensor<2>, Activation)> = BTreeMap::new();
            let mut hook = |id: NodeId, a: Activation| -> Activation {
                let Some(&c) = site_nodes.get(&id) else {
                    return a;
                };
                let m = Tensor::<2>::ones([b, c], &*ad).require_grad();
                let p =
                    map_activation!(a.clone(), t => Tensor::zeros(t.dims(), &*ad).require_grad());
                probes.insert(id, (m.clone(), p.clone()));
                a.scale_channels(m)
                    .checked_add(p)
                    .expect("probe has the value's layout")
            };
            let logits = graph
                .run(batch.inputs)
                .hook(&mut hook)
                .execute()?
                .into_output()
                .flatten();
            let loss = per_sample_cross_entropy(logits, batch.labels).sum();
            let grads = loss.backward();
            let sums: Vec<Option<(Vec<f32>, Vec<f32>)>> = slots
                .iter()
                .map(|(slot, channels)| {
                    let (m, p) = &probes[&slot.node];
                    let ag = m
                        .grad(&grads)
                        .map(|t| Activation::Flat(t.without_autodiff()));
                    let layout = p.layout();
                    let g = with_activation!(p, t => t
                        .grad(&grads)
                        .and_then(|g| Activation::from_tensor(g, layout)));
                    let (ag, g) = (ag?, g?);
                    let ag = to_vec(&channel_sums(&ag, slot, *channels));
                    let g = to_vec(&channel_sums(&g.to_device(device), slot, *channels));
                    Some((ag, g))
                })
                .collect();
            Ok(sums)
        },
        |sums| {
            for (e, s) in entries.iter_mut().zip(sums) {
                if let Some((ag, g)) = s {
                    e.taylor.add(&ag, e.channels);
                    e.grad.add(&g, e.channels);
                }
            }
            Ok(())
        },
    )?;
    Ok(ProbeSums {
        entries,
        samples: data.len(),
    })
}

/// The scores of every group: per site the absolute mean under `abs`, summed over sites.
fn finish(
    ctx: &ScoringContext<'_>,
    sums: ProbeSums,
    name: String,
    taylor: bool,
    abs: SampleAbs,
) -> Result<Scores> {
    let mut per_group: BTreeMap<GroupId, Vec<f64>> = BTreeMap::new();
    for e in sums.entries {
        let acc = per_group
            .entry(e.group)
            .or_insert_with(|| vec![0.0; e.channels]);
        let src = if taylor { &e.taylor } else { &e.grad };
        for (a, v) in acc
            .iter_mut()
            .zip(src.scores(abs, sums.samples, e.positions))
        {
            *a += v;
        }
    }
    let mut scores = Scores::new(name);
    for (group, values) in per_group {
        scores.insert(ctx.groups, group, values)?;
    }
    Ok(scores)
}

/// The gradient criterion: by default `mean_n |mean_p dL_n/da_k(n, p)|`, with `L_n` the
/// cross-entropy of reference sample `n` and `a_k(n, p)` channel `k` at position `p` of the
/// group's sites (by default where its consumers read it; summed over sites for residual
/// groups); with [`SampleAbs::OfBatchMean`] (`gradient-batch`)
/// `|mean_{n,p} dL_n/da_k(n, p)|`. Needs gradients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gradient {
    /// Where the channels are measured.
    pub sites: SitePolicy,
    /// Where the absolute value is taken.
    pub abs: SampleAbs,
}

/// The Taylor criterion (Molchanov et al. 2017): by default
/// `mean_n |mean_p a_k(n, p) dL_n/da_k(n, p)|`, the first-order estimate of the change of
/// sample `n`'s loss when channel `k` is zeroed, in absolute value per sample and averaged
/// as in the paper; with [`SampleAbs::OfBatchMean`] (`taylor-batch`)
/// `|mean_{n,p} a_k dL_n/da_k|`, the first-order change of the mean loss. Needs gradients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Taylor {
    /// Where the channels are measured.
    pub sites: SitePolicy,
    /// Where the absolute value is taken.
    pub abs: SampleAbs,
}

impl Gradient {
    /// The gradient criterion with the absolute value of the batch mean (`gradient-batch`).
    pub fn batch() -> Self {
        Self {
            abs: SampleAbs::OfBatchMean,
            ..Self::default()
        }
    }
}

impl Taylor {
    /// The Taylor criterion with the absolute value of the batch mean (`taylor-batch`).
    pub fn batch() -> Self {
        Self {
            abs: SampleAbs::OfBatchMean,
            ..Self::default()
        }
    }
}

impl Criterion for Gradient {
    fn name(&self) -> String {
        match self.abs {
            SampleAbs::PerSample => names::GRADIENT,
            SampleAbs::OfBatchMean => names::GRADIENT_BATCH,
        }
        .into()
    }
    fn needs(&self) -> Needs {
        Needs::Gradients
    }
    fn score(&self, ctx: &ScoringContext<'_>) -> Result<Scores> {
        let sums = probe(ctx, &self.name(), self.sites)?;
        finish(ctx, sums, self.name(), false, self.abs)
    }
}

impl Criterion for Taylor {
    fn name(&self) -> String {
        match self.abs {
            SampleAbs::PerSample => names::TAYLOR,
            SampleAbs::OfBatchMean => names::TAYLOR_BATCH,
        }
        .into()
    }
    fn needs(&self) -> Needs {
        Needs::Gradients
    }
    fn score(&self, ctx: &ScoringContext<'_>) -> Result<Scores> {
        let sums = probe(ctx, &self.name(), self.sites)?;
        finish(ctx, sums, self.name(), true, self.abs)
    }
}
