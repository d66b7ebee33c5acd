//! Training and evaluation of a [`Graph`](xprune_graph::Graph) for classification.
//!
//! - [`TrainConfig`]: epochs, batch size, learning rate, [`Optimizer`] (SGD with momentum,
//!   Adam, AdamW, all from `burn::optim`), [`LrSchedule`] (constant, step decay, cosine; per
//!   epoch or per step), seed.
//! - [`train`] / [`Trainer`]: cross-entropy training in `burn-train`'s `Learner` (a
//!   [`Graph`](xprune_graph::Graph) implements its `TrainStep` and `InferenceStep`), on the
//!   autodiff version of the graph's device or on several devices, with an optional
//!   per-epoch evaluation in `burn-train`'s validation loop, an end-of-epoch hook and a
//!   [`Progress`] callback; returns a trained copy ([`Trained`]) and leaves the input graph
//!   untouched.
//! - For the rest of `burn-train` (its metrics, dashboard, file checkpoints, early stopping),
//!   put the graph in a `Learner` of your own with [`Optimizer::init`] and
//!   [`TrainConfig::scheduler`], and feed it `DataLoaderBuilder` loaders of a
//!   [`Dataset`](xprune_graph::Dataset) with [`SampleBatcher`](xprune_graph::SampleBatcher).
//! - [`evaluate`]: [`Metrics`] (accuracy, per-class accuracy, loss, confusion matrix) in
//!   inference mode.
//!
//! See `docs/training.md` for the conventions and measured results.

mod config;
mod error;
mod learner;
mod metrics;
mod schedule;
mod trainer;

pub use config::{Optimizer, TrainConfig};
pub use error::TrainError;
pub use metrics::{Metrics, evaluate};
pub use schedule::{LrSchedule, ScheduleUnit};
pub use trainer::{EpochSummary, Progress, ProgressKind, Trained, Trainer, train};

#[cfg(test)]
mod tests;
