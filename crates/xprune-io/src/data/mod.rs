//! Data sets: synthetic generators and file loaders, all producing an
//! [`xprune_graph::Dataset`].
//!
//! - [`synthetic`]: two moons, circles, a multi-arm spiral ([`synthetic::mult`]) and
//!   [`synthetic::shapes10`], a procedural 10-class 3x32x32 image set (the demo's default).
//! - [`npy`] and [`npz`]: NumPy arrays; an `.npz` data set holds features `x` and labels `y`.
//! - [`mnist`]: MNIST IDX files (optionally gzipped); [`cifar`]: CIFAR-10 binary batches.
//! - [`load_dataset`] picks the loader from the file name.
//! - [`transform`]: per-channel normalisation.
//!
//! Every loader error is a [`DataError`] naming the file and what was wrong (bad magic,
//! truncated data, wrong dtype, shape or label mismatch). The formats are described in
//! `docs/data.md`.

mod array;
pub mod cifar;
mod error;
pub mod mnist;
pub mod npy;
pub mod npz;
pub mod synthetic;
pub mod transform;

pub use array::{Array, ArrayData, Dtype};
pub use error::{DataError, Result};

use std::path::Path;
use xprune_graph::{Dataset, FeatureShape};

/// Which part of a data set with a fixed train/test split to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training samples.
    Train,
    /// The test samples.
    Test,
}

/// Builds a [`Dataset`] from a feature array and a label array.
///
/// `x` is `[n, features]` (flat samples), `[n, height, width]` (one-channel images) or
/// `[n, channels, height, width]`, of any numeric type (converted to `f32`); `y` is `[n]` or
/// `[n, 1]` of an integer type, with labels in `0..num_classes`. Without `num_classes` the
/// class count is the largest label plus one. The paths only name the arrays in errors.
pub fn dataset_from_arrays(
    x: &Array,
    x_path: &Path,
    y: &Array,
    y_path: &Path,
    num_classes: Option<usize>,
) -> Result<Dataset> {
    let sample_shape = match x.shape() {
        [_, f] => FeatureShape::flat(*f),
        [_, h, w] => FeatureShape::spatial(1, *h, *w),
        [_, c, h, w] => FeatureShape::spatial(*c, *h, *w),
        other => {
            return Err(DataError::Shape {
                path: x_path.to_path_buf(),
                message: format!(
                    "features have shape {other:?}; expected [n, features], [n, height, width] \
                     or [n, channels, height, width]"
                ),
            });
        }
    };
    let n = x.shape()[0];
    let labels_n = match y.shape() {
        [m] | [m, 1] => *m,
        other => {
            return Err(DataError::Shape {
                path: y_path.to_path_buf(),
                message: format!("labels have shape {other:?}; expected [n] or [n, 1]"),
            });
        }
    };
    if labels_n != n {
        return Err(DataError::Shape {
            path: y_path.to_path_buf(),
            message: format!(
                "{labels_n} labels for {n} samples (features {:?} in {})",
                x.shape(),
                x_path.display()
            ),
        });
    }
    let labels = npy::integers(y, y_path, "labels")?;
    if let Some((i, l)) = labels.iter().enumerate().find(|(_, l)| **l < 0) {
        return Err(DataError::Label {
            path: y_path.to_path_buf(),
            message: format!("label {l} of sample {i} is negative"),
        });
    }
    let max = labels
        .iter()
        .copied()
        .max()
        .map(|m| m as usize + 1)
        .unwrap_or(0);
    let classes = match num_classes {
        Some(c) if max > c => {
            let (i, l) = labels
                .iter()
                .enumerate()
                .find(|(_, l)| **l as usize >= c)
                .expect("a label is too large");
            return Err(DataError::Label {
                path: y_path.to_path_buf(),
                message: format!("label {l} of sample {i} is outside 0..{c}"),
            });
        }
        Some(c) => c,
        None => max,
    };
    Dataset::new(x.to_f32(), labels, sample_shape, classes).map_err(|source| DataError::Dataset {
        path: x_path.to_path_buf(),
        source,
    })
}

/// Loads a data set, choosing the loader from the file name:
///
/// - `*.npz`: an archive with features `x` and labels `y` ([`npz::load_dataset`]);
/// - `*.bin`: a CIFAR-10 binary batch ([`cifar::load_batch`]);
/// - a name containing `images-idx3-ubyte` or `images.idx3-ubyte` (optionally `.gz`): MNIST
///   images, with the labels file of the same name with `labels-idx1` / `labels.idx1`
///   ([`mnist::load`]).
///
/// Anything else (including a single `.npy`, which holds one array: use
/// [`npy::load_dataset`] with the feature and label files) is [`DataError::Unsupported`].
pub fn load_dataset(path: impl AsRef<Path>) -> Result<Dataset> {
    let path = path.as_ref();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".npz") {
        return npz::load_dataset(path);
    }
    if lower.ends_with(".bin") {
        return cifar::load_batch(path);
    }
    if let Some(labels) = mnist::labels_file_for(path) {
        return mnist::load(path, labels);
    }
    let message = if lower.ends_with(".npy") {
        "a .npy file holds one array; load features and labels with npy::load_dataset(x, y) \
         or save both in an .npz"
            .to_string()
    } else if path.is_dir() {
        "a directory: use cifar::load_dir or mnist::load_dir".to_string()
    } else {
        "cannot tell the format from the name (supported: *.npz, CIFAR-10 *.bin batches, \
         MNIST *-images-idx3-ubyte[.gz])"
            .to_string()
    };
    Err(DataError::Unsupported {
        path: path.to_path_buf(),
        message,
    })
}

/// A [`DataError::Dtype`] for `path`.
pub(crate) fn dtype_err(path: &Path, message: impl Into<String>) -> DataError {
    DataError::Dtype {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Wraps a dataset construction error with the file it came from.
pub(crate) fn dataset_err(path: &Path) -> impl FnOnce(xprune_graph::GraphError) -> DataError + '_ {
    move |source| DataError::Dataset {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests;
