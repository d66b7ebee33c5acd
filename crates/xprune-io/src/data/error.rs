//! [`DataError`]: everything that can go wrong when reading, writing or generating data.

use std::path::PathBuf;
use xprune_graph::GraphError;

/// An error of a data loader, writer or generator.
///
/// Every file error names the file (for an array inside an `.npz` archive: the archive and the
/// entry, as `data.npz:x.npy`) and says what was wrong, so that the message alone tells the
/// user what to fix.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file does not start with the magic bytes of its format.
    #[error("{path}: bad magic: expected {expected}, found {found}")]
    BadMagic {
        /// The file concerned.
        path: PathBuf,
        /// What the format requires.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// The file ends before the data its header announces.
    #[error("{path}: truncated: {message}")]
    Truncated {
        /// The file concerned.
        path: PathBuf,
        /// What was expected and how much was found.
        message: String,
    },
    /// An array has an element type this function cannot use.
    #[error("{path}: wrong dtype: {message}")]
    Dtype {
        /// The file concerned.
        path: PathBuf,
        /// The type found and the types accepted.
        message: String,
    },
    /// Array shapes that do not fit (rank, sample counts of features and labels).
    #[error("{path}: shape mismatch: {message}")]
    Shape {
        /// The file concerned.
        path: PathBuf,
        /// The shapes found and what was expected.
        message: String,
    },
    /// A class label outside the range of the format or data set.
    #[error("{path}: bad label: {message}")]
    Label {
        /// The file concerned.
        path: PathBuf,
        /// The label, its position and the allowed range.
        message: String,
    },
    /// Any other malformed content (a header that does not parse, a missing archive entry,
    /// a corrupt archive, ...).
    #[error("{path}: {message}")]
    Format {
        /// The file concerned.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// A path whose format cannot be told from its name.
    #[error("{path}: unsupported data file: {message}")]
    Unsupported {
        /// The file concerned.
        path: PathBuf,
        /// Why, and which names are supported.
        message: String,
    },
    /// Invalid arguments to a generator or a transform (zero samples, negative noise, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The loaded arrays do not make a valid [`Dataset`](xprune_graph::Dataset).
    #[error("{path}: {source}")]
    Dataset {
        /// The file concerned (empty for generated data).
        path: PathBuf,
        /// The dataset's complaint.
        source: GraphError,
    },
}

/// Result alias of the data module.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

impl DataError {
    /// The file an error is about, if any.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Self::Io { path, .. }
            | Self::BadMagic { path, .. }
            | Self::Truncated { path, .. }
            | Self::Dtype { path, .. }
            | Self::Shape { path, .. }
            | Self::Label { path, .. }
            | Self::Format { path, .. }
            | Self::Unsupported { path, .. }
            | Self::Dataset { path, .. } => Some(path),
            Self::InvalidArgument(_) => None,
        }
    }
}

/// Shorthand constructors used by the loaders.
pub(crate) fn format_err(path: &std::path::Path, message: impl Into<String>) -> DataError {
    DataError::Format {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

pub(crate) fn truncated(path: &std::path::Path, message: impl Into<String>) -> DataError {
    DataError::Truncated {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

pub(crate) fn io_err(path: &std::path::Path, source: std::io::Error) -> DataError {
    DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a whole file, naming it in the error.
pub(crate) fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| io_err(path, e))
}

/// Writes a whole file, naming it in the error.
pub(crate) fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| io_err(path, e))
}
