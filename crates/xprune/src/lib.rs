//! # xprune
//!
//! Explanation-driven structured pruning of neural networks on [Burn](https://burn.dev).
//!
//! This is the facade crate: it re-exports the workspace crates and adds backend selection
//! ([`backend`]), training and evaluation helpers ([`train`]), and the pruning procedures
//! ([`prune`]: selection, [`Pruner`], iterative and gradual pruning).
#![warn(missing_docs)]

pub mod backend;
pub mod inference;
pub mod latency;
pub mod malloc;
pub mod module;
pub mod prune;
pub mod train;

pub use burn;
pub use xprune_criteria as criteria;
pub use xprune_graph as graph;
pub use xprune_io as io;
pub use xprune_isp as isp;
pub use xprune_lrp as lrp;
pub use xprune_models as models;
pub use xprune_surgery as surgery;

pub use backend::{Backend, BackendError};
pub use inference::{InferenceError, InferenceForm, inference_form};
pub use latency::{LatencyError, LatencyModel, LayerTimer, ProbeOptions, RunnerTimer};
pub use module::{ModuleError, ModuleGraph, Pruned, load_pruned, save_pruned};
pub use prune::{Normalization, PruneError, PruneOutcome, PruneTarget, Pruner, Scope, Selection};
pub use xprune_criteria::{
    Criterion, FeatureRelevance, Gradient, LrpCriterion, RandomCriterion, Scores, Shapley, Taylor,
    WeightNorm,
};
pub use xprune_graph::{
    Activation, Batch, ChannelMasks, Conv2dSpec, Dataset, FeatureShape, Graph, GraphBuilder,
    GraphError, Layer, NodeId, Recording,
};
pub use xprune_isp::{Isp, IspConfig};
pub use xprune_surgery::{ChannelGroups, PrunePlan};
