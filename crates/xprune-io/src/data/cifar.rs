//! CIFAR-10 binary batches (`data_batch_1.bin` ... `data_batch_5.bin`, `test_batch.bin`):
//! records of 3073 bytes, one label byte (`0..10`) followed by 3072 pixel bytes (the 32x32
//! red plane, then green, then blue, each row-major).

use super::error::{DataError, Result, format_err, read_file, truncated};
use super::{Split, dataset_err};
use std::path::{Path, PathBuf};
use xprune_graph::{Dataset, FeatureShape};

/// Bytes per record: a label and 3x32x32 pixels.
pub const RECORD_BYTES: usize = 1 + 3 * 32 * 32;
/// Number of CIFAR-10 classes.
pub const CLASSES: usize = 10;
/// The CIFAR-10 class names, by label.
pub const CLASS_NAMES: [&str; CLASSES] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];
/// Per-channel mean of the CIFAR-10 training pixels after scaling to `[0, 1]` (for
/// [`normalize_channels`](super::transform::normalize_channels)).
pub const MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// Per-channel standard deviation of the CIFAR-10 training pixels after scaling to `[0, 1]`.
pub const STD: [f32; 3] = [0.2470, 0.2435, 0.2616];

/// Loads one binary batch as a [`Dataset`] of `[3, 32, 32]` samples with pixel values scaled
/// to `[0, 1]` and 10 classes.
pub fn load_batch(path: impl AsRef<Path>) -> Result<Dataset> {
    let path = path.as_ref();
    parse_batch(&read_file(path)?, path)
}

/// Decodes the bytes of a binary batch; `path` names the file in errors.
pub fn parse_batch(bytes: &[u8], path: &Path) -> Result<Dataset> {
    if bytes.is_empty() {
        return Err(truncated(
            path,
            "the file is empty (a batch holds 3073-byte records)",
        ));
    }
    if !bytes.len().is_multiple_of(RECORD_BYTES) {
        let whole = bytes.len() / RECORD_BYTES;
        return Err(truncated(
            path,
            format!(
                "{} bytes are not a whole number of {RECORD_BYTES}-byte records: record {whole} \
                 has only {} bytes",
                bytes.len(),
                bytes.len() % RECORD_BYTES
            ),
        ));
    }
    let n = bytes.len() / RECORD_BYTES;
    let mut features = Vec::with_capacity(n * (RECORD_BYTES - 1));
    let mut labels = Vec::with_capacity(n);
    for (i, record) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        let label = record[0] as usize;
        if label >= CLASSES {
            return Err(DataError::Label {
                path: path.to_path_buf(),
                message: format!(
                    "record {i} (byte offset {}) has label {label}, outside 0..{CLASSES}; is \
                     this a CIFAR-10 batch (CIFAR-100 records have 3074 bytes)?",
                    i * RECORD_BYTES
                ),
            });
        }
        labels.push(label as i64);
        features.extend(record[1..].iter().map(|p| *p as f32 / 255.0));
    }
    Dataset::new(features, labels, FeatureShape::spatial(3, 32, 32), CLASSES)
        .map_err(dataset_err(path))
}

/// Loads several batches into one [`Dataset`], in order.
pub fn load_batches<P: AsRef<Path>>(paths: &[P]) -> Result<Dataset> {
    let mut iter = paths.iter();
    let first = iter
        .next()
        .ok_or_else(|| DataError::InvalidArgument("no CIFAR-10 batch files given".into()))?;
    let mut all = load_batch(first)?;
    for p in iter {
        let next = load_batch(p)?;
        all = all.concat(&next).map_err(dataset_err(p.as_ref()))?;
    }
    Ok(all)
}

/// Loads the training split (`data_batch_1.bin` ... `data_batch_5.bin`) or the test split
/// (`test_batch.bin`) from the directory of the binary distribution (`cifar-10-batches-bin`).
///
/// For the training split every `data_batch_<k>.bin` present for `k = 1, 2, ...` is loaded;
/// at least `data_batch_1.bin` must exist.
pub fn load_dir(dir: impl AsRef<Path>, split: Split) -> Result<Dataset> {
    let dir = dir.as_ref();
    let files: Vec<PathBuf> = match split {
        Split::Train => (1..)
            .map(|k| dir.join(format!("data_batch_{k}.bin")))
            .take_while(|p| p.is_file())
            .collect(),
        Split::Test => {
            let p = dir.join("test_batch.bin");
            if p.is_file() { vec![p] } else { vec![] }
        }
    };
    if files.is_empty() {
        let wanted = match split {
            Split::Train => "data_batch_1.bin",
            Split::Test => "test_batch.bin",
        };
        return Err(format_err(
            dir,
            format!("no CIFAR-10 batch `{wanted}` in this directory"),
        ));
    }
    load_batches(&files)
}
