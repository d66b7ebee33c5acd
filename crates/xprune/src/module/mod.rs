//! Explaining and pruning the user's own Burn modules.
//!
//! A Burn user's `#[derive(Module)] struct Net { conv1: Conv2d, bn1: BatchNorm, ... }` with a
//! hand-written `forward` is traced once ([`ModuleGraph::trace`], through Burn's graph-capture
//! device, see [`xprune_io::trace`]) into the [`Graph`] every part of xprune works on: the
//! [`Attributor`](xprune_lrp::Attributor), composites by layer kind and by module path (node
//! names *are* the module paths: `conv1`, `block1.conv2`), every criterion, the [`Pruner`].
//! A plan, or a pruned graph, is then applied to the user's module itself
//! ([`ModuleGraph::apply`], [`ModuleGraph::prune`]): a path-keyed [`ModuleMapper`] replaces
//! every tensor that lost channels (convolution weights and biases, batch-norm gamma, beta and
//! running statistics, `Linear`'s `[in, out]` weight, ...), and the result is the user's own
//! type, smaller, whose forward equals the masked original.
//!
//! One thing a mapper cannot change: Burn's `Conv2d` keeps its `groups` as a plain field, so a
//! depthwise (or square-grouped) convolution that loses channels needs its `groups` set by
//! the caller. [`Pruned::conv_groups`] lists them and [`Pruned::into_module_with`] takes the
//! assignment (`|net, change| if change.path == "block.dw" { net.block.dw.groups = change.groups }`);
//! [`Pruned::into_module`] refuses to hand out a module whose groups are stale.
//!
//! Pruned modules are saved with [`save_pruned`] (a safetensors file: every tensor by module
//! path, plus the groups changes) and loaded into a freshly initialised module of the
//! original architecture with [`load_pruned`].

mod mapper;
mod store;
#[cfg(test)]
mod tests;

pub use store::{load_pruned, save_pruned};

use crate::prune::{GradualOutcome, GradualSchedule, PruneError, PruneOutcome, PruneStep, Pruner};
use crate::train::TrainConfig;
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use std::collections::HashMap;
use xprune_criteria::Criterion;
use xprune_graph::{Dataset, Graph, Layer};
pub use xprune_io::trace::{TraceError, Traced, TracedParam};
use xprune_surgery::{ChannelGroups, PrunePlan};

/// An error while explaining, pruning, saving or loading a user's module.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// Tracing the module failed.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// Pruning the traced graph failed.
    #[error(transparent)]
    Prune(#[from] PruneError),
    /// The pruned graph does not fit the module (a node or tensor is missing).
    #[error("the pruned graph does not fit the module: {0}")]
    Mismatch(String),
    /// Grouped convolutions lost groups; Burn keeps `groups` as a field a mapper cannot change.
    #[error(
        "the pruned module's grouped convolutions need their `groups` set ({}); use \
         `Pruned::into_module_with` to assign them",
        .0.iter().map(|c| format!("`{}.groups = {}`", c.path, c.groups)).collect::<Vec<_>>().join(", ")
    )]
    GroupsToSet(Vec<ConvGroups>),
    /// Reading or writing a pruned-module file failed.
    #[error("{path}: {why}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        why: String,
    },
}

/// A grouped convolution whose `groups` changed with pruning.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConvGroups {
    /// The convolution's module path (`block.dw`).
    pub path: String,
    /// Its groups before pruning.
    pub before: usize,
    /// Its groups after pruning (the value to assign).
    pub groups: usize,
}

/// A user's module traced into a graph: explain it, score it, prune it.
#[derive(Clone, Debug)]
pub struct ModuleGraph<M> {
    module: M,
    traced: Traced,
}

impl<M: Module> ModuleGraph<M> {
    /// Traces `module`'s forward with an example input of shape `input_dims` (batch first);
    /// `forward` calls the module (`|net, x| net.forward(x)`). The graph lives on `device`.
    ///
    /// # Errors
    ///
    /// [`ModuleError::Trace`] when the forward uses an operation the graph cannot represent
    /// (named, with the module path), applies a module twice, or panics.
    pub fn trace<const D: usize, const O: usize, F>(
        module: M,
        input_dims: [usize; D],
        forward: F,
        device: &Device,
    ) -> Result<Self, ModuleError>
    where
        F: FnOnce(&M, Tensor<D>) -> Tensor<O>,
    {
        let traced = xprune_io::trace::trace(&module, input_dims, forward, device)?;
        Ok(Self { module, traced })
    }

    /// The graph (node names are module paths).
    pub fn graph(&self) -> &Graph {
        &self.traced.graph
    }

