//! MNIST (and Fashion-MNIST) in the IDX format of LeCun et al.: an images file
//! (`*-images-idx3-ubyte`, `[n, 28, 28]` `uint8`) and a labels file (`*-labels-idx1-ubyte`,
//! `[n]` `uint8`), each optionally gzipped (`.gz`; detected from the content).
//!
//! An IDX file starts with two zero bytes, a type code (`0x08` `uint8`, `0x09` `int8`, `0x0B`
//! `int16`, `0x0C` `int32`, `0x0D` `float32`, `0x0E` `float64`) and the number of dimensions,
//! then each dimension as a big-endian `u32`, then the big-endian elements.

use super::array::{Array, ArrayData, Dtype};
use super::error::{DataError, Result, format_err, read_file, truncated};
use super::npy::show_bytes;
use super::{Split, dataset_err, dtype_err};
use std::io::Read;
use std::path::{Path, PathBuf};
use xprune_graph::{Dataset, FeatureShape};

/// Number of MNIST classes (digits 0-9).
pub const CLASSES: usize = 10;
/// Mean of the MNIST training pixels after scaling to `[0, 1]` (for
/// [`normalize_channels`](super::transform::normalize_channels)).
pub const MEAN: [f32; 1] = [0.1307];
/// Standard deviation of the MNIST training pixels after scaling to `[0, 1]`.
pub const STD: [f32; 1] = [0.3081];

/// Reads an IDX file (gzipped or not) as an [`Array`].
pub fn read_idx(path: impl AsRef<Path>) -> Result<Array> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    let bytes = gunzip_if_needed(bytes, path)?;
    parse_idx(&bytes, path)
}

/// Decodes the bytes of an (uncompressed) IDX file; `path` names the file in errors.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<Array> {
    if bytes.len() < 4 {
        return Err(truncated(
            path,
            format!("{} bytes end inside the 4-byte IDX magic", bytes.len()),
        ));
    }
    let dtype = match bytes[2] {
        0x08 => Some(Dtype::U8),
        0x09 => Some(Dtype::I8),
        0x0B => Some(Dtype::I16),
        0x0C => Some(Dtype::I32),
        0x0D => Some(Dtype::F32),
        0x0E => Some(Dtype::F64),
        _ => None,
    };
    let (Some(dtype), [0, 0]) = (dtype, [bytes[0], bytes[1]]) else {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            expected: "00 00 <type 08/09/0b/0c/0d/0e> <ndim> (an IDX file)".into(),
            found: show_bytes(&bytes[..4]),
        });
    };
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(truncated(
            path,
            format!(
                "{} bytes end inside the header of {ndim} dimensions ({header} bytes)",
                bytes.len()
            ),
        ));
    }
    let shape: Vec<usize> = (0..ndim)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let nbytes = shape
        .iter()
        .try_fold(dtype.size(), |acc, d| acc.checked_mul(*d))
        .ok_or_else(|| format_err(path, format!("shape {shape:?} is too large")))?;
    let body = &bytes[header..];
    if body.len() < nbytes {
        return Err(truncated(
            path,
            format!(
                "shape {shape:?} of {dtype} needs {nbytes} data bytes, the file has {}",
                body.len()
            ),
        ));
    }
    if body.len() > nbytes {
        return Err(format_err(
            path,
            format!(
                "{} unexpected bytes after the data of shape {shape:?} of {dtype}",
                body.len() - nbytes
            ),
        ));
    }
    let data = ArrayData::from_bytes(dtype, body, true);
    Ok(Array::new(shape, data).expect("sizes checked"))
}

