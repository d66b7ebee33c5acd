//! Channel groups: sets of coupled channels that must lose the same channel indices together,
//! with the role every node plays in a group and where the group's channels sit in it.

use crate::error::{Result, SurgeryError};
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::fmt;
use xprune_graph::{FeatureShape, Graph, NodeId};

/// Index of a group in [`ChannelGroups`].
pub type GroupId = usize;

/// Where each channel of a group sits along one node's channel axis: channel `k` occupies the
/// indices [`Positions::of`]`(k)` (one index for most nodes, `H * W` consecutive features after
/// a flatten, a whole convolution group's worth for grouped convolutions, none when the node
/// does not hold that channel).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Positions {
    starts: Vec<u32>,
    indices: Vec<u32>,
}

impl Positions {
    /// Positions from one list of indices per group channel.
    pub fn from_lists(lists: &[Vec<usize>]) -> Self {
        let mut starts = Vec::with_capacity(lists.len() + 1);
        let mut indices = Vec::new();
        starts.push(0);
        for l in lists {
            indices.extend(l.iter().map(|&i| i as u32));
            starts.push(indices.len() as u32);
        }
        Self { starts, indices }
    }

    /// Number of group channels.
    pub fn channels(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// The indices of group channel `k` (empty for a channel out of range).
    pub fn of(&self, k: usize) -> &[u32] {
        match (self.starts.get(k), self.starts.get(k + 1)) {
            (Some(&a), Some(&b)) => &self.indices[a as usize..b as usize],
            _ => &[],
        }
    }

    /// Every index, channel after channel.
    pub fn all(&self) -> &[u32] {
        &self.indices
    }

    /// `Some((offset, block))` when channel `k` occupies `offset + k * block .. + block` for
    /// every `k` (the common, contiguous case).
    pub fn strided(&self) -> Option<(usize, usize)> {
        let block = self.uniform_width()?;
        let offset = *self.indices.first()? as usize;
        let contiguous = self
            .indices
            .iter()
            .enumerate()
            .all(|(i, &x)| x as usize == offset + i);
        (contiguous && block > 0).then_some((offset, block))
    }

    /// The number of indices of every channel, when it is the same for all.
    pub fn uniform_width(&self) -> Option<usize> {
        let w = self.of(0).len();
        (0..self.channels())
            .all(|k| self.of(k).len() == w)
            .then_some(w)
    }

    /// The largest number of indices of a channel.
    pub fn max_width(&self) -> usize {
        (0..self.channels())
            .map(|k| self.of(k).len())
            .max()
            .unwrap_or(0)
    }
}

/// Where a group's channels sit in one node's output (or, for consumers, in the input they
/// read): channel `k` is at [`ChannelSlot::indices`]`(k)` along the node's channel axis
/// (features for flat values).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChannelSlot {
    /// The node.
    pub node: NodeId,
    /// The indices of every group channel.
    pub positions: Positions,
}

impl ChannelSlot {
    /// The node indices that hold group channel `channel`.
    pub fn indices(&self, channel: usize) -> impl Iterator<Item = usize> + '_ {
        self.positions.of(channel).iter().map(|&i| i as usize)
    }

    /// The smallest index the group occupies (for ordering).
    pub fn offset(&self) -> usize {
        self.positions.all().iter().min().map_or(0, |&i| i as usize)
    }

    /// Indices per group channel (the largest, when they differ).
    pub fn block(&self) -> usize {
        self.positions.max_width()
    }

    /// Sums per group channel of per-index values `[batch, node channels]`: `[batch, group
    /// channels]` (channels absent from this node sum to 0).
    pub fn sum(&self, per_index: Tensor<2>) -> Tensor<2> {
        let [b, _] = per_index.dims();
        let k = self.positions.channels();
        let device = per_index.device();
        if let Some((offset, block)) = self.positions.strided() {
            let span = per_index.narrow(1, offset, k * block);
            return if block == 1 {
                span
            } else {
                span.reshape([b, k, block]).sum_dim(2).reshape([b, k])
            };
        }
        if let Some(w) = self.positions.uniform_width().filter(|&w| w > 0) {
            let idx: Vec<i64> = self.positions.all().iter().map(|&i| i as i64).collect();
            let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [k * w]), &device);
            let picked = per_index.select(1, idx);
            return if w == 1 {
                picked
            } else {
                picked.reshape([b, k, w]).sum_dim(2).reshape([b, k])
            };
        }
        // Channels with different numbers of indices: one-hot assignment matrix.
        let [_, c] = per_index.dims();
        let mut assign = vec![0.0f32; c * k];
        for ch in 0..k {
            for &i in self.positions.of(ch) {
                assign[i as usize * k + ch] += 1.0;
            }
        }
        let assign = Tensor::<2>::from_data(TensorData::new(assign, [c, k]), &device);
        per_index.matmul(assign)
    }
}

