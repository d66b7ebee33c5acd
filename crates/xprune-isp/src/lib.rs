//! Interpretations-steered pruning (Ganjdanesh, Gao and Huang, ECCV 2022): the building
//! blocks.
//!
//! - [`rbf`]: Gaussian-bump saliency masks (the shape the selector predicts and the predictor
//!   is trained on), random ones for the predictor's training, differentiable in their
//!   parameters;
//! - [`gates`]: Gumbel-sigmoid channel gates, hard at 0.5 with a straight-through estimator;
//! - [`budget`]: the MAC budget loss `w * ln(max(r, p) / p)`.
//!
//! The predictor, selector and gate training that use them are not built yet (see
//! `docs/isp.md`).
#![warn(missing_docs)]

pub mod budget;
pub mod gates;
pub mod rbf;

/// An invalid parameter of an ISP building block.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct IspError(pub String);

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, IspError>;