/// Loads MNIST images and labels as a [`Dataset`] of `[1, height, width]` samples with pixel
/// values scaled to `[0, 1]` and 10 classes.
///
/// The images must be `uint8` `[n, height, width]`, the labels `uint8` `[n]` in `0..10`.
pub fn load(images: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Dataset> {
    let (images, labels) = (images.as_ref(), labels.as_ref());
    let x = read_idx(images)?;
    let y = read_idx(labels)?;
    let ArrayData::U8(pixels) = x.data() else {
        return Err(dtype_err(
            images,
            format!("MNIST images must be uint8, found {}", x.dtype()),
        ));
    };
    let &[n, h, w] = x.shape() else {
        return Err(DataError::Shape {
            path: images.to_path_buf(),
            message: format!(
                "MNIST images must be [n, height, width], found {:?}",
                x.shape()
            ),
        });
    };
    let ArrayData::U8(label_bytes) = y.data() else {
        return Err(dtype_err(
            labels,
            format!("MNIST labels must be uint8, found {}", y.dtype()),
        ));
    };
    if y.shape().len() != 1 {
        return Err(DataError::Shape {
            path: labels.to_path_buf(),
            message: format!("MNIST labels must be [n], found {:?}", y.shape()),
        });
    }
    if label_bytes.len() != n {
        return Err(DataError::Shape {
            path: labels.to_path_buf(),
            message: format!(
                "{} labels for {n} images in {}",
                label_bytes.len(),
                images.display()
            ),
        });
    }
    if let Some((i, l)) = label_bytes
        .iter()
        .enumerate()
        .find(|(_, l)| **l as usize >= CLASSES)
    {
        return Err(DataError::Label {
            path: labels.to_path_buf(),
            message: format!("label {l} of sample {i} is outside 0..{CLASSES}"),
        });
    }
    let features = pixels.iter().map(|p| *p as f32 / 255.0).collect();
    let labels_i64 = label_bytes.iter().map(|l| *l as i64).collect();
    Dataset::new(
        features,
        labels_i64,
        FeatureShape::spatial(1, h, w),
        CLASSES,
    )
    .map_err(dataset_err(images))
}

/// Loads the training or test split from a directory holding the standard MNIST file names
/// (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-...`; also with `.` instead
/// of the last `-`, and optionally gzipped).
pub fn load_dir(dir: impl AsRef<Path>, split: Split) -> Result<Dataset> {
    let dir = dir.as_ref();
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let candidates: Vec<PathBuf> = ["-images-idx3-ubyte", "-images.idx3-ubyte"]
        .iter()
        .flat_map(|s| ["", ".gz"].map(|gz| dir.join(format!("{prefix}{s}{gz}"))))
        .collect();
    let images = candidates.iter().find(|p| p.is_file()).ok_or_else(|| {
        let names: Vec<String> = candidates
            .iter()
            .map(|p| {
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        format_err(
            dir,
            format!(
                "no MNIST {prefix} images found (looked for {})",
                names.join(", ")
            ),
        )
    })?;
    let labels = labels_file_for(images).expect("candidate names are image files");
    load(images, labels)
}

/// The labels file that belongs to an MNIST images file (`...images-idx3-ubyte` ->
/// `...labels-idx1-ubyte`, keeping a `.gz` suffix, or switching it when only the other
/// exists), or `None` when the name is not that of an images file.
pub fn labels_file_for(images: &Path) -> Option<PathBuf> {
    let name = images.file_name()?.to_str()?;
    let labels = if name.contains("images-idx3-ubyte") {
        name.replace("images-idx3-ubyte", "labels-idx1-ubyte")
    } else if name.contains("images.idx3-ubyte") {
        name.replace("images.idx3-ubyte", "labels.idx1-ubyte")
    } else {
        return None;
    };
    let same = images.with_file_name(&labels);
    if !same.exists() {
        let other = match labels.strip_suffix(".gz") {
            Some(plain) => images.with_file_name(plain),
            None => images.with_file_name(format!("{labels}.gz")),
        };
        if other.exists() {
            return Some(other);
        }
    }
    Some(same)
}

/// Decompresses gzip data (recognised by its magic `1f 8b`); other data is returned as is.
pub(crate) fn gunzip_if_needed(bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
    if bytes.len() < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes.as_slice())
        .read_to_end(&mut out)
        .map_err(|e| format_err(path, format!("corrupt or truncated gzip data: {e}")))?;
    Ok(out)
}
