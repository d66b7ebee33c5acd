//! Shapley-value criterion (Ancona et al. 2020): a channel's average marginal effect on the
//! loss over coalitions of its group's channels.

mod criterion;
pub mod game;
mod graph_game;
mod sampling;

pub use criterion::{DEFAULT_MAX_PERMUTATIONS, DEFAULT_PERMUTATIONS, DEFAULT_TOLERANCE, Shapley};
pub use game::{
    CoalitionGame, MAX_EXACT_PLAYERS, SampleAggregate, ShapleyError, ShapleyMethod, ShapleyValues,
    shapley_values, shapley_values_on,
};
pub use graph_game::{GraphGame, NaiveGraphGame, NodeSlots, mask_slots, read_slots};
pub use sampling::Adaptive;
