//! Where a group's channels are measured: the values its consumers read.

use burn::tensor::Tensor;
use xprune_graph::{Activation, Graph};
use xprune_surgery::{ChannelGroup, ChannelSlot, Member};

/// Where activation-, gradient- and relevance-based criteria measure a group's channels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SitePolicy {
    /// Where the group's consumers read the channels ([`consumer_sites`]): after batch norm,
    /// activation and pooling. The default.
    #[default]
    ConsumerInputs,
    /// At the outputs of the group's producers (convolution or linear outputs, before batch
    /// norm and activation), as in the reference code of Yeom et al. for gradients.
    ProducerOutputs,
}

/// The sites of a group under a policy.
pub fn sites(graph: &Graph, group: &ChannelGroup, policy: SitePolicy) -> Vec<ChannelSlot> {
    match policy {
        SitePolicy::ConsumerInputs => consumer_sites(graph, group),
        SitePolicy::ProducerOutputs => {
            let p: Vec<ChannelSlot> = group
                .members()
                .iter()
                .filter(|m| matches!(m, Member::Producer { .. }))
                .map(|m| m.slot())
                .collect();
            if p.is_empty() {
                consumer_sites(graph, group)
            } else {
                p
            }
        }
    }
}

/// The sites of a group: the slots of the group's channels in the outputs that its consumers
/// read (e.g. the ReLU or pooling output before the next convolution, the flatten before a
/// linear layer, the concat before a convolution). These are the values that change when a
/// channel is removed, so activation-, gradient- and relevance-based criteria measure there.
/// A group without consumers is measured at its producers.
pub fn consumer_sites(graph: &Graph, group: &ChannelGroup) -> Vec<ChannelSlot> {
    let mut sites: Vec<ChannelSlot> = Vec::new();
    for m in group.members() {
        if let Member::Consumer { node, .. } = m {
            let Ok(info) = graph.node(*node) else {
                continue;
            };
            for &input in &info.inputs {
                for src in group.members() {
                    if src.node() == input && !matches!(src, Member::Consumer { .. }) {
                        let slot = src.slot();
                        if !sites.contains(&slot) {
                            sites.push(slot);
                        }
                    }
                }
            }
        }
    }
    if sites.is_empty() {
        sites = group
            .members()
            .iter()
            .filter(|m| matches!(m, Member::Producer { .. }))
            .map(|m| m.slot())
            .collect();
    }
    sites.sort_by_key(|s| (s.node, s.offset));
    sites
}

/// The per-sample sum of each group channel at a site: `[batch, channels]`, summing spatial
/// positions (maps) or the `block` features of a channel (after a flatten).
pub fn channel_sums(value: &Activation, slot: &ChannelSlot, channels: usize) -> Tensor<2> {
    let per_channel = value.channel_sums();
    let [b, _] = per_channel.dims();
    let span = per_channel.narrow(1, slot.offset, channels * slot.block);
    if slot.block == 1 {
        span
    } else {
        span.reshape([b, channels, slot.block])
            .sum_dim(2)
            .reshape([b, channels])
    }
}
