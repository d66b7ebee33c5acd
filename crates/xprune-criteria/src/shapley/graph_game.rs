//! The channels of one group as players of a game whose value is minus the loss of the
//! network with the absent channels masked.

use crate::error::{CriterionError, Result};
use crate::loss::per_sample_cross_entropy;
use crate::shapley::game::CoalitionGame;
use crate::sites::consumer_sites;
use burn::tensor::{Device, Int, Tensor, TensorData};
use std::collections::BTreeMap;
use xprune_graph::tensor_util::to_vec;
use xprune_graph::{ChannelMasks, Dataset, Graph, NodeId, Recording};
use xprune_surgery::{ChannelGroup, ChannelSlot};

/// Slots grouped by node, each node with its channel count.
pub type NodeSlots = BTreeMap<NodeId, (usize, Vec<ChannelSlot>)>;

/// Groups `slots` by node (dropping repeats), with each node's channel count.
fn by_node(graph: &Graph, slots: impl IntoIterator<Item = ChannelSlot>) -> Result<NodeSlots> {
    let mut out = NodeSlots::new();
    for slot in slots {
        let channels = graph.node(slot.node)?.shape.channels();
        let entry = out.entry(slot.node).or_insert((channels, Vec::new()));
        if !entry.1.contains(&slot) {
            entry.1.push(slot);
        }
    }
    Ok(out)
}

/// The slots where a group's channels are masked (the outputs of its producers and carriers,
/// exactly where surgery's mask mode masks them), grouped by node with the node's channel
/// count.
pub fn mask_slots(graph: &Graph, group: &ChannelGroup) -> Result<NodeSlots> {
    let members = group.members().iter();
    by_node(
        graph,
        members.filter(|m| !m.is_consumer()).map(|m| m.slot()),
    )
}

/// The slots the rest of the network reads a group's channels from (the inputs of its
/// consumers, see [`consumer_sites`]), grouped by node with the node's channel count. Masking
/// only these is equivalent to masking every member (removal as the consumers see it): the
/// group's inner nodes (convolution, batch norm, ReLU, pooling, adds) are read by nothing
/// else. Masking late lets the cached game tile the smallest activations (after pooling).
pub fn read_slots(graph: &Graph, group: &ChannelGroup) -> Result<NodeSlots> {
    by_node(graph, consumer_sites(graph, group))
}

/// Builds `[coalitions * batch, C]` masks per masked node: row `i * batch + n` switches off
/// the channels absent from coalition `i`.
fn coalition_masks(
    slots: &NodeSlots,
    coalitions: &[Vec<bool>],
    batch: usize,
    device: &Device,
) -> ChannelMasks {
    let mut masks = ChannelMasks::new();
    for (&node, (channels, node_slots)) in slots {
        let rows = coalitions.len() * batch;
        let mut values = vec![1.0f32; rows * channels];
        for (i, coalition) in coalitions.iter().enumerate() {
            let mut row = vec![1.0f32; *channels];
            for slot in node_slots {
                for (k, present) in coalition.iter().enumerate() {
                    if !present {
                        for idx in slot.indices(k) {
                            row[idx] = 0.0;
                        }
                    }
                }
            }
            for n in 0..batch {
                let r = i * batch + n;
                values[r * channels..(r + 1) * channels].copy_from_slice(&row);
            }
        }
        masks.insert(
            node,
            Tensor::from_data(TensorData::new(values, [rows, *channels]), device),
        );
    }
    masks
}

/// The value of a coalition on every sample: minus the cross-entropy of the network with the
/// channels outside the coalition masked, measured on the reference samples.
///
/// Channels are masked where the rest of the network reads them ([`read_slots`]). The network
/// prefix up to and including the first of those nodes runs once per chunk of samples; each call to [`CoalitionGame::values`] runs only the suffix, on the cached prefix tiled
/// once per coalition, with per-sample masks: one batched pass for many coalitions.
///
/// The game holds its own copy of the graph (cheap: the weights are shared), so games on
/// several devices can run in parallel ([`shapley_values_on`](crate::shapley::game::shapley_values_on)).
pub struct GraphGame {
    graph: Graph,
    slots: NodeSlots,
    start: NodeId,
    players: usize,
    /// Per chunk of samples: the cached prefix and the labels.
    chunks: Vec<(Recording, Tensor<1, Int>, usize)>,
    samples: usize,
    device: Device,
}

