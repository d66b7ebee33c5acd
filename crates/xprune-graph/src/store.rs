//! Saving and loading a graph with its weights: one safetensors file whose metadata holds the
//! readable structure description (JSON) and whose tensors are named `<node>.<role>`.

use crate::error::{GraphError, Result};
use crate::graph::Graph;
use crate::spec::GraphSpec;
use burn::tensor::{Device, TensorData};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// Metadata key holding the structure JSON.
pub const STRUCTURE_KEY: &str = "xprune.graph";

impl Graph {
    /// Every tensor of the graph as `(<node>.<role>, data)`, in node order. Roles are
    /// `weight`, `bias` (conv, linear; Burn's linear weight is `[in, out]`), `gamma`, `beta`,
    /// `running_mean`, `running_var` (batch norm).
    pub fn named_tensors(&self) -> Vec<(String, TensorData)> {
        let mut out = Vec::new();
        for (info, layer) in self.nodes().iter().zip(self.layers()) {
            for p in layer.params() {
                out.push((format!("{}.{}", info.name, p.role), p.data.convert::<f32>()));
            }
        }
        out
    }

    /// Saves structure and weights to one safetensors file (`f32` tensors; the structure JSON
    /// is in the metadata under [`STRUCTURE_KEY`]). Loading it back gives a graph whose
    /// outputs are bit-identical.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let tensors = self.named_tensors();
        let views = tensors
            .iter()
            .map(|(name, data)| {
                let view = TensorView::new(
                    Dtype::F32,
                    data.shape().as_slice().to_vec(),
                    data.as_bytes(),
                )
                .map_err(|e| GraphError::Weights {
                    path: path.to_path_buf(),
                    message: format!("tensor `{name}`: {e}"),
                })?;
                Ok((name.clone(), view))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut meta = HashMap::new();
        meta.insert(
            STRUCTURE_KEY.to_string(),
            serde_json::to_string(&self.spec()).expect("spec serialises"),
        );
        let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| GraphError::Weights {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        std::fs::write(path, bytes).map_err(|source| GraphError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Loads a graph saved with [`Graph::save`] onto `device`.
    ///
    /// A truncated or corrupt file, a missing structure, or a tensor whose shape does not fit
    /// its node is an error naming the file and the tensor.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| GraphError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_safetensors(&bytes, path, device)
    }

    /// Loads a graph from the bytes of a file saved with [`Graph::save`] onto `device`;
    /// `path` only labels errors. Errors as for [`Graph::load`]: no input makes it panic or
    /// allocate more than the bytes and the bounded shapes (see
    /// [`FeatureShape::check_size`](crate::FeatureShape::check_size)) ask for.
    pub fn from_safetensors(bytes: &[u8], path: &Path, device: &Device) -> Result<Self> {
        let werr = |message: String| GraphError::Weights {
            path: path.to_path_buf(),
            message,
        };
        let (_, metadata) = SafeTensors::read_metadata(bytes)
            .map_err(|e| werr(format!("not a valid safetensors file: {e}")))?;
        let json = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get(STRUCTURE_KEY))
            .ok_or_else(|| {
                werr(format!(
                    "no `{STRUCTURE_KEY}` structure in the metadata; was it saved by xprune?"
                ))
            })?;
        let spec = GraphSpec::from_json(json)?;
        let tensors = SafeTensors::deserialize(bytes)
            .map_err(|e| werr(format!("not a valid safetensors file: {e}")))?;
        // The structure may not ask for more values than the file holds (a hostile structure
        // could otherwise make the initial weights allocate without bound).
        // Shapes are checked (and bounded, see `FeatureShape::check_size`) before anything
        // is allocated from them.
        let needed = spec
            .values()
            .map_err(|e| werr(format!("the structure does not fit: {e}")))?;
        let held: u64 = tensors
            .tensors()
            .iter()
            .map(|(_, v)| v.shape().iter().map(|&d| d as u64).product::<u64>())
            .sum();
        if needed > held {
            return Err(werr(format!(
                "the structure needs {needed} values but the file holds {held}"
            )));
        }
        let graph = Graph::from_spec(&spec, device, 0)
            .map_err(|e| werr(format!("the structure does not fit: {e}")))?;
        graph.with_tensors(
            |name| {
                let view = tensors
                    .tensor(name)
                    .map_err(|_| werr(format!("tensor `{name}` is missing")))?;
                if view.dtype() != Dtype::F32 {
                    return Err(werr(format!(
                        "tensor `{name}` has dtype {:?}, expected F32",
                        view.dtype()
                    )));
                }
                Ok(TensorData::from_bytes_vec(
                    view.data().to_vec(),
                    view.shape().to_vec(),
                    burn::tensor::DType::F32,
                ))
            },
            device,
            path,
        )
    }

    /// A copy of this graph with every tensor replaced by `source(<node>.<role>)`, checking each
    /// shape. `path` only labels errors.
    pub fn with_tensors(
        &self,
        mut source: impl FnMut(&str) -> Result<TensorData>,
        device: &Device,
        path: &Path,
    ) -> Result<Self> {
        let (input, mut defs, output) = self.to_node_defs();
        for def in defs.iter_mut() {
            let roles: Vec<(&'static str, Vec<usize>)> = def
                .layer
                .params()
                .into_iter()
                .map(|p| (p.role, p.dims()))
                .collect();
            for (role, dims) in roles {
                let name = format!("{}.{role}", def.name);
                let data = source(&name)?;
                if data.shape().as_slice() != dims.as_slice() {
                    return Err(GraphError::Weights {
                        path: path.to_path_buf(),
                        message: format!(
                            "tensor `{name}` has shape {:?}, the node needs {dims:?}",
                            data.shape().as_slice()
                        ),
                    });
                }
                def.layer
                    .set_param(role, data, device)
                    .map_err(|message| GraphError::Weights {
                        path: path.to_path_buf(),
                        message: format!("tensor `{name}`: {message}"),
                    })?;
            }
        }
        Graph::from_nodes(input, defs, output)
    }
}
