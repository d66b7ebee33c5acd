//! Errors of group discovery, plan validation, surgery and counting.

use xprune_graph::GraphError;

/// Everything that can go wrong when finding groups, validating a [`PrunePlan`](crate::PrunePlan),
/// removing channels or counting a graph.
///
/// Every variant names the group, node or index concerned, so that the message alone tells the
/// user what to fix. A failing call never changes the caller's graph.
#[derive(Debug, thiserror::Error)]
pub enum SurgeryError {
    /// A plan names a group that the groups do not contain.
    #[error("unknown channel group {group}{hint}")]
    UnknownGroup {
        /// The requested group, as written in the plan (`#3` for an id, `` `name` `` for a name).
        group: String,
        /// A hint listing similar or available group names.
        hint: String,
    },
    /// A plan lists the same group twice (for example once by id and once by name).
    #[error("channel group `{group}` appears more than once in the plan")]
    DuplicateGroup {
        /// The group's name.
        group: String,
    },
    /// A plan removes channels of a group that must not be pruned.
    #[error("channel group `{group}` cannot be pruned: {reason}")]
    PinnedGroup {
        /// The group's name.
        group: String,
        /// Why the group is pinned.
        reason: String,
    },
    /// A plan removes a channel index that the group does not have.
    #[error(
        "channel group `{group}`: channel index {index} is out of range (the group has {channels} channels)"
    )]
    IndexOutOfRange {
        /// The group's name.
        group: String,
        /// The offending index.
        index: usize,
        /// Number of channels of the group.
        channels: usize,
    },
    /// A plan lists a channel index twice for one group.
    #[error("channel group `{group}`: channel index {index} is listed more than once")]
    DuplicateIndex {
        /// The group's name.
        group: String,
        /// The repeated index.
        index: usize,
    },
    /// A plan removes every channel of a group, which would disconnect the network.
    #[error(
        "channel group `{group}`: the plan removes all {channels} channels; at least one must remain"
    )]
    RemovesAll {
        /// The group's name.
        group: String,
        /// Number of channels of the group.
        channels: usize,
    },
    /// A plan that would remove every channel of one node (a concatenation input, a slice)
    /// although its groups keep channels elsewhere.
    #[error("the plan removes all {channels} channels of node `{node}`; at least one must remain")]
    EmptyNode {
        /// The node.
        node: String,
        /// Its number of channels.
        channels: usize,
    },
    /// A node name (for example a node to pin) that the graph does not contain.
    #[error("unknown node `{name}`{hint}")]
    UnknownNode {
        /// The requested name.
        name: String,
        /// A hint listing similar names.
        hint: String,
    },
    /// The groups were found on a different graph than the one passed.
    #[error("the channel groups do not belong to this graph: {0}")]
    GraphMismatch(String),
    /// The graph rejected the rebuilt layers or a run failed.
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// Result alias of this crate.
pub type Result<T, E = SurgeryError> = std::result::Result<T, E>;
