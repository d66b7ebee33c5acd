//! NumPy `.npz` archives: a zip file of `.npy` arrays (stored or deflated), as written by
//! `numpy.savez` and `numpy.savez_compressed`.
//!
//! A data set archive holds features under the key `x` (`float32`, `[n, ...]`) and labels
//! under `y` (`int64`, `[n]`); [`write_dataset`] also stores the class count as the 0-d
//! `int64` array `num_classes`, which [`load_dataset`] uses when present.

use super::array::Array;
use super::dataset_from_arrays;
use super::error::{DataError, Result, format_err, io_err, read_file, write_file};
use super::npy;
use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use xprune_graph::Dataset;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

/// How [`write()`] stores the arrays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// Uncompressed (`numpy.savez`).
    Stored,
    /// Deflate (`numpy.savez_compressed`).
    #[default]
    Deflated,
}

/// Reads every array of an `.npz` archive, by key (the entry name without `.npy`).
pub fn read(path: impl AsRef<Path>) -> Result<BTreeMap<String, Array>> {
    let path = path.as_ref();
    parse(&read_file(path)?, path)
}

/// Decodes the bytes of an `.npz` archive; `path` names the file in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<BTreeMap<String, Array>> {
    if bytes.len() >= 4 && &bytes[..2] != b"PK" {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            expected: "PK (a zip archive)".into(),
            found: npy::show_bytes(&bytes[..4]),
        });
    }
    let mut archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| format_err(path, format!("not a valid zip archive: {e}")))?;
    let mut out = BTreeMap::new();
    for i in 0..archive.len() {
        let mut file = archive
            .by_index(i)
            .map_err(|e| format_err(path, format!("entry {i}: {e}")))?;
        let name = file
            .name()
            .map_err(|e| format_err(path, format!("entry {i}: {e}")))?
            .into_owned();
        let Some(key) = name.strip_suffix(".npy") else {
            continue;
        };
        let entry_path = entry_path(path, &name);
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(|e| {
            format_err(
                &entry_path,
                format!("corrupt or truncated archive entry: {e}"),
            )
        })?;
        out.insert(key.to_string(), npy::parse(&data, &entry_path)?);
    }
    Ok(out)
}

/// Writes arrays to an `.npz` archive under the given keys (each stored as `<key>.npy`).
pub fn write(
    path: impl AsRef<Path>,
    arrays: &[(&str, &Array)],
    compression: Compression,
) -> Result<()> {
    let path = path.as_ref();
    write_file(path, &encode(arrays, compression, path)?)
}

/// Encodes arrays as the bytes of an `.npz` archive; `path` names the file in errors.
pub fn encode(arrays: &[(&str, &Array)], compression: Compression, path: &Path) -> Result<Vec<u8>> {
    let method = match compression {
        Compression::Stored => CompressionMethod::Stored,
        Compression::Deflated => CompressionMethod::Deflated,
    };
    let options = SimpleFileOptions::default()
        .compression_method(method)
        .large_file(true);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let zerr = |e: zip::result::ZipError| format_err(path, format!("writing the archive: {e}"));
    for (key, array) in arrays {
        if key.is_empty() || key.contains('/') {
            return Err(DataError::InvalidArgument(format!(
                "npz key `{key}` must be a non-empty name without '/'"
            )));
        }
        zip.start_file(format!("{key}.npy"), options)
            .map_err(zerr)?;
        zip.write_all(&npy::encode(array))
            .map_err(|e| io_err(path, e))?;
    }
    Ok(zip.finish().map_err(zerr)?.into_inner())
}

/// Loads a [`Dataset`] from an `.npz` archive with features `x` and labels `y` (see
/// [`dataset_from_arrays`] for the accepted shapes and types) and an optional class count
/// `num_classes` (a single integer; without it the count is the largest label plus one).
pub fn load_dataset(path: impl AsRef<Path>) -> Result<Dataset> {
    let path = path.as_ref();
    let arrays = read(path)?;
    let get = |key: &str| {
        arrays.get(key).ok_or_else(|| {
            let keys: Vec<&str> = arrays.keys().map(|k| k.as_str()).collect();
            format_err(
                path,
                format!(
                    "no array `{key}` in the archive (it holds: {})",
                    keys.join(", ")
                ),
            )
        })
    };
    let (x, y) = (get("x")?, get("y")?);
    let classes = match arrays.get("num_classes") {
        None => None,
        Some(c) => {
            let cpath = entry_path(path, "num_classes.npy");
            let values = npy::integers(c, &cpath, "the class count")?;
            match values.as_slice() {
                [n] if *n > 0 => Some(*n as usize),
                _ => {
                    return Err(format_err(
                        &cpath,
                        format!("the class count must be one positive integer, found {values:?}"),
                    ));
                }
            }
        }
    };
    dataset_from_arrays(
        x,
        &entry_path(path, "x.npy"),
        y,
        &entry_path(path, "y.npy"),
        classes,
    )
}

/// Writes a [`Dataset`] to an `.npz` archive: `x` (`float32`, `[n, ...sample shape]`), `y`
/// (`int64`, `[n]`) and `num_classes` (0-d `int64`).
pub fn write_dataset(
    path: impl AsRef<Path>,
    dataset: &Dataset,
    compression: Compression,
) -> Result<()> {
    let mut x_shape = vec![dataset.len()];
    x_shape.extend(dataset.sample_shape().batch_dims(1).into_iter().skip(1));
    let x = Array::f32(x_shape, dataset.features().to_vec())?;
    let y = Array::i64(vec![dataset.len()], dataset.labels().to_vec())?;
    let c = Array::i64(vec![], vec![dataset.num_classes() as i64])?;
    write(
        path,
        &[("x", &x), ("y", &y), ("num_classes", &c)],
        compression,
    )
}

/// The name of an archive entry in errors: `archive.npz:entry`.
fn entry_path(archive: &Path, entry: &str) -> PathBuf {
    PathBuf::from(format!("{}:{entry}", archive.display()))
}
