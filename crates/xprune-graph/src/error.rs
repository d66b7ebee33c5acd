//! Errors of graph construction, execution and storage.

use std::path::PathBuf;

/// Everything that can go wrong when building, running, saving or loading a [`Graph`](crate::Graph).
///
/// Every variant names the node, file or tensor concerned and the values that did not fit, so
/// that the message alone tells the user what to fix.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// A layer's input shapes do not fit the layer.
    #[error("node `{node}`: {message}")]
    Shape {
        /// The node whose inputs do not fit.
        node: String,
        /// What was expected and what was found.
        message: String,
    },
    /// Two nodes share a name.
    #[error("duplicate node name `{0}`: node names must be unique")]
    DuplicateName(String),
    /// A node name that the graph does not contain.
    #[error("unknown node `{name}`{hint}")]
    UnknownNode {
        /// The requested name.
        name: String,
        /// A hint listing similar or available names.
        hint: String,
    },
    /// A node id outside the graph.
    #[error("node id {id} is out of range: the graph has {len} nodes")]
    InvalidNodeId {
        /// The requested id.
        id: usize,
        /// Number of nodes in the graph.
        len: usize,
    },
    /// A node refers to an input that is not defined before it.
    #[error(
        "node `{node}`: input {input} is not an earlier node (nodes must be in topological order)"
    )]
    NotTopological {
        /// The node with the bad reference.
        node: String,
        /// The referenced node id.
        input: usize,
    },
    /// The tensor given to `forward` does not have the graph's input shape.
    #[error("input tensor has shape {found:?}, but the graph expects [batch, {expected}]")]
    InputShape {
        /// The per-sample input shape of the graph.
        expected: String,
        /// The shape that was passed, batch dimension first.
        found: Vec<usize>,
    },
    /// A channel mask does not fit its node.
    #[error("channel mask for node `{node}`: {message}")]
    Mask {
        /// The node the mask was given for.
        node: String,
        /// What was wrong.
        message: String,
    },
    /// A layer's hyper-parameters are invalid (zero channels, zero kernel, bad groups, ...).
    #[error("node `{node}`: invalid layer: {message}")]
    InvalidLayer {
        /// The node holding the layer.
        node: String,
        /// What was wrong.
        message: String,
    },
    /// An execution request that cannot be served (missing cached value, wrong start node).
    #[error("execution: {0}")]
    Execution(String),
    /// A structure description that cannot be turned into a graph.
    #[error("graph structure description: {0}")]
    Spec(String),
    /// A weights file whose content does not fit the graph.
    #[error("weights file {path}: {message}")]
    Weights {
        /// The file concerned.
        path: PathBuf,
        /// What was wrong (tensor name, expected and found shapes).
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A dataset that is inconsistent (sizes, labels out of range, ...).
    #[error("dataset: {0}")]
    Data(String),
}

/// Result alias of this crate.
pub type Result<T, E = GraphError> = std::result::Result<T, E>;