/// The role a node plays in a channel group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A node whose output channels are the group's (convolution, linear layer): removing
    /// channel `k` removes its output rows.
    Producer,
    /// A node that creates the group's channels but cannot lose them (the graph input, a
    /// layer whose outputs are pinned). A group with a fixed member is pinned.
    Fixed,
    /// A node whose output carries the group's channels without mixing them (batch norm,
    /// activations, pooling, depthwise convolutions, adds, products, concatenations, slices,
    /// permutations, flattens).
    Carrier,
    /// A layer that reads the group's channels and mixes them into its own: removing channel
    /// `k` removes its input columns.
    Consumer,
}

impl Role {
    /// The role's name: `producer`, `fixed`, `carrier` or `consumer`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Producer => "producer",
            Self::Fixed => "fixed",
            Self::Carrier => "carrier",
            Self::Consumer => "consumer",
        }
    }
}

/// One node's part in a group: its role and where the group's channels sit in its output
/// (in the input it reads, for consumers).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    /// The role.
    pub role: Role,
    /// For consumers, which of the node's inputs reads the group (0 otherwise).
    pub input: usize,
    /// The node and the positions of the group's channels.
    pub slot: ChannelSlot,
}

impl Member {
    /// The node of this member.
    pub fn node(&self) -> NodeId {
        self.slot.node
    }

    /// The role's name: `producer`, `fixed`, `carrier` or `consumer`.
    pub fn role_name(&self) -> &'static str {
        self.role.name()
    }

    /// Where the group's channels sit in this member's output (producers, fixed members and
    /// carriers) or input (consumers).
    pub fn slot(&self) -> ChannelSlot {
        self.slot.clone()
    }

    /// Whether the member reads the group (a consumer) rather than holding it in its output.
    pub fn is_consumer(&self) -> bool {
        self.role == Role::Consumer
    }
}

/// Why a group cannot be pruned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "pin", rename_all = "snake_case")]
pub enum PinReason {
    /// The group holds the graph input's channels.
    Input {
        /// The input node.
        node: String,
    },
    /// The group's channels reach the graph output (the classes).
    Output {
        /// The output node.
        node: String,
    },
    /// The user asked not to prune this node.
    User {
        /// The pinned node.
        node: String,
    },
    /// A layer that cannot lose these channels, with its kind's reason (a grouped convolution
    /// with uneven groups, a normalisation over channels, ...).
    Layer {
        /// The node.
        node: String,
        /// Why, as the kind says.
        reason: String,
    },
}

impl PinReason {
    /// The node the reason is about.
    pub fn node(&self) -> &str {
        match self {
            Self::Input { node }
            | Self::Output { node }
            | Self::User { node }
            | Self::Layer { node, .. } => node,
        }
    }
}

impl fmt::Display for PinReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Input { node } => write!(f, "it holds the channels of the graph input `{node}`"),
            Self::Output { node } => write!(f, "its channels reach the graph output `{node}`"),
            Self::User { node } => write!(f, "node `{node}` is pinned by the user"),
            Self::Layer { node, reason } => write!(f, "at `{node}`: {reason}"),
        }
    }
}

/// A set of coupled channels: removing group channel `k` removes channel `k` of every
/// producer, the corresponding values of every carrier and the corresponding inputs of every
/// consumer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelGroup {
    pub(crate) id: GroupId,
    pub(crate) name: String,
    pub(crate) channels: usize,
    pub(crate) members: Vec<Member>,
    pub(crate) pins: Vec<PinReason>,
}

impl ChannelGroup {
    /// The group's index in its [`ChannelGroups`].
    pub fn id(&self) -> GroupId {
        self.id
    }

    /// The group's name: the name of its first producer (or fixed member) in node order.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of channels of the group (removable units: a grouped convolution's group of
    /// channels counts as one).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// All members, ordered by node id.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Whether channels of this group may be removed.
    pub fn is_prunable(&self) -> bool {
        self.pins.is_empty()
    }

