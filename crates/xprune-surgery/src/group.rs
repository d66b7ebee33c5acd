//! Channel groups: sets of coupled channel spaces that must lose the same channel indices
//! together, with the role every node plays in a group.

use crate::error::{Result, SurgeryError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Range;
use xprune_graph::{FeatureShape, Graph, NodeId};

/// Index of a group in [`ChannelGroups`].
pub type GroupId = usize;

/// The role a node plays in a channel group.
///
/// Channel `k` of a group (`0 <= k < channels`) is the output channel `k` of each producer, the
/// values `offset + k * block .. offset + (k + 1) * block` of each carrier's output, and the
/// input channels (or features) `offset + k * block .. offset + (k + 1) * block` of each
/// consumer. `block` is 1 except after a flatten, where it is the `H * W` positions of a
/// channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Member {
    /// A convolution or linear layer whose output channels are the group's channels; removing
    /// channel `k` removes its output channel `k` (a weight row and a bias entry).
    Producer {
        /// The node.
        node: NodeId,
    },
    /// A node that creates the group's channels but cannot lose them: the graph input or the
    /// output of a grouped (not depthwise) convolution. A group with a fixed member is
    /// pinned.
    Fixed {
        /// The node.
        node: NodeId,
    },
    /// A node whose output carries the group's channels without mixing them: batch norm,
    /// ReLU, pooling, dropout, identity, a depthwise convolution, an add, a concat or a
    /// flatten.
    Carrier {
        /// The node.
        node: NodeId,
        /// First output index of the group's channels.
        offset: usize,
        /// Output values per group channel (`H * W` after a flatten, otherwise 1).
        block: usize,
    },
    /// A convolution or linear layer that reads the group's channels; removing channel `k`
    /// removes its input channels (features) `offset + k * block ..`.
    Consumer {
        /// The node.
        node: NodeId,
        /// First input index of the group's channels.
        offset: usize,
        /// Input values per group channel (`H * W` for a linear layer after a flatten).
        block: usize,
    },
}

impl Member {
    /// The node of this member.
    pub fn node(&self) -> NodeId {
        match self {
            Self::Producer { node }
            | Self::Fixed { node }
            | Self::Carrier { node, .. }
            | Self::Consumer { node, .. } => *node,
        }
    }

    /// The role's name: `producer`, `fixed`, `carrier` or `consumer`.
    pub fn role_name(&self) -> &'static str {
        match self {
            Self::Producer { .. } => "producer",
            Self::Fixed { .. } => "fixed",
            Self::Carrier { .. } => "carrier",
            Self::Consumer { .. } => "consumer",
        }
    }

    /// Where the group's channels sit in this member's output (producers, fixed members and
    /// carriers) or input (consumers).
    pub fn slot(&self) -> ChannelSlot {
        match *self {
            Self::Producer { node } | Self::Fixed { node } => ChannelSlot {
                node,
                offset: 0,
                block: 1,
            },
            Self::Carrier {
                node,
                offset,
                block,
            }
            | Self::Consumer {
                node,
                offset,
                block,
            } => ChannelSlot {
                node,
                offset,
                block,
            },
        }
    }
}

/// Where a group's channels sit in one node's output (or, for consumers, input): channel `k`
/// is at indices `offset + k * block .. offset + (k + 1) * block` of the node's channels
/// (features for flat values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChannelSlot {
    /// The node.
    pub node: NodeId,
    /// First index of the group's channels.
    pub offset: usize,
    /// Indices per group channel.
    pub block: usize,
}

impl ChannelSlot {
    /// The node indices that hold group channel `channel`.
    pub fn indices(&self, channel: usize) -> Range<usize> {
        let start = self.offset + channel * self.block;
        start..start + self.block
    }
}

/// Why a group cannot be pruned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", content = "node", rename_all = "snake_case")]
pub enum PinReason {
    /// The group holds the graph input's channels.
    Input(String),
    /// The group's channels reach the graph output (the classes).
    Output(String),
    /// The user asked not to prune this node.
    User(String),
    /// The group's channels are the output of a grouped (not depthwise) convolution.
    GroupedConvOutput(String),
    /// The group's channels are read by a grouped (not depthwise) convolution, whose channel
    /// groups would be broken by removing single channels.
    GroupedConvInput(String),
    /// An add whose inputs are split into channel ranges of different sources that do not
    /// line up (for example a concat added to a single convolution's output).
    MisalignedAdd(String),
}

impl PinReason {
    /// The node the reason is about.
    pub fn node(&self) -> &str {
        match self {
            Self::Input(n)
            | Self::Output(n)
            | Self::User(n)
            | Self::GroupedConvOutput(n)
            | Self::GroupedConvInput(n)
            | Self::MisalignedAdd(n) => n,
        }
    }
}

