//! Errors of selection and pruning procedures.

use xprune_criteria::CriterionError;
use xprune_graph::GraphError;
use xprune_surgery::SurgeryError;

/// Everything that can go wrong while selecting and removing channels.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// A selection or schedule parameter is out of range.
    #[error("invalid pruning configuration: {0}")]
    Config(String),
    /// The target cannot be reached within the per-group floors.
    #[error("cannot reach the target: {0}")]
    Unreachable(String),
    /// Scoring failed.
    #[error(transparent)]
    Criterion(#[from] CriterionError),
    /// Groups, plans or surgery failed.
    #[error(transparent)]
    Surgery(#[from] SurgeryError),
    /// The latency model failed or does not fit the graph.
    #[error(transparent)]
    Latency(#[from] crate::latency::LatencyError),
    /// Running the graph failed.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// Training during gradual pruning failed.
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    /// The fine-tuning callback or training failed.
    #[error("fine-tuning after step {step}: {message}")]
    FineTune {
        /// The pruning step (1-based).
        step: usize,
        /// What went wrong.
        message: String,
    },
}

/// Result alias of the pruning procedures.
pub type Result<T, E = PruneError> = std::result::Result<T, E>;