    /// Why the group may not be pruned (empty for a prunable group).
    pub fn pins(&self) -> &[PinReason] {
        &self.pins
    }

    fn with_role(&self, role: Role) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(move |m| m.role == role)
    }

    /// The nodes whose output channels are the group's channels (convolutions, linear
    /// layers).
    pub fn producers(&self) -> Vec<NodeId> {
        self.with_role(Role::Producer).map(|m| m.node()).collect()
    }

    /// Where the group's channels sit in the outputs of its carriers.
    pub fn carriers(&self) -> Vec<ChannelSlot> {
        self.with_role(Role::Carrier).map(Member::slot).collect()
    }

    /// Where the group's channels sit in the inputs of its consumers.
    pub fn consumers(&self) -> Vec<ChannelSlot> {
        self.with_role(Role::Consumer).map(Member::slot).collect()
    }

    /// Every node output that holds the group's channels (producers, fixed members and
    /// carriers), with their positions: masking these outputs at a channel is equivalent to
    /// removing it.
    pub fn mask_nodes(&self) -> Vec<ChannelSlot> {
        self.members
            .iter()
            .filter(|m| !m.is_consumer())
            .map(Member::slot)
            .collect()
    }
}

/// Options of group discovery.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupOptions {
    /// Output channels of these nodes are pinned (their input channels may still shrink when
    /// the groups they read are pruned).
    pub pinned: Vec<NodeId>,
    /// Allow pruning channels that a normalisation across channels reads (layer norm): the
    /// pruned model then differs from the masked one, because the normalisation's statistics
    /// change (Torch-Pruning's behaviour). Off by default.
    pub prune_normalized: bool,
}

impl GroupOptions {
    /// These options with the output channels of the named nodes pinned too; an unknown name
    /// is an error naming it.
    pub fn pin_names<S: AsRef<str>>(mut self, graph: &Graph, names: &[S]) -> Result<Self> {
        self.pinned
            .extend(ChannelGroups::resolve_names(graph, names)?);
        Ok(self)
    }

    /// These options with pruning through normalisations allowed or not.
    pub fn prune_normalized(mut self, allow: bool) -> Self {
        self.prune_normalized = allow;
        self
    }
}

/// The channel groups of a graph, found by [`ChannelGroups::new`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelGroups {
    pub(crate) groups: Vec<ChannelGroup>,
    /// Node names and output shapes of the graph the groups were found on.
    pub(crate) nodes: Vec<(String, FeatureShape)>,
}

impl ChannelGroups {
    /// Finds the channel groups of `graph`; the output node's channels are pinned.
    pub fn new(graph: &Graph) -> Self {
        crate::discover::find_groups(graph, &GroupOptions::default())
    }

    /// Finds the channel groups of `graph` with `options`.
    pub fn with_options(graph: &Graph, options: &GroupOptions) -> Self {
        crate::discover::find_groups(graph, options)
    }

    /// Finds the channel groups of `graph`, also pinning the output channels of the named
    /// nodes (their input channels may still shrink when the groups they read are pruned).
    pub fn with_pinned<S: AsRef<str>>(graph: &Graph, pinned: &[S]) -> Result<Self> {
        Ok(Self::with_options(
            graph,
            &GroupOptions::default().pin_names(graph, pinned)?,
        ))
    }

    fn resolve_names<S: AsRef<str>>(graph: &Graph, pinned: &[S]) -> Result<Vec<NodeId>> {
        pinned
            .iter()
            .map(|name| {
                graph.find(name.as_ref()).map_err(|e| match e {
                    xprune_graph::GraphError::UnknownNode { name, hint } => {
                        SurgeryError::UnknownNode { name, hint }
                    }
                    other => other.into(),
                })
            })
            .collect::<Result<Vec<_>>>()
    }

    /// Number of groups, pinned ones included.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether there are no groups.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// All groups, ordered by their first producer's node id.
    pub fn groups(&self) -> &[ChannelGroup] {
        &self.groups
    }

    /// All groups, in order.
    pub fn iter(&self) -> impl Iterator<Item = &ChannelGroup> {
        self.groups.iter()
    }

    /// The groups that may be pruned.
    pub fn prunable(&self) -> impl Iterator<Item = &ChannelGroup> {
        self.groups.iter().filter(|g| g.is_prunable())
    }

    /// The group with this id.
    pub fn get(&self, id: GroupId) -> Option<&ChannelGroup> {
        self.groups.get(id)
    }