impl fmt::Display for PinReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Input(n) => write!(f, "it holds the channels of the graph input `{n}`"),
            Self::Output(n) => write!(f, "its channels reach the graph output `{n}`"),
            Self::User(n) => write!(f, "node `{n}` is pinned by the user"),
            Self::GroupedConvOutput(n) => {
                write!(f, "it is the output of the grouped convolution `{n}`")
            }
            Self::GroupedConvInput(n) => write!(f, "it is read by the grouped convolution `{n}`"),
            Self::MisalignedAdd(n) => write!(
                f,
                "the inputs of the add `{n}` hold channel ranges of different sources that do not line up"
            ),
        }
    }
}

/// A set of coupled channel spaces of one size: removing group channel `k` removes channel
/// `k` of every producer, the corresponding values of every carrier and the corresponding
/// inputs of every consumer.
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

    /// Number of channels of the group.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// All members, ordered by node id (a node may appear more than once, for example a
    /// concat that holds the group at two offsets).
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

    /// The convolution and linear nodes whose output channels are the group's channels.
    pub fn producers(&self) -> Vec<NodeId> {
        self.members
            .iter()
            .filter_map(|m| match m {
                Member::Producer { node } => Some(*node),
                _ => None,
            })
            .collect()
    }

    /// Where the group's channels sit in the outputs of its carriers.
    pub fn carriers(&self) -> Vec<ChannelSlot> {
        self.members
            .iter()
            .filter(|m| matches!(m, Member::Carrier { .. }))
            .map(Member::slot)
            .collect()
    }

    /// Where the group's channels sit in the inputs of its consumers.
    pub fn consumers(&self) -> Vec<ChannelSlot> {
        self.members
            .iter()
            .filter(|m| matches!(m, Member::Consumer { .. }))
            .map(Member::slot)
            .collect()
    }

    /// Every node output that holds the group's channels (producers, fixed members and
    /// carriers), with their position: masking these outputs at a channel is equivalent to
    /// removing it.
    pub fn mask_nodes(&self) -> Vec<ChannelSlot> {
        self.members
            .iter()
            .filter(|m| !matches!(m, Member::Consumer { .. }))
            .map(Member::slot)
            .collect()
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
        crate::discover::find_groups(graph, &[])
    }

    /// Finds the channel groups of `graph`, also pinning the output channels of the named
    /// nodes (their input channels may still shrink when the groups they read are pruned).
    pub fn with_pinned<S: AsRef<str>>(graph: &Graph, pinned: &[S]) -> Result<Self> {
        let ids = pinned
            .iter()
            .map(|name| {
                graph.find(name.as_ref()).map_err(|e| match e {
                    xprune_graph::GraphError::UnknownNode { name, hint } => {
                        SurgeryError::UnknownNode { name, hint }
                    }
                    other => other.into(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(crate::discover::find_groups(graph, &ids))
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
                .any(|m| matches!(m, Member::Producer { node: n } | Member::Fixed { node: n } if *n == node))
        })
    }

    /// The groups whose channels a node's output holds, with their position in it.
    pub fn groups_at(&self, node: NodeId) -> Vec<(GroupId, ChannelSlot)> {
        let mut out = Vec::new();
        for g in &self.groups {
            for m in &g.members {
                if m.node() == node && !matches!(m, Member::Consumer { .. }) {
                    out.push((g.id, m.slot()));
                }
            }
        }
        out.sort_by_key(|(_, s)| s.offset);
        out
    }

    /// Name of node `id` in the graph the groups were found on.
    pub fn node_name(&self, id: NodeId) -> &str {
        self.nodes.get(id).map(|(n, _)| n.as_str()).unwrap_or("")
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
        match *m {
            Member::Producer { .. } | Member::Fixed { .. } => name.to_string(),
            Member::Carrier { offset, block, .. } | Member::Consumer { offset, block, .. } => {
                match (offset, block) {
                    (0, 1) => name.to_string(),
                    (o, 1) => format!("{name}@{o}"),
                    (o, b) => format!("{name}@{o}x{b}"),
                }
            }
        }
    }
}

impl fmt::Display for ChannelGroups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prunable = self.prunable().count();
        writeln!(
            f,
            "{} channel groups ({prunable} prunable, {} pinned); `name@offset` = channels start at offset, `xB` = B values per channel",
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
            for (role, label) in [
                ("producers", "producer"),
                ("fixed", "fixed"),
                ("carriers", "carrier"),
                ("consumers", "consumer"),
            ] {
                let names: Vec<String> = g
                    .members
                    .iter()
                    .filter(|m| m.role_name() == label)
                    .map(|m| self.member_label(m))
                    .collect();
                if !names.is_empty() {
                    writeln!(f, "     {role:<10} {}", names.join(", "))?;
                }
            }
        }
        Ok(())
    }
}
