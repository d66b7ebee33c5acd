//! [`PrunePlan`]: which channels of which groups to remove, and its validation against the
//! groups of a graph.

use crate::error::{Result, SurgeryError};
use crate::group::{ChannelGroup, ChannelGroups, GroupId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A group named in a plan: by id (its index in [`ChannelGroups`]) or by name (its first
/// producer's node name, stable when the groups are found again on the same graph).
///
/// In JSON an id is a number and a name a string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GroupKey {
    /// The group's index.
    Id(GroupId),
    /// The group's name.
    Name(String),
}

impl From<GroupId> for GroupKey {
    fn from(id: GroupId) -> Self {
        Self::Id(id)
    }
}

impl From<&str> for GroupKey {
    fn from(name: &str) -> Self {
        Self::Name(name.to_string())
    }
}

impl From<String> for GroupKey {
    fn from(name: String) -> Self {
        Self::Name(name)
    }
}

impl From<&ChannelGroup> for GroupKey {
    fn from(group: &ChannelGroup) -> Self {
        Self::Id(group.id())
    }
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "#{id}"),
            Self::Name(name) => write!(f, "`{name}`"),
        }
    }
}

/// The channels to remove from one group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanEntry {
    /// The group.
    pub group: GroupKey,
    /// Group channel indices to remove (validated to be unique and in range).
    pub remove: Vec<usize>,
}

/// Which channels of which groups to remove: a list of `(group, channel indices)` entries.
///
/// Apply it with [`prune`](crate::prune) (a new, smaller graph) or [`PrunePlan::masks`]
/// (channel masks on the unchanged graph). Both validate it first with
/// [`PrunePlan::resolve`]: an unknown or pinned group, a group listed twice, an index out of
/// range, a repeated index or removing every channel of a group is an error naming the group
/// and the index. Serialises (serde) as a list of `{"group": <id or name>, "remove": [...]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PrunePlan {
    entries: Vec<PlanEntry>,
}

impl PrunePlan {
    /// An empty plan (removes nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// The plan with channels of one more group removed (builder style; see
    /// [`PrunePlan::insert`]).
    pub fn remove(
        mut self,
        group: impl Into<GroupKey>,
        channels: impl IntoIterator<Item = usize>,
    ) -> Self {
        self.insert(group, channels);
        self
    }

    /// Sets the channels to remove from a group, replacing an earlier entry with the same
    /// key.
    pub fn insert(
        &mut self,
        group: impl Into<GroupKey>,
        channels: impl IntoIterator<Item = usize>,
    ) {
        let group = group.into();
        let remove: Vec<usize> = channels.into_iter().collect();
        match self.entries.iter_mut().find(|e| e.group == group) {
            Some(e) => e.remove = remove,
            None => self.entries.push(PlanEntry { group, remove }),
        }
    }

    /// The entries, in insertion order.
    pub fn entries(&self) -> &[PlanEntry] {
        &self.entries
    }

    /// Whether the plan removes no channel at all.
    pub fn is_empty(&self) -> bool {
        self.entries.iter().all(|e| e.remove.is_empty())
    }

    /// Total number of group channels the plan removes.
    pub fn removed_channels(&self) -> usize {
        self.entries.iter().map(|e| e.remove.len()).sum()
    }