    /// The group with this name (its first producer's node name).
    pub fn find(&self, name: &str) -> Option<&ChannelGroup> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The group whose channels are the output channels of `node` (a producer or fixed
    /// member), if any.
    pub fn group_of(&self, node: NodeId) -> Option<&ChannelGroup> {
        self.groups.iter().find(|g| {
            g.members
                .iter()
                .any(|m| matches!(m.role, Role::Producer | Role::Fixed) && m.node() == node)
        })
    }

    /// The groups whose channels a node's output holds, with their positions in it.
    pub fn groups_at(&self, node: NodeId) -> Vec<(GroupId, ChannelSlot)> {
        let mut out = Vec::new();
        for g in &self.groups {
            for m in &g.members {
                if m.node() == node && !m.is_consumer() {
                    out.push((g.id, m.slot()));
                }
            }
        }
        out.sort_by_key(|(_, s)| s.offset());
        out
    }

    /// Name of node `id` in the graph the groups were found on.
    pub fn node_name(&self, id: NodeId) -> &str {
        self.nodes.get(id).map(|(n, _)| n.as_str()).unwrap_or("")
    }

    /// Output shape of node `id` in the graph the groups were found on.
    pub fn node_shape(&self, id: NodeId) -> Option<FeatureShape> {
        self.nodes.get(id).map(|(_, s)| *s)
    }

    /// Number of nodes of the graph the groups were found on.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Checks that the groups were found on `graph` (same node names and shapes).
    pub fn check(&self, graph: &Graph) -> Result<()> {
        let nodes = graph.nodes();
        if nodes.len() != self.nodes.len() {
            return Err(SurgeryError::GraphMismatch(format!(
                "the groups were found on a graph of {} nodes, this graph has {}",
                self.nodes.len(),
                nodes.len()
            )));
        }
        for (info, (name, shape)) in nodes.iter().zip(&self.nodes) {
            if info.name != *name || info.shape != *shape {
                return Err(SurgeryError::GraphMismatch(format!(
                    "node `{}` of shape [{}] was `{name}` of shape [{shape}] when the groups were found",
                    info.name, info.shape
                )));
            }
        }
        Ok(())
    }

    /// A readable listing: one block per group with its name, channel count, whether it is
    /// prunable, and its members by role.
    pub fn listing(&self) -> String {
        self.to_string()
    }

    fn member_label(&self, m: &Member) -> String {
        let name = self.node_name(m.node());
        let p = &m.slot.positions;
        match p.strided() {
            Some((0, 1)) => name.to_string(),
            Some((o, 1)) => format!("{name}@{o}"),
            Some((o, b)) => format!("{name}@{o}x{b}"),
            None => {
                let shown: Vec<String> = (0..p.channels().min(4))
                    .map(|k| p.of(k).first().map_or("-".into(), |i| i.to_string()))
                    .collect();
                let more = if p.channels() > 4 { ",..." } else { "" };
                let width = p.max_width();
                let block = if width > 1 {
                    format!("x{width}")
                } else {
                    String::new()
                };
                format!("{name}@[{}{more}]{block}", shown.join(","))
            }
        }
    }
}

impl fmt::Display for ChannelGroups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prunable = self.prunable().count();
        writeln!(
            f,
            "{} channel groups ({prunable} prunable, {} pinned); `name@offset` = channels start at offset, `xB` = B values per channel, `@[i,j,...]` = channels at scattered indices",
            self.len(),
            self.len() - prunable
        )?;
        for g in &self.groups {
            let status = if g.is_prunable() {
                "prunable".to_string()
            } else {
                let reasons: Vec<String> = g.pins.iter().map(|r| r.to_string()).collect();
                format!("pinned: {}", reasons.join("; "))
            };
            writeln!(
                f,
                "#{:<3} {}  {} channels  {status}",
                g.id, g.name, g.channels
            )?;
            for (label, role) in [
                ("producers", Role::Producer),
                ("fixed", Role::Fixed),
                ("carriers", Role::Carrier),
                ("consumers", Role::Consumer),
            ] {
                let names: Vec<String> = g
                    .members
                    .iter()
                    .filter(|m| m.role == role)
                    .map(|m| self.member_label(m))
                    .collect();
                if !names.is_empty() {
                    writeln!(f, "     {label:<10} {}", names.join(", "))?;
                }
            }
        }
        Ok(())
    }
}
