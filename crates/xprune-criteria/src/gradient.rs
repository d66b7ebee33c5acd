//! Gradient and Taylor criteria (Sun et al. 2017; Molchanov et al. 2017), via autodiff.

use crate::criterion::{Criterion, Needs, ScoringContext};
use crate::error::Result;
use crate::loss::per_sample_cross_entropy;
use crate::scores::Scores;
use crate::sites::{SitePolicy, channel_sums, sites, values_per_channel};
use burn::module::Module;
use burn::tensor::Tensor;
use std::collections::BTreeMap;
use xprune_graph::tensor_util::to_vec;
use xprune_graph::{Activation, NodeId, map_activation, with_activation};
use xprune_surgery::{ChannelSlot, GroupId};

/// One probe entry: (group, site, channels, positions per channel, sum of g, sum of a*g).
type ProbeEntry = (GroupId, ChannelSlot, usize, usize, Vec<f64>, Vec<f64>);

/// Per group and site: summed per-channel gradients and activation x gradient products.
struct ProbeSums {
    /// (group, site, channels, positions per channel, sum of g, sum of a*g)
    entries: Vec<ProbeEntry>,
    samples: usize,
}

/// Runs the reference data through the graph on an autodiff device with probes at every
/// site, and sums `dL/da` and `a * dL/da` per channel (over samples and positions).
fn probe(ctx: &ScoringContext<'_>, name: &str, policy: SitePolicy) -> Result<ProbeSums> {
    let data = ctx.require_data(name)?;
    let ad = ctx.device.clone().autodiff();
    let graph = ctx.graph.clone().no_grad().fork(&ad);
    let mut entries = Vec::new();
    let mut site_nodes: BTreeMap<NodeId, usize> = BTreeMap::new();
    for group in ctx.groups.prunable() {
        for slot in sites(ctx.graph, group, policy) {
            let shape = ctx.graph.node(slot.node)?.shape;
            site_nodes.insert(slot.node, shape.channels());
            let c = group.channels();
            let per_channel = values_per_channel(ctx.graph, &slot);
            entries.push((group.id(), slot, c, per_channel, vec![0.0; c], vec![0.0; c]));
        }
    }
    for idx in data.batch_indices(ctx.batch_size) {
        let batch = data.batch(&idx, &ad)?;
        let b = idx.len();
        // Multiplicative probe m = 1 gives sum_pos a * g per channel; additive probe p = 0
        // gives g itself.
        let mut probes: BTreeMap<NodeId, (Tensor<2>, Activation)> = BTreeMap::new();
        let mut hook = |id: NodeId, a: Activation| -> Activation {
            let Some(&c) = site_nodes.get(&id) else {
                return a;
            };
            let m = Tensor::<2>::ones([b, c], &ad).require_grad();
            let p = map_activation!(a.clone(), t => Tensor::zeros(t.dims(), &ad).require_grad());
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
        for (_, slot, c, _, g_sum, ag_sum) in entries.iter_mut() {
            let (m, p) = &probes[&slot.node];
            let ag = m
                .grad(&grads)
                .map(|t| Activation::Flat(t.without_autodiff()));
            let layout = p.layout();
            let g = with_activation!(p, t => t
                .grad(&grads)
                .and_then(|g| Activation::from_tensor(g, layout)));
            if let (Some(ag), Some(g)) = (ag, g) {
                let ag = to_vec(&channel_sums(&ag, slot, *c).sum_dim(0));
                let g = to_vec(&channel_sums(&g.to_device(ctx.device), slot, *c).sum_dim(0));
                for k in 0..*c {
                    g_sum[k] += g[k] as f64;
                    ag_sum[k] += ag[k] as f64;
                }
            }
        }
    }
    Ok(ProbeSums {
        entries,
        samples: data.len(),
    })
}

fn finish(ctx: &ScoringContext<'_>, sums: ProbeSums, name: String, taylor: bool) -> Result<Scores> {
    let mut per_group: BTreeMap<GroupId, Vec<f64>> = BTreeMap::new();
    for (group, _, c, positions, g_sum, ag_sum) in sums.entries {
        let acc = per_group.entry(group).or_insert_with(|| vec![0.0; c]);
        let src = if taylor { &ag_sum } else { &g_sum };
        let norm = (sums.samples * positions.max(1)) as f64;
        for k in 0..c {
            acc[k] += (src[k] / norm).abs();
        }
    }
    let mut scores = Scores::new(name);
    for (group, values) in per_group {
        scores.insert(ctx.groups, group, values)?;
    }
    Ok(scores)
}

/// The gradient criterion: `|mean over samples and positions of dL/da_k|`, with `L` the
/// cross-entropy of the reference data and `a_k` channel `k` at the group's sites (by default
/// where its consumers read it; summed over sites for residual groups). Needs gradients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gradient {
    /// Where the channels are measured.
    pub sites: SitePolicy,
}

/// The Taylor criterion (Molchanov et al. 2017): `|mean over samples and positions of
/// a_k * dL/da_k|`, the first-order estimate of the loss change when channel `k` is zeroed.
/// Needs gradients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Taylor {
    /// Where the channels are measured.
    pub sites: SitePolicy,
}

impl Criterion for Gradient {
    fn name(&self) -> String {
        "gradient".into()
    }
    fn needs(&self) -> Needs {
        Needs::Gradients
    }
    fn score(&self, ctx: &ScoringContext<'_>) -> Result<Scores> {
        let sums = probe(ctx, "gradient", self.sites)?;
        finish(ctx, sums, self.name(), false)
    }
}

impl Criterion for Taylor {
    fn name(&self) -> String {
        "taylor".into()
    }
    fn needs(&self) -> Needs {
        Needs::Gradients
    }
    fn score(&self, ctx: &ScoringContext<'_>) -> Result<Scores> {
        let sums = probe(ctx, "taylor", self.sites)?;
        finish(ctx, sums, self.name(), true)
    }
}