impl GraphGame {
    /// Prepares the game of `group` on `data`, caching the prefix in chunks of at most
    /// `chunk` samples.
    pub fn new(
        graph: &Graph,
        group: &ChannelGroup,
        data: &Dataset,
        chunk: usize,
        device: &Device,
    ) -> Result<Self> {
        let slots = read_slots(graph, group)?;
        let start = *slots.keys().next().ok_or_else(|| CriterionError::Config {
            criterion: crate::names::SHAPLEY.into(),
            message: format!("group `{}` has no node to mask", group.name()),
        })?;
        // The first masked node is computed once, unmasked, with the prefix: the suffix
        // resumes after it and its mask applies to the cached (tiled) value. (Only when the
        // first masked node is the graph's output does the suffix recompute it.)
        let resume_at = if start + 1 < graph.len() {
            start + 1
        } else {
            start.max(1)
        };
        let mut chunks = Vec::new();
        for idx in data.batch_indices(chunk.max(1)) {
            let batch = data.batch(&idx, device)?;
            // Keeps exactly the values that nodes from `resume_at` on read.
            let prefix = graph.run(batch.inputs).until(resume_at - 1).execute()?;
            chunks.push((prefix, batch.labels, idx.len()));
        }
        Ok(Self {
            graph: graph.clone(),
            slots,
            start: resume_at,
            players: group.channels(),
            chunks,
            samples: data.len(),
            device: device.clone(),
        })
    }
}

impl CoalitionGame for GraphGame {
    type Error = CriterionError;

    fn players(&self) -> usize {
        self.players
    }

    fn samples(&self) -> usize {
        self.samples
    }

    fn values(&mut self, coalitions: &[Vec<bool>]) -> Result<Vec<Vec<f64>>> {
        let k = coalitions.len();
        let mut out = vec![Vec::with_capacity(self.samples); k];
        for (prefix, labels, b) in &self.chunks {
            let masks = coalition_masks(&self.slots, coalitions, *b, &self.device);
            let logits = self
                .graph
                .resume(prefix, self.start)
                .repeat(k)
                .masks(&masks)
                .execute()?
                .into_output()
                .flatten();
            let labels = labels.clone().repeat(&[k]);
            let loss = to_vec(&per_sample_cross_entropy(logits, labels));
            for (i, row) in out.iter_mut().enumerate() {
                row.extend(loss[i * b..(i + 1) * b].iter().map(|l| -(*l as f64)));
            }
        }
        Ok(out)
    }
}

/// The same game evaluated the naive way: one full forward pass over the reference samples
/// per coalition, with `[1, C]` masks. Used to check [`GraphGame`] and as the baseline of the
/// Shapley benchmark.
pub struct NaiveGraphGame<'a> {
    graph: &'a Graph,
    slots: NodeSlots,
    players: usize,
    batches: Vec<(xprune_graph::Activation, Tensor<1, Int>)>,
    samples: usize,
    device: Device,
}

impl<'a> NaiveGraphGame<'a> {
    /// Prepares the naive game of `group` on `data` in batches of `chunk` samples.
    pub fn new(
        graph: &'a Graph,
        group: &ChannelGroup,
        data: &Dataset,
        chunk: usize,
        device: &Device,
    ) -> Result<Self> {
        let slots = mask_slots(graph, group)?;
        let batches = data
            .batch_indices(chunk.max(1))
            .iter()
            .map(|idx| data.batch(idx, device).map(|b| (b.inputs, b.labels)))
            .collect::<std::result::Result<_, _>>()?;
        Ok(Self {
            graph,
            slots,
            players: group.channels(),
            batches,
            samples: data.len(),
            device: device.clone(),
        })
    }
}

impl CoalitionGame for NaiveGraphGame<'_> {
    type Error = CriterionError;

    fn players(&self) -> usize {
        self.players
    }

    fn samples(&self) -> usize {
        self.samples
    }

    fn values(&mut self, coalitions: &[Vec<bool>]) -> Result<Vec<Vec<f64>>> {
        let mut out = Vec::with_capacity(coalitions.len());
        for coalition in coalitions {
            let masks = coalition_masks(
                &self.slots,
                std::slice::from_ref(coalition),
                1,
                &self.device,
            );
            let mut row = Vec::with_capacity(self.samples);
            for (x, labels) in &self.batches {
                let logits = self.graph.forward_masked(x.clone(), &masks)?.flatten();
                let loss = to_vec(&per_sample_cross_entropy(logits, labels.clone()));
                row.extend(loss.iter().map(|l| -(*l as f64)));
            }
            out.push(row);
        }
        Ok(out)
    }
}
