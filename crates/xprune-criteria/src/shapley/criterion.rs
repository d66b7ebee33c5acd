//! The [`Shapley`] criterion.

use crate::criterion::{Criterion, Needs, ScoringContext};
use crate::error::{CriterionError, Result};
use crate::names;
use crate::scores::{Scores, Uncertainty};
use crate::shapley::game::{SampleAggregate, ShapleyError, ShapleyMethod, shapley_values_on};
use crate::shapley::graph_game::GraphGame;
use crate::shapley::sampling::Adaptive;
use burn::tensor::Device;
use xprune_graph::Graph;

/// Scores channel `k` of a group by its Shapley value in the game whose players are the
/// group's channels and whose value is minus the cross-entropy of the reference data with the
/// absent channels masked (Ancona et al. 2020): the average, over coalitions, of the loss
/// decrease that channel `k` brings. Exact enumeration for groups of at most
/// `exact_max_channels` channels, permutation sampling otherwise.
///
/// The values satisfy efficiency: per group they sum to `v(all) - v(none)`. Every group's
/// scores carry their [`Uncertainty`](crate::Uncertainty): the standard error of each value
/// over the draws, the draws and the coalition evaluations.
///
/// With a `tolerance` (the default), sampling is adaptive ([`Adaptive`]): it starts with
/// `permutations` draws and doubles them until every standard error is at most `tolerance`
/// times the spread of the group's values, or `max_permutations` draws are done. Without,
/// exactly `permutations` draws are made.
#[derive(Clone, Debug, PartialEq)]
pub struct Shapley {
    /// Random orders per group (permutation sampling); with a `tolerance`, the first round.
    pub permutations: usize,
    /// Adaptive sampling: the precision asked of every value relative to the spread of the
    /// group's values; `None` for a fixed number of permutations.
    pub tolerance: Option<f64>,
    /// Adaptive sampling: the largest number of draws per group.
    pub max_permutations: usize,
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

/// The first round of draws of the default Shapley criterion.
pub const DEFAULT_PERMUTATIONS: usize = 8;
/// The default precision of adaptive sampling (see [`Shapley::tolerance`]).
pub const DEFAULT_TOLERANCE: f64 = 0.1;
/// The default cap on draws of adaptive sampling.
pub const DEFAULT_MAX_PERMUTATIONS: usize = 128;

impl Default for Shapley {
    fn default() -> Self {
        Self {
            permutations: DEFAULT_PERMUTATIONS,
            tolerance: Some(DEFAULT_TOLERANCE),
            max_permutations: DEFAULT_MAX_PERMUTATIONS,
            antithetic: true,
            truncation: None,
            exact_max_channels: 10,
            aggregate: SampleAggregate::Mean,
            max_batch_rows: 512,
        }
    }
}

impl Shapley {
    /// Permutation sampling with exactly `permutations` orders per group (not adaptive).
    pub fn with_permutations(permutations: usize) -> Self {
        Self {
            permutations,
            tolerance: None,
            ..Self::default()
        }
    }

    fn method_for(&self, channels: usize) -> ShapleyMethod {
        if channels <= self.exact_max_channels {
            ShapleyMethod::Exact
        } else if let Some(tolerance) = self.tolerance {
            ShapleyMethod::Adaptive(Adaptive {
                initial: self.permutations,
                max: self.max_permutations,
                tolerance,
                antithetic: self.antithetic,
                truncation: self.truncation,
            })
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
        names::SHAPLEY.into()
    }

    fn needs(&self) -> Needs {
        Needs::Data
    }

    fn score(&self, ctx: &ScoringContext<'_>) -> Result<Scores> {
        let data = ctx.require_data(names::SHAPLEY)?;
        if self.permutations == 0 {
            return Err(CriterionError::Config {
                criterion: self.name(),
                message: "permutations must be at least 1".into(),
            });
        }
        let chunk = ctx.batch_size.min(data.len()).max(1);
        // One copy of the graph per device; each group's game is set up on every device and
        // the permutation walks (or coalition chunks) are dealt round-robin to them.
        let devices = ctx.devices();
        let graphs: Vec<(Graph, &Device)> = devices.iter().map(|d| (ctx.graph_on(d), d)).collect();
        let mut scores = Scores::new(self.name());
        for (i, group) in ctx.groups.prunable().enumerate() {
            let mut games = graphs
                .iter()
                .map(|(g, d)| GraphGame::new(g, group, data, chunk, d))
                .collect::<Result<Vec<_>>>()?;
            let coalitions_per_pass = (self.max_batch_rows / chunk).max(1);
            let seed = ctx
                .seed
                .wrapping_add(i as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let values = shapley_values_on(
                &mut games,
                &self.method_for(group.channels()),
                self.aggregate,
                coalitions_per_pass,
                seed,
            )
            .map_err(|e| match e {
                ShapleyError::Game(e) => e,
                ShapleyError::Worker { worker, message } => CriterionError::Device {
                    device: format!("{:?}", devices[worker]),
                    message,
                },
                other => CriterionError::Config {
                    criterion: names::SHAPLEY.into(),
                    message: format!("group `{}`: {other}", group.name()),
                },
            })?;
            let uncertainty = Uncertainty {
                std_errors: values.std_errors,
                draws: values.draws,
                evaluations: values.evaluations,
            };
            scores.insert_estimate(ctx.groups, group.id(), values.values, Some(uncertainty))?;
        }
        Ok(scores)
    }
}
