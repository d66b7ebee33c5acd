//! Errors of scoring.

use xprune_graph::GraphError;
use xprune_surgery::SurgeryError;

/// Everything that can go wrong while scoring channels.
#[derive(Debug, thiserror::Error)]
pub enum CriterionError {
    /// The criterion needs reference data and none (or an empty set) was given.
    #[error("criterion `{0}` needs reference data (inputs and labels), none was given")]
    NeedsData(String),
    /// The reference data does not fit the graph.
    #[error("reference data has samples of shape [{data}] but the graph expects [{graph}]")]
    DataShape {
        /// Sample shape of the data.
        data: String,
        /// Input shape of the graph.
        graph: String,
    },
    /// A label is not a class of the graph's output.
    #[error("reference data has {data} classes but the graph outputs {graph} values")]
    Classes {
        /// Classes of the data.
        data: usize,
        /// Outputs of the graph.
        graph: usize,
    },
    /// A criterion parameter is invalid.
    #[error("criterion `{criterion}`: {message}")]
    Config {
        /// The criterion.
        criterion: String,
        /// What was wrong.
        message: String,
    },
    /// A score came out NaN or infinite.
    #[error(
        "criterion `{criterion}` produced a non-finite score ({value}) for channel {channel} of group `{group}`"
    )]
    NonFinite {
        /// The criterion.
        criterion: String,
        /// The group.
        group: String,
        /// The channel.
        channel: usize,
        /// The value.
        value: f64,
    },
    /// Scores that do not match the groups they are used with.
    #[error("scores: {0}")]
    Scores(String),
    /// Work on one of several devices failed unexpectedly (a worker thread panicked).
    #[error("scoring on device {device} failed: {message}")]
    Device {
        /// The device.
        device: String,
        /// What went wrong.
        message: String,
    },
    /// The graph failed to run.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The groups do not fit the graph.
    #[error(transparent)]
    Surgery(#[from] SurgeryError),
    /// Relevance propagation failed.
    #[error(transparent)]
    Lrp(#[from] xprune_lrp::LrpError),
}

/// Result alias of this crate.
pub type Result<T, E = CriterionError> = std::result::Result<T, E>;
