//! ONNX import and export of xprune [`Graph`](xprune_graph::Graph)s.
//!
//! - [`import_onnx`] / [`import_onnx_bytes`] read a model exported by PyTorch (or any other
//!   tool) into a graph, opsets 11 and newer: every op some layer kind imports, the
//!   multi-node patterns kinds recognise (`x * sigmoid(x)`, the `Erf` form of GELU, channel
//!   shuffles, layer norms between transposes, splits, biases added after `Conv` and
//!   `MatMul`), and constant shape arithmetic, which is folded ([`supported_ops`] lists
//!   them). ONNX node names are kept (sanitised, made unique) as node names.
//! - [`export_onnx`] / [`export_onnx_bytes`] write any graph, pruned or not, as an ONNX
//!   model (opset 13, or newer where a layer needs it) that other runtimes (onnxruntime,
//!   ...) run.
//!
//! Every failure is an [`OnnxError`] naming the file, node, op and attribute and what is
//! supported; corrupt files are errors, never panics. `docs/onnx.md` lists the exact
//! supported subset.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use xprune_io::onnx::{export_onnx, import_onnx};
//!
//! # fn main() -> Result<(), xprune_io::onnx::OnnxError> {
//! let device = Device::flex();
//! let graph = import_onnx("resnet18.onnx", &device)?;
//! // ... explain and prune ...
//! export_onnx(&graph, "resnet18-pruned.onnx")?;
//! # Ok(())
//! # }
//! ```

mod attr;
mod error;
mod export;
mod import;
mod names;
mod shape_ops;
mod tensor;
#[cfg(test)]
mod tests;

pub use error::{OnnxError, Result};
pub use export::{BATCH_DIM, EXPORT_IR_VERSION, EXPORT_OPSET, export_onnx, export_onnx_bytes};
pub use import::{MIN_OPSET, SHAPE_OPS, import_onnx, import_onnx_bytes, supported_ops};
pub(crate) use import::{import_op_graph, panic_message};
pub(crate) use names::NameTable;
