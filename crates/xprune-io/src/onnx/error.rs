//! [`OnnxError`]: everything that can go wrong when importing or exporting an ONNX model.

use std::path::PathBuf;
use xprune_graph::GraphError;

/// An error of ONNX import or export.
///
/// Every variant names what was wrong and where: the file, the ONNX node and its op type, the
/// attribute and its value, and what is supported instead, so that the message alone tells the
/// user what to change in the model or its export.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An error while importing or exporting a given file (wraps the error with the path).
    #[error("{path}: {source}")]
    File {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong in it.
        source: Box<OnnxError>,
    },
    /// The bytes are not an ONNX protobuf message (truncated, corrupt or another format).
    #[error("not a valid ONNX model: {0}")]
    Decode(String),
    /// The model decodes but is malformed or does not describe one feed-forward network
    /// (no graph, several inputs, values used before they are defined, ...).
    #[error("invalid ONNX model: {0}")]
    Invalid(String),
    /// The model's default-domain opset is outside the supported range.
    #[error("ONNX opset {found} is not supported: {supported}")]
    Opset {
        /// The opset version the model imports.
        found: i64,
        /// The supported versions.
        supported: String,
    },
    /// A node uses an operator that xprune cannot represent.
    #[error("node `{node}`: op `{op}` is not supported (supported ops: {supported})")]
    UnsupportedOp {
        /// The ONNX node name.
        node: String,
        /// The op type (with its domain when not the default one).
        op: String,
        /// The supported op types.
        supported: String,
    },
    /// A node has an attribute, or an attribute value, that xprune cannot represent.
    #[error(
        "node `{node}` ({op}): attribute `{attribute}` = {value} is not supported ({supported})"
    )]
    UnsupportedAttribute {
        /// The ONNX node name.
        node: String,
        /// The op type.
        op: String,
        /// The attribute name.
        attribute: String,
        /// The attribute's value as found in the model.
        value: String,
        /// What is supported for this attribute (or the attributes the op supports).
        supported: String,
    },
    /// A node that cannot be converted for another reason (an input that must be a constant,
    /// a tensor of the wrong shape, a reshape that is not a flatten, ...).
    #[error("node `{node}` ({op}): {message}")]
    Node {
        /// The ONNX node name.
        node: String,
        /// The op type.
        op: String,
        /// What was wrong.
        message: String,
    },
    /// A graph that cannot be written as ONNX.
    #[error("cannot export node `{node}` to ONNX: {message}")]
    Export {
        /// The xprune node name.
        node: String,
        /// What was wrong.
        message: String,
    },
    /// Building the xprune graph from the converted nodes failed.
    #[error(transparent)]
    Graph(#[from] GraphError),
}

impl OnnxError {
    /// Wraps the error with the file it concerns (I/O errors already name it).
    pub(crate) fn in_file(self, path: impl Into<PathBuf>) -> Self {
        match self {
            Self::Io { .. } | Self::File { .. } => self,
            other => Self::File {
                path: path.into(),
                source: Box::new(other),
            },
        }
    }

    /// The innermost error (unwrapping [`OnnxError::File`]), handy to match on the kind.
    pub fn root(&self) -> &OnnxError {
        match self {
            Self::File { source, .. } => source.root(),
            other => other,
        }
    }
}

/// Result alias of the ONNX module.
pub type Result<T, E = OnnxError> = std::result::Result<T, E>;
