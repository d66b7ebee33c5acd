//! The [`Shapley`] criterion.

use crate::criterion::{Criterion, Needs, ScoringContext};
use crate::error::{CriterionError, Result};
use crate::scores::Scores;
use crate::shapley::game::{SampleAggregate, ShapleyError, ShapleyMethod, shapley_values};
use crate::shapley::graph_game::GraphGame;

/// Scores channel `k` of a group by its Shapley value in the game whose players are the
/// group's channels and whose value is minus the cross-entropy of the reference data with the
/// absent channels masked (Ancona et al. 2020): the average, over coalitions, of the loss
/// decrease that channel `k` brings. Exact enumeration for groups of at most
/// `exact_max_channels` channels, permutation sampling otherwise.
///
/// The values satisfy efficiency: per group they sum to `v(all) - v(none)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Shapley {
    /// Random orders per group (permutation sampling).
    pub permutations: usize,
    /// Also walk each order reversed (antithetic pairs).
    pub antithetic: bool,
    /// Truncation tolerance of permutation sampling (see [`ShapleyMethod::Permutations`]).
    pub truncation: Option<f64>,
    /// Groups of at most this many channels are solved exactly (`2^n` evaluations).
    pub exact_max_channels: usize,
    /// How per-sample values are aggregated.
    pub aggregate: SampleAggregate,
    /// Largest number of rows (coalitions x samples) per forward pass.
    pub max_batch_rows: usize,
}

impl Default for Shapley {
    fn default() -> Self {
        Self {
            permutations: 5,
            antithetic: true,
            truncation: None,
            exact_max_channels: 10,
            aggregate: SampleAggregate::Mean,
            max_batch_rows: 512,
        }
    }
}

impl Shapley {
    /// Permutation sampling with `permutations` orders per group.
    pub fn with_permutations(permutations: usize) -> Self {
        Self {
            permutations,
            ..Self::default()
        }
    }

    fn method_for(&self, channels: usize) -> ShapleyMethod {
        if channels <= self.exact_max_channels {
            ShapleyMethod::Exact
        } else {
            ShapleyMethod::Permutations {
                permutations: self.permutations,
                antithetic: self.antithetic,
                truncation: self.truncation,
            }
        }
    }
}

impl Criterion for Shapley {
    fn name(&self) -> String {
        "shapley".into()
    }

    fn needs(&self) -> Needs {
        Needs::Data
    }

    fn score(&self, ctx: &ScoringContext<'_>) -> Result<Scores> {
        let data = ctx.require_data("shapley")?;
        if self.permutations == 0 {
            return Err(CriterionError::Config {
                criterion: self.name(),
                message: "permutations must be at least 1".into(),
            });
        }
        let chunk = ctx.batch_size.min(data.len()).max(1);
        let mut scores = Scores::new(self.name());
        for (i, group) in ctx.groups.prunable().enumerate() {
            let mut game = GraphGame::new(ctx.graph, group, data, chunk, ctx.device)?;
            let coalitions_per_pass = (self.max_batch_rows / chunk).max(1);
            let seed = ctx
                .seed
                .wrapping_add(i as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let values = shapley_values(
                &mut game,
                &self.method_for(group.channels()),
                self.aggregate,
                coalitions_per_pass,
                seed,
            )
            .map_err(|e| match e {
                ShapleyError::Game(e) => e,
                other => CriterionError::Config {
                    criterion: "shapley".into(),
                    message: format!("group `{}`: {other}", group.name()),
                },
            })?;
            scores.insert(ctx.groups, group.id(), values.values)?;
        }
        Ok(scores)
    }
}
