//! # xprune-criteria
//!
//! Pruning criteria: each scores every channel of every prunable channel group of a
//! [`Graph`](xprune_graph::Graph) (higher = more important). Built in: weight norm
//! ([`WeightNorm`], Li et al.), [`Gradient`] and [`Taylor`] (Molchanov et al.), LRP
//! ([`LrpCriterion`], Yeom et al.), [`Shapley`] values (Ancona et al.), feature relevance
//! scores ([`FeatureRelevance`], Aketi et al.) and [`RandomCriterion`]. Implement
//! [`Criterion`] for your own.
#![warn(missing_docs)]

mod criterion;
pub mod devices;
mod error;
mod frs;
mod gradient;
pub mod loss;
mod lrp;
pub mod names;
mod random;
mod scores;
pub mod shapley;
pub mod sites;
mod weight_norm;

pub use criterion::{Criterion, Needs, ScoringContext};
pub use error::{CriterionError, Result};
pub use frs::{FeatureRelevance, class_weight};
pub use gradient::{Gradient, SampleAbs, Taylor};
pub use lrp::{Aggregation, LrpCriterion, LrpTarget, yeom_composite};
pub use random::RandomCriterion;
pub use scores::{GroupScores, Scores, Uncertainty};
pub use shapley::Shapley;
pub use sites::SitePolicy;
pub use weight_norm::{Norm, WeightNorm};

#[cfg(test)]
mod tests;
