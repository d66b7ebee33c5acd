//! Where a group's channels are measured: the values its consumers read.

use burn::tensor::Tensor;
use xprune_graph::{Activation, Graph};
use xprune_surgery::{ChannelGroup, ChannelSlot, Role};

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
                .filter(|m| m.role == Role::Producer)
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
    for m in group.members().iter().filter(|m| m.is_consumer()) {
        let Some(&input) = graph
            .node(m.node())
            .ok()
            .and_then(|info| info.inputs.get(m.input))
        else {
            continue;
        };
        for src in group.members() {
            if src.node() == input && !src.is_consumer() {
                let slot = src.slot();
                if !sites.contains(&slot) {
                    sites.push(slot);
                }
            }
        }
    }
    if sites.is_empty() {
        sites = group
            .members()
            .iter()
            .filter(|m| m.role == Role::Producer)
            .map(|m| m.slot())
            .collect();
    }
    sites.sort_by_key(|s| (s.node, s.offset()));
    sites
}

/// The per-sample sum of each group channel at a site: `[batch, channels]`, summing positions
/// (maps, tokens) and the indices a channel occupies at the site (the `H * W` features of a
/// channel after a flatten, a convolution group's channels).
pub fn channel_sums(value: &Activation, slot: &ChannelSlot, channels: usize) -> Tensor<2> {
    debug_assert_eq!(slot.positions.channels(), channels);
    slot.sum(value.channel_sums())
}

/// The number of values per group channel at a site (positions times indices per channel),
/// for averaging.
pub fn values_per_channel(graph: &Graph, slot: &ChannelSlot) -> usize {
    let positions = graph
        .nodes()
        .get(slot.node)
        .map_or(1, |n| n.shape.positions());
    (positions * slot.block()).max(1)
}
