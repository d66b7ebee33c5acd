//! Interpretations-steered pruning (Ganjdanesh, Gao and Huang, ECCV 2022): the building
//! blocks.
//!
//! - [`rbf`]: Gaussian-bump saliency masks (the shape the selector predicts and the predictor
//!   is trained on), random ones for the predictor's training, differentiable in their
//!   parameters;
//! - [`gates`]: Gumbel-sigmoid channel gates, hard at 0.5 with a straight-through estimator;
//! - [`budget`]: the MAC budget loss `w * ln(max(r, p) / p)`;
//! - [`macs`]: the kept-MAC fraction, differentiable in the gates, from the same per-kind
//!   counting function as every other count;
//! - [`layout`]: one gate per channel of every prunable group, gates as channel masks, closed
//!   gates as a `PrunePlan`;
//! - [`selector`]: the amortised explainer's decoder (class-conditioned features to an RBF
//!   mask's centre and width);
//! - [`loss`]: the KL, area and smoothness terms;
//! - [`Isp`]: the three phases (predictor, selector, gates) and their plan; also a
//!   `Criterion` (name `isp`) whose scores are the learned gate logits.
//!
//! See `docs/isp.md` and `docs/criteria.md`.
#![warn(missing_docs)]

pub mod budget;
pub mod gates;
mod isp;
pub mod layout;
pub mod loss;
pub mod macs;
mod phases;
pub mod rbf;
pub mod selector;

pub use isp::{
    Isp, IspConfig, IspOutcome, IspProgress, Phase, PhaseConfig, PhaseSummary, feature_node,
};
pub use layout::{GateLayout, GatedGroup};
pub use macs::SoftMacs;

/// An invalid parameter of an ISP building block.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct IspError(pub String);

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, IspError>;

#[cfg(test)]
mod tests;
