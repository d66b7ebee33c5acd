//! Saving a pruned module and loading it into a fresh one of the original architecture.
//!
//! A pruned `Net` no longer fits `NetConfig::init()` (its tensors are smaller), so the file
//! records what pruning changed along with the weights: a safetensors file with every float
//! tensor of the module under its module path (with its pruned shape) and, in the metadata,
//! the grouped convolutions whose `groups` changed. Loading maps every tensor of a freshly
//! initialised module to the stored one, which gives back the pruned module exactly.

use super::mapper::replace;
use super::{ConvGroups, ModuleError, Pruned};
use burn::module::Module;
use burn::tensor::TensorData;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;
use xprune_io::trace::module_tensors;

/// The metadata key naming the format, and its value.
const FORMAT_KEY: &str = "format";
const FORMAT: &str = "xprune-pruned-module/1";
/// The metadata key of the changed convolution groups (JSON).
const GROUPS_KEY: &str = "conv_groups";

fn file_error(path: &Path, why: impl Into<String>) -> ModuleError {
    ModuleError::File {
        path: path.display().to_string(),
        why: why.into(),
    }
}

/// Saves a pruned module: every float tensor by module path, and the changed convolution
/// groups.
///
/// # Errors
///
/// [`ModuleError::File`] when the file cannot be written.
pub fn save_pruned<M: Module>(
    pruned: &Pruned<M>,
    path: impl AsRef<Path>,
) -> Result<(), ModuleError> {
    let path = path.as_ref();
    let tensors = module_tensors(pruned.module_unchecked());
    let mut bytes: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::with_capacity(tensors.len());
    for (name, data) in tensors {
        let values = data
            .try_to_vec::<f32>()
            .map_err(|e| file_error(path, format!("tensor `{name}`: {e:?}")))?;
        let shape = data.shape().as_slice().to_vec();
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        bytes.push((name, raw, shape));
    }
    let views = bytes
        .iter()
        .map(|(name, raw, shape)| {
            TensorView::new(Dtype::F32, shape.clone(), raw)
                .map(|v| (name.clone(), v))
                .map_err(|e| file_error(path, format!("tensor `{name}`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let groups =
        serde_json::to_string(pruned.conv_groups()).map_err(|e| file_error(path, e.to_string()))?;
    let metadata = HashMap::from([
        (FORMAT_KEY.to_string(), FORMAT.to_string()),
        (GROUPS_KEY.to_string(), groups),
    ]);
    safetensors::serialize_to_file(views, Some(metadata), path)
        .map_err(|e| file_error(path, e.to_string()))
}

/// Loads a pruned module saved by [`save_pruned`] into `module`, a freshly initialised module
/// of the original architecture (`NetConfig::new().init(&device)`): every tensor takes the
/// stored shape and values. Set the groups of [`Pruned::conv_groups`] as after pruning.
///
/// # Errors
///
/// [`ModuleError::File`] when the file cannot be read, is not a pruned-module file, or does
/// not fit `module` (a tensor missing on either side, another rank, another element type).
pub fn load_pruned<M: Module>(module: M, path: impl AsRef<Path>) -> Result<Pruned<M>, ModuleError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| file_error(path, e.to_string()))?;
    let (_, meta) =
        SafeTensors::read_metadata(&bytes).map_err(|e| file_error(path, e.to_string()))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    if meta.get(FORMAT_KEY).map(String::as_str) != Some(FORMAT) {
        return Err(file_error(
            path,
            format!("not a pruned-module file (metadata `{FORMAT_KEY}` is not `{FORMAT}`)"),
        ));
    }
    let conv_groups: Vec<ConvGroups> = match meta.get(GROUPS_KEY) {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| file_error(path, format!("metadata `{GROUPS_KEY}`: {e}")))?,
        None => Vec::new(),
    };
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| file_error(path, e.to_string()))?;

    let mut values = HashMap::new();
    for (name, _) in &module_tensors(&module) {
        let view = tensors
            .tensor(name)
            .map_err(|_| file_error(path, format!("the file has no tensor `{name}`")))?;
        if view.dtype() != Dtype::F32 {
            return Err(file_error(
                path,
                format!("tensor `{name}` is {:?}, expected F32", view.dtype()),
            ));
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        values.insert(name.clone(), TensorData::new(data, view.shape().to_vec()));
    }
    if let Some(extra) = tensors
        .names()
        .into_iter()
        .find(|n| !values.contains_key(*n))
    {
        return Err(file_error(
            path,
            format!("tensor `{extra}` is not a tensor of the module"),
        ));
    }
    let module = replace(&module, values).map_err(|e| file_error(path, e.to_string()))?;
    Ok(Pruned {
        module,
        conv_groups,
    })
}
