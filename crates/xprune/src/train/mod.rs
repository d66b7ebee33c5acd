//! Training and evaluation of a [`Graph`](xprune_graph::Graph) for classification.
//!
//! - [`TrainConfig`]: epochs, batch size, learning rate, [`Optimizer`] (SGD with momentum,
//!   Adam, AdamW, all from `burn::optim`), [`LrSchedule`] (constant, step decay, cosine; per
//!   epoch or per step), seed.
//! - [`train`] / [`Trainer`]: cross-entropy training on the autodiff version of the graph's
//!   device, with an optional per-epoch evaluation and a [`Progress`] callback; returns a
//!   trained copy ([`Trained`]) and leaves the input graph untouched.
//! - [`evaluate`]: [`Metrics`] (accuracy, per-class accuracy, loss, confusion matrix) in
//!   inference mode.
//!
//! See `docs/training.md` for the conventions and measured results.

mod config;
mod error;
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
