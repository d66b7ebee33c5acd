//! Errors of relevance propagation, composites, canonization and heatmaps.

use std::path::PathBuf;
use xprune_graph::GraphError;

/// Everything that can go wrong in this crate. Every message names what was wrong and where
/// (layer or node, shapes, values), so it can be acted on without a debugger.
#[derive(Debug, thiserror::Error)]
pub enum LrpError {
    /// A tensor given to a layer does not fit it (input or relevance shape).
    #[error("{layer}: {message}")]
    Shape {
        /// The layer (kind, or graph node name) concerned.
        layer: String,
        /// What was expected and what was found.
        message: String,
    },
    /// Invalid rule parameters (e.g. alpha - beta != 1, negative gamma).
    #[error("invalid rule parameters: {0}")]
    InvalidRule(String),
    /// A rule that cannot be used on a layer (e.g. `pass` on a layer that changes shape).
    #[error("rule `{rule}` cannot be applied to {layer}: {message}")]
    RuleNotApplicable {
        /// The rule's name.
        rule: String,
        /// The layer (kind, or graph node name).
        layer: String,
        /// Why not.
        message: String,
    },
    /// A composite name that is not known.
    #[error("unknown composite `{name}` (known composites: {known})")]
    UnknownComposite {
        /// The requested name.
        name: String,
        /// The known names, comma separated.
        known: String,
    },
    /// A composite that refers to something the graph does not have, or is inconsistent.
    #[error("composite: {0}")]
    Composite(String),
    /// A target (class labels, custom initial relevance) that does not fit the model output.
    #[error("target: {0}")]
    Target(String),
    /// An error of the underlying graph (forward pass, rebuilding a canonized graph).
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A heatmap that cannot be rendered or written.
    #[error("heatmap {path}: {message}")]
    Heatmap {
        /// The output file (empty when rendering in memory).
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = LrpError> = std::result::Result<T, E>;

pub(crate) fn shape_err(layer: impl Into<String>, message: impl Into<String>) -> LrpError {
    LrpError::Shape {
        layer: layer.into(),
        message: message.into(),
    }
}
