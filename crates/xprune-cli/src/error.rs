//! The command-line tool's error: one readable line per failure.

use std::path::PathBuf;

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A bad argument value.
    #[error("{0}")]
    Usage(String),
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Backend selection.
    #[error(transparent)]
    Backend(#[from] xprune::BackendError),
    /// Graph construction or execution.
    #[error(transparent)]
    Graph(#[from] xprune::GraphError),
    /// Dataset files.
    #[error(transparent)]
    Data(#[from] xprune::io::data::DataError),
    /// ONNX files.
    #[error(transparent)]
    Onnx(#[from] xprune::io::onnx::OnnxError),
    /// Relevance propagation.
    #[error(transparent)]
    Lrp(#[from] xprune::lrp::LrpError),
    /// Scoring.
    #[error(transparent)]
    Criterion(#[from] xprune::criteria::CriterionError),
    /// Groups, plans, surgery.
    #[error(transparent)]
    Surgery(#[from] xprune::surgery::SurgeryError),
    /// Selection and pruning procedures.
    #[error(transparent)]
    Prune(#[from] xprune::PruneError),
    /// A latency model failed.
    #[error(transparent)]
    Latency(#[from] xprune::LatencyError),
    /// Training.
    #[error(transparent)]
    Train(#[from] xprune::train::TrainError),
    /// The inference form could not be built.
    #[error("{0}")]
    Inference(#[from] xprune::InferenceError),
}

/// Result alias of the tool.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// Wraps an I/O error with its path.
pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CliError {
    let path = path.into();
    move |source| CliError::Io { path, source }
}