    /// The traced module.
    pub fn module(&self) -> &M {
        &self.module
    }

    /// The trace: the graph and where each module tensor sits in it.
    pub fn traced(&self) -> &Traced {
        &self.traced
    }

    /// Applies a pruned (or fine-tuned) version of [`ModuleGraph::graph`] (from surgery, a
    /// [`Pruner`] or training) to a copy of the module: every tensor of the module takes the
    /// shape and values of its counterpart in `pruned`. The traced module is not changed.
    ///
    /// # Errors
    ///
    /// [`ModuleError::Mismatch`] when `pruned` lacks a node or tensor of the module.
    pub fn apply(&self, pruned: &Graph) -> Result<Pruned<M>, ModuleError> {
        let mut replace = HashMap::new();
        for p in &self.traced.params {
            let id = pruned.find(&p.node).map_err(|_| {
                ModuleError::Mismatch(format!("node `{}` (of `{}`) is missing", p.node, p.path))
            })?;
            let Some(t) = pruned.layers()[id]
                .params()
                .into_iter()
                .find(|t| t.role == p.role)
            else {
                return Err(ModuleError::Mismatch(format!(
                    "node `{}` has no `{}` (for `{}`)",
                    p.node, p.role, p.path
                )));
            };
            replace.insert(p.path.clone(), t.data);
        }
        let conv_groups = self.groups_changes(pruned)?;
        let module = mapper::replace(&self.module, replace)?;
        Ok(Pruned {
            module,
            conv_groups,
        })
    }

    /// Applies a plan over channel groups of [`ModuleGraph::graph`] (found by
    /// [`ChannelGroups::new`](xprune_surgery::ChannelGroups::new) or [`Pruner::groups`]).
    ///
    /// # Errors
    ///
    /// As [`ModuleGraph::apply`], and [`ModuleError::Prune`] when the plan does not fit.
    pub fn apply_plan(
        &self,
        groups: &ChannelGroups,
        plan: &PrunePlan,
    ) -> Result<Pruned<M>, ModuleError> {
        let pruned = xprune_surgery::prune(self.graph(), groups, plan)
            .map_err(|e| ModuleError::Prune(e.into()))?;
        self.apply(&pruned)
    }

    /// Scores and prunes the traced graph with `pruner` (one shot), then applies the result to
    /// the module. Returns the pruned module and the pruner's outcome (counts, removed
    /// channels).
    ///
    /// # Errors
    ///
    /// [`ModuleError::Prune`] when scoring or selection fails, and as [`ModuleGraph::apply`].
    pub fn prune<C: Criterion>(
        &self,
        pruner: &mut Pruner<C>,
        data: Option<&Dataset>,
    ) -> Result<(Pruned<M>, PruneOutcome), ModuleError> {
        let outcome = pruner.one_shot(self.graph(), data)?;
        let pruned = self.apply(&outcome.graph)?;
        Ok((pruned, outcome))
    }

    /// Iterative pruning of the module: `steps` rounds of scoring and removal on the graph
    /// (see [`Pruner::iterative`]), each followed by `fine_tune`, which receives the user's
    /// module pruned so far (set its groups as after [`ModuleGraph::prune`]), trains it as the
    /// user trains it, and returns it; its tensors flow back into the graph for the next
    /// round. Returns the final module and the outcome.
    ///
    /// # Errors
    ///
    /// As [`ModuleGraph::prune`]; an error of `fine_tune` is a [`PruneError::FineTune`].
    pub fn iterative<C: Criterion>(
        &self,
        pruner: &mut Pruner<C>,
        data: Option<&Dataset>,
        steps: usize,
        mut fine_tune: impl FnMut(Pruned<M>, &PruneStep) -> Result<M, String>,
    ) -> Result<(Pruned<M>, PruneOutcome), ModuleError> {
        let mut last: Option<Pruned<M>> = None;
        let outcome = pruner.iterative(self.graph(), data, steps, |graph, step| {
            let pruned = self.apply(&graph).map_err(|e| e.to_string())?;
            let groups = pruned.conv_groups.clone();
            let tuned = fine_tune(pruned, step)?;
            let graph =
                with_module_tensors(&graph, &self.traced, &tuned).map_err(|e| e.to_string())?;
            last = Some(Pruned {
                module: tuned,
                conv_groups: groups,
            });
            Ok(graph)
        })?;
        let pruned = match last {
            Some(p) => p,
            None => self.apply(&outcome.graph)?,
        };
        Ok((pruned, outcome))
    }

