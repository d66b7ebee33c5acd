//! [`Scores`]: one importance value per channel of every scored group.

use crate::error::{CriterionError, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use xprune_surgery::{ChannelGroups, GroupId};

/// Importance of every channel of every scored group: higher means more important (kept
/// longer). Groups are keyed by their id in the [`ChannelGroups`] they were computed on and
/// carry the group's name for reporting.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    criterion: String,
    groups: BTreeMap<GroupId, GroupScores>,
}

/// The scores of one group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupScores {
    /// The group's name (its first producer's node name).
    pub name: String,
    /// One score per channel.
    pub values: Vec<f64>,
    /// How precise the scores are, for estimated criteria (Shapley values by permutation
    /// sampling); `None` for criteria computed exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncertainty: Option<Uncertainty>,
}

/// The precision of a group's estimated scores and what they cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Uncertainty {
    /// The standard error of every score (zeros when computed exactly; `None` when it cannot
    /// be estimated, from a single draw).
    pub std_errors: Option<Vec<f64>>,
    /// Independent random draws behind the scores (0 when computed exactly).
    pub draws: usize,
    /// Evaluations of the scoring function (for Shapley: coalition values, each a masked
    /// forward pass over a batch of reference samples).
    pub evaluations: usize,
}

impl Scores {
    /// Empty scores of the named criterion.
    pub fn new(criterion: impl Into<String>) -> Self {
        Self {
            criterion: criterion.into(),
            groups: BTreeMap::new(),
        }
    }

    /// The criterion that produced the scores.
    pub fn criterion(&self) -> &str {
        &self.criterion
    }

    /// Sets the scores of a group; checks the count against the group and that every value is
    /// finite.
    pub fn insert(
        &mut self,
        groups: &ChannelGroups,
        group: GroupId,
        values: Vec<f64>,
    ) -> Result<()> {
        self.insert_estimate(groups, group, values, None)
    }

    /// Like [`insert`](Self::insert), with the scores' uncertainty; checks that there is one
    /// finite, non-negative standard error per score.
    pub fn insert_estimate(
        &mut self,
        groups: &ChannelGroups,
        group: GroupId,
        values: Vec<f64>,
        uncertainty: Option<Uncertainty>,
    ) -> Result<()> {
        let g = groups
            .get(group)
            .ok_or_else(|| CriterionError::Scores(format!("no group with id {group}")))?;
        if values.len() != g.channels() {
            return Err(CriterionError::Scores(format!(
                "group `{}` has {} channels, got {} scores",
                g.name(),
                g.channels(),
                values.len()
            )));
        }
        if let Some((channel, value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(CriterionError::NonFinite {
                criterion: self.criterion.clone(),
                group: g.name().to_string(),
                channel,
                value: *value,
            });
        }
        if let Some(se) = uncertainty.as_ref().and_then(|u| u.std_errors.as_ref())
            && (se.len() != values.len() || se.iter().any(|s| !(s.is_finite() && *s >= 0.0)))
        {
            return Err(CriterionError::Scores(format!(
                "group `{}`: {} standard errors for {} scores, or one negative or non-finite",
                g.name(),
                se.len(),
                values.len()
            )));
        }
        self.groups.insert(
            group,
            GroupScores {
                name: g.name().to_string(),
                values,
                uncertainty,
            },
        );
        Ok(())
    }

    /// The scores of a group.
    pub fn get(&self, group: GroupId) -> Option<&[f64]> {
        self.groups.get(&group).map(|g| g.values.as_slice())
    }

    /// The uncertainty of a group's scores, if they are estimated.
    pub fn uncertainty(&self, group: GroupId) -> Option<&Uncertainty> {
        self.groups.get(&group).and_then(|g| g.uncertainty.as_ref())
    }

    /// The scores of a group by name.
    pub fn by_name(&self, name: &str) -> Option<&[f64]> {
        self.groups
            .values()
            .find(|g| g.name == name)
            .map(|g| g.values.as_slice())
    }

    /// Scored groups with their scores.
    pub fn iter(&self) -> impl Iterator<Item = (GroupId, &GroupScores)> {
        self.groups.iter().map(|(k, v)| (*k, v))
    }

    /// Number of scored groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether no group is scored.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Checks that every prunable group of `groups` is scored with the right channel count.
    pub fn check_complete(&self, groups: &ChannelGroups) -> Result<()> {
        for g in groups.prunable() {
            match self.groups.get(&g.id()) {
                None => {
                    return Err(CriterionError::Scores(format!(
                        "criterion `{}` did not score group `{}`",
                        self.criterion,
                        g.name()
                    )));
                }
                Some(s) if s.values.len() != g.channels() || s.name != g.name() => {
                    return Err(CriterionError::Scores(format!(
                        "the scores of group `{}` ({} values, named `{}`) do not fit its {} channels; were they computed on another graph?",
                        g.name(),
                        s.values.len(),
                        s.name,
                        g.channels()
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// JSON with the criterion name and every group's scores by name.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("scores serialise")
    }
}
