//! # xprune-graph
//!
//! The model representation of xprune: a [`Graph`] is a Burn [`Module`](burn::module::Module)
//! holding a DAG of named nodes, each with one of Burn's own layer types ([`Layer`]). It
//! infers and checks shapes when it is built, runs plain, recorded
//! ([`Graph::forward_recorded`]), masked ([`ChannelMasks`]) and resumed-from-cache
//! ([`Graph::resume`]) forward passes on any Burn device, trains in Burn's `Learner` (it
//! implements `burn-train`'s step traits; a [`Dataset`] is a `burn-dataset` dataset), and
//! saves and loads itself with its structure.
//!
//! Every layer kind is one file under `src/kinds/` implementing the traits of [`kind`] and
//! one line in the registry; the other xprune crates reach kinds only through those traits.
//!
//! ```
//! use burn::tensor::Device;
//! use xprune_graph::{Conv2dSpec, FeatureShape, GraphBuilder};
//!
//! # fn main() -> Result<(), xprune_graph::GraphError> {
//! let device = Device::flex();
//! let mut b = GraphBuilder::new(FeatureShape::spatial(3, 32, 32), &device).seed(1);
//! let input = b.input();
//! let x = b.conv2d("conv", input, Conv2dSpec::new(8, 3).padding(1))?;
//! let x = b.relu("relu", x)?;
//! let x = b.global_avg_pool("gap", x)?;
//! let x = b.flatten("flat", x)?;
//! let out = b.linear("fc", x, 10)?;
//! let graph = b.build(out)?;
//! assert_eq!(graph.output_shape(), FeatureShape::flat(10));
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod activation;
mod builder;
mod data;
mod error;
mod forward;
mod graph;
mod init;
pub mod kind;
pub mod kinds;
pub mod launch;
mod learn;
mod mask;
mod registry;
mod shape;
mod spec;
mod store;
pub mod tensor_util;

pub use activation::Activation;
pub use builder::{Conv2dSpec, GraphBuilder, Padding};
pub use data::{Batch, Dataset};
pub use error::{GraphError, Result};
pub use forward::{Mode, OutputHook, Recording, Run};
pub use graph::{Graph, NodeDef, NodeId, NodeInfo, Topology};
pub use init::Initializer;
pub use kind::{ChannelFlow, Counts, Kind, KindSpec, LrpView, RuleClass};
pub use kinds::add::Add;
pub use kinds::batch_norm::{AffineChannels, batch_norm};
pub use kinds::concat::Concat;
pub use kinds::flatten::Flatten;
pub use kinds::input::Input;
pub use kinds::util::resolve_padding;
pub use learn::{Batches, MAX_DATASET_VALUES, Sample, SampleBatcher, data_loader};
pub use mask::ChannelMasks;
pub use registry::{KIND_NAMES, Layer, OpSpec, fusions, import_node, onnx_ops};
pub use shape::{
    FeatureShape, Layout, MAX_GRAPH_CHANNELS, MAX_SAMPLE_VALUES, Padding2d, same_padding,
    window_output_hw, window_output_len,
};
pub use spec::{GraphSpec, NodeSpec, SPEC_FORMAT};
pub use store::STRUCTURE_KEY;

/// Burn, re-exported so that users and the other xprune crates name one version.
pub use burn;
/// Burn's training stack (`Learner`, `SupervisedTraining`, metrics), re-exported likewise;
/// a [`Graph`] implements its step traits.
pub use burn_train;
#[cfg(test)]
mod tests;