    /// Gradual pruning while training (see [`Pruner::gradual`]: xprune's trainer on the traced
    /// graph, channels removed on a schedule), applied to the module at the end.
    ///
    /// # Errors
    ///
    /// As [`Pruner::gradual`] and [`ModuleGraph::apply`].
    pub fn gradual<C: Criterion>(
        &self,
        pruner: &mut Pruner<C>,
        train_data: &Dataset,
        reference: Option<&Dataset>,
        config: &TrainConfig,
        schedule: GradualSchedule,
    ) -> Result<(Pruned<M>, GradualOutcome), ModuleError> {
        let outcome = pruner.gradual(self.graph(), train_data, reference, config, schedule)?;
        let pruned = self.apply(&outcome.outcome.graph)?;
        Ok((pruned, outcome))
    }

    /// The grouped convolutions whose groups differ between the traced and the pruned graph.
    /// `Conv2d` is the one Burn layer a trace produces whose plain (non-tensor) fields change
    /// with pruning: the tracer refuses transposed convolutions, and the other layers keep
    /// only tensors and constants such as `epsilon`.
    fn groups_changes(&self, pruned: &Graph) -> Result<Vec<ConvGroups>, ModuleError> {
        let mut out = Vec::new();
        for (id, layer) in self.graph().layers().iter().enumerate() {
            let Layer::Conv2d(before) = layer else {
                continue;
            };
            let name = self.graph().name(id);
            let after = pruned
                .find(name)
                .map_err(|_| ModuleError::Mismatch(format!("node `{name}` is missing")))?;
            let Layer::Conv2d(after) = &pruned.layers()[after] else {
                return Err(ModuleError::Mismatch(format!(
                    "node `{name}` is no longer a convolution"
                )));
            };
            if before.groups != after.groups {
                out.push(ConvGroups {
                    path: name.to_string(),
                    before: before.groups,
                    groups: after.groups,
                });
            }
        }
        Ok(out)
    }
}

/// `graph` (the traced graph, possibly pruned) with every tensor of `module` written into the
/// node and role the trace found for its path.
fn with_module_tensors<M: Module>(
    graph: &Graph,
    traced: &Traced,
    module: &M,
) -> Result<Graph, ModuleError> {
    let device = graph.device();
    let sites: HashMap<&str, &TracedParam> =
        traced.params.iter().map(|p| (p.path.as_str(), p)).collect();
    // One rebuild at the end rather than a graph copy per tensor.
    let (input, mut defs, output) = graph.to_node_defs();
    for (path, data) in xprune_io::trace::module_tensors(module) {
        let Some(site) = sites.get(path.as_str()) else {
            return Err(ModuleError::Mismatch(format!(
                "the module has a tensor `{path}` the trace does not know"
            )));
        };
        let def = defs
            .iter_mut()
            .find(|d| d.name == site.node)
            .ok_or_else(|| ModuleError::Mismatch(format!("node `{}` is missing", site.node)))?;
        def.layer
            .set_param(&site.role, data, &device)
            .map_err(|e| ModuleError::Mismatch(format!("`{path}`: {e}")))?;
    }
    Graph::from_nodes(input, defs, output)
        .map_err(|e| ModuleError::Mismatch(format!("the fine-tuned module: {e}")))
}

/// A pruned user module: the module with every tensor resized, and the grouped convolutions
/// whose `groups` the caller must set (Burn's `Conv2d::groups` is not a tensor).
#[derive(Clone, Debug)]
pub struct Pruned<M> {
    module: M,
    conv_groups: Vec<ConvGroups>,
}

impl<M> Pruned<M> {
    /// The grouped convolutions whose `groups` must be set (empty for most models).
    pub fn conv_groups(&self) -> &[ConvGroups] {
        &self.conv_groups
    }

    /// The pruned module.
    ///
    /// # Errors
    ///
    /// [`ModuleError::GroupsToSet`] when grouped convolutions lost groups (their `groups` field
    /// would be stale): use [`Pruned::into_module_with`].
    pub fn into_module(self) -> Result<M, ModuleError> {
        if self.conv_groups.is_empty() {
            Ok(self.module)
        } else {
            Err(ModuleError::GroupsToSet(self.conv_groups))
        }
    }

    /// The pruned module, after `set` has assigned the groups of every changed grouped
    /// convolution (`|net, change| match change.path.as_str() { "block.dw" =>
    /// net.block.dw.groups = change.groups, _ => {} }`).
    pub fn into_module_with(self, mut set: impl FnMut(&mut M, &ConvGroups)) -> M {
        let mut module = self.module;
        for change in &self.conv_groups {
            set(&mut module, change);
        }
        module
    }

    /// The pruned module before groups are set (for saving; its forward is wrong where
    /// [`Pruned::conv_groups`] is not empty).
    pub fn module_unchecked(&self) -> &M {
        &self.module
    }
}
