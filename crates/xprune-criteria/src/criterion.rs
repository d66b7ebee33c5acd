//! The [`Criterion`] trait and what a criterion is given to score channels.

use crate::error::{CriterionError, Result};
use crate::scores::Scores;
use burn::module::Module;
use burn::tensor::Device;
use xprune_graph::{Dataset, Graph};
use xprune_surgery::ChannelGroups;

/// What a criterion needs to score channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Needs {
    /// Only the weights (weight norm, random).
    Weights,
    /// Forward passes over reference data (LRP, Shapley, feature relevance).
    Data,
    /// Forward and backward passes over reference data on an autodiff device (gradient,
    /// Taylor).
    Gradients,
}

/// Everything a criterion is given: the graph, its channel groups, optional reference data,
/// the device to compute on, a batch size and a seed for any random choice.
#[derive(Clone, Copy, Debug)]
pub struct ScoringContext<'a> {
    /// The graph whose channels are scored.
    pub graph: &'a Graph,
    /// Its channel groups (found with `ChannelGroups::new` or `with_pinned` on `graph`).
    pub groups: &'a ChannelGroups,
    /// Reference samples with labels, if any.
    pub data: Option<&'a Dataset>,
    /// Device for computations (the graph's device).
    pub device: &'a Device,
    /// Devices to split reference batches and Shapley coalitions across (see
    /// [`ScoringContext::with_devices`]); empty means `device` alone.
    pub devices: &'a [Device],
    /// Largest number of samples per forward pass.
    pub batch_size: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

impl<'a> ScoringContext<'a> {
    /// A context without data, on the graph's device, batch size 64, seed 0.
    pub fn new(graph: &'a Graph, groups: &'a ChannelGroups, device: &'a Device) -> Self {
        Self {
            graph,
            groups,
            data: None,
            device,
            devices: &[],
            batch_size: 64,
            seed: 0,
        }
    }

    /// With reference data.
    pub fn with_data(mut self, data: &'a Dataset) -> Self {
        self.data = Some(data);
        self
    }

    /// With a batch size.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// With several devices: the criteria that run reference batches (LRP, feature relevance,
    /// gradient, Taylor) split the batches across them, Shapley splits its coalitions, each
    /// device working on its own copy of the graph in a thread of its own. The scores equal
    /// the single-device ones: exactly for devices of one kind, within float tolerance for
    /// devices of different kinds. Devices may repeat (two workers on one device). An empty
    /// list means the context's `device` alone.
    pub fn with_devices(mut self, devices: &'a [Device]) -> Self {
        self.devices = devices;
        self
    }

    /// The devices work is split across: the `devices` field if it is not empty, else
    /// `device` alone.
    pub fn devices(&self) -> &'a [Device] {
        if self.devices.is_empty() {
            std::slice::from_ref(self.device)
        } else {
            self.devices
        }
    }

    /// The graph on `device`: the graph itself on its own device, a fork elsewhere (the
    /// weights are tensor handles, so neither copies them on the graph's device).
    pub fn graph_on(&self, device: &Device) -> Graph {
        match device == self.device {
            true => self.graph.clone(),
            false => self.graph.clone().fork(device),
        }
    }

    /// With a seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The reference data, checked against the graph; an error naming the criterion if it is
    /// missing or empty.
    pub fn require_data(&self, criterion: &str) -> Result<&'a Dataset> {
        let data = self
            .data
            .filter(|d| !d.is_empty())
            .ok_or_else(|| CriterionError::NeedsData(criterion.to_string()))?;
        if data.sample_shape() != self.graph.input_shape() {
            return Err(CriterionError::DataShape {
                data: data.sample_shape().to_string(),
                graph: self.graph.input_shape().to_string(),
            });
        }
        let outputs = self.graph.output_shape().numel();
        if data.num_classes() > outputs {
            return Err(CriterionError::Classes {
                data: data.num_classes(),
                graph: outputs,
            });
        }
        Ok(data)
    }
}

/// A pruning criterion: scores every channel of every prunable channel group; higher scores
/// mean more important channels.
///
/// Implement it for your own criterion: return one finite score per channel of each prunable
/// group (see [`Scores::insert`]). The built-in criteria show the patterns: weights only
/// ([`WeightNorm`](crate::WeightNorm)), activations and gradients
/// ([`Taylor`](crate::Taylor)), relevance ([`LrpCriterion`](crate::LrpCriterion)), and
/// coalitions of masked channels ([`Shapley`](crate::Shapley)).
pub trait Criterion {
    /// A short name for reports (`l1`, `taylor`, `lrp`, ...).
    fn name(&self) -> String;

    /// What the criterion needs.
    fn needs(&self) -> Needs;

    /// Scores every prunable group of `ctx.groups`.
    fn score(&self, ctx: &ScoringContext<'_>) -> Result<Scores>;
}

impl<C: Criterion + ?Sized> Criterion for Box<C> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn needs(&self) -> Needs {
        (**self).needs()
    }
    fn score(&self, ctx: &ScoringContext<'_>) -> Result<Scores> {
        (**self).score(ctx)
    }
}

impl<C: Criterion + ?Sized> Criterion for &C {
    fn name(&self) -> String {
        (**self).name()
    }
    fn needs(&self) -> Needs {
        (**self).needs()
    }
    fn score(&self, ctx: &ScoringContext<'_>) -> Result<Scores> {
        (**self).score(ctx)
    }
}