    /// Validates the plan against `groups` and returns it by group id with sorted indices.
    pub fn resolve(&self, groups: &ChannelGroups) -> Result<ResolvedPlan> {
        let mut removed: BTreeMap<GroupId, Vec<usize>> = BTreeMap::new();
        for entry in &self.entries {
            let group = lookup(groups, &entry.group)?;
            if removed.contains_key(&group.id()) {
                return Err(SurgeryError::DuplicateGroup {
                    group: group.name().to_string(),
                });
            }
            if entry.remove.is_empty() {
                removed.insert(group.id(), Vec::new());
                continue;
            }
            if let Some(reason) = group.pins().first() {
                return Err(SurgeryError::PinnedGroup {
                    group: group.name().to_string(),
                    reason: reason.to_string(),
                });
            }
            let mut indices = entry.remove.clone();
            indices.sort_unstable();
            for pair in indices.windows(2) {
                if pair[0] == pair[1] {
                    return Err(SurgeryError::DuplicateIndex {
                        group: group.name().to_string(),
                        index: pair[0],
                    });
                }
            }
            if let Some(&index) = indices.iter().find(|&&i| i >= group.channels()) {
                return Err(SurgeryError::IndexOutOfRange {
                    group: group.name().to_string(),
                    index,
                    channels: group.channels(),
                });
            }
            if indices.len() == group.channels() {
                return Err(SurgeryError::RemovesAll {
                    group: group.name().to_string(),
                    channels: group.channels(),
                });
            }
            removed.insert(group.id(), indices);
        }
        removed.retain(|_, v| !v.is_empty());
        // No node may lose all its channels (a part of a split group, a concatenation input).
        let mut lost: BTreeMap<usize, std::collections::BTreeSet<usize>> = BTreeMap::new();
        for (&g, indices) in &removed {
            let group = &groups.groups()[g];
            for m in group.members().iter().filter(|m| !m.is_consumer()) {
                let set = lost.entry(m.node()).or_default();
                for &k in indices {
                    set.extend(m.slot.indices(k));
                }
            }
        }
        for (node, set) in lost {
            let channels = groups.node_shape(node).map_or(0, |s| s.channels());
            if !set.is_empty() && set.len() >= channels {
                return Err(SurgeryError::EmptyNode {
                    node: groups.node_name(node).to_string(),
                    channels,
                });
            }
        }
        Ok(ResolvedPlan { removed })
    }
}

fn lookup<'g>(groups: &'g ChannelGroups, key: &GroupKey) -> Result<&'g ChannelGroup> {
    let found = match key {
        GroupKey::Id(id) => groups.get(*id),
        GroupKey::Name(name) => groups.find(name),
    };
    found.ok_or_else(|| SurgeryError::UnknownGroup {
        group: key.to_string(),
        hint: group_hint(groups, key),
    })
}

fn group_hint(groups: &ChannelGroups, key: &GroupKey) -> String {
    match key {
        GroupKey::Id(_) => format!(
            " (there are {} groups, #0..#{})",
            groups.len(),
            groups.len().saturating_sub(1)
        ),
        GroupKey::Name(name) => {
            let close: Vec<&str> = groups
                .iter()
                .map(|g| g.name())
                .filter(|g| g.contains(name.as_str()) || name.contains(g))
                .take(5)
                .collect();
            if !close.is_empty() {
                format!(" (did you mean {}?)", close.join(", "))
            } else {
                let names: Vec<&str> = groups.iter().map(|g| g.name()).take(8).collect();
                let more = if groups.len() > 8 { ", ..." } else { "" };
                format!(" (groups: {}{more})", names.join(", "))
            }
        }
    }
}

/// A validated plan: sorted, unique, in-range channel indices to remove, by group id (groups
/// with nothing to remove are left out).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedPlan {
    removed: BTreeMap<GroupId, Vec<usize>>,
}

impl ResolvedPlan {
    /// The sorted channel indices removed from a group (empty if none).
    pub fn removed(&self, group: GroupId) -> &[usize] {
        self.removed.get(&group).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Groups with removed channels and their indices, by group id.
    pub fn iter(&self) -> impl Iterator<Item = (GroupId, &[usize])> {
        self.removed.iter().map(|(g, v)| (*g, v.as_slice()))
    }

    /// Whether nothing is removed.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty()
    }

    /// The group channels that remain, in order.
    pub fn kept(&self, group: &ChannelGroup) -> Vec<usize> {
        complement(self.removed(group.id()), group.channels())
    }
}

pub(crate) use xprune_graph::kind::flow::complement;
