//! [`TrainError`]: what can go wrong when training or evaluating.

use xprune_graph::GraphError;

/// An error of [`train`](super::train), [`Trainer::fit`](super::Trainer::fit) or
/// [`evaluate`](super::evaluate). The caller's graph is never modified.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A configuration value out of range (zero epochs or batch size, a non-positive
    /// learning rate, a momentum outside `[0, 1)`, ...).
    #[error("invalid training configuration: {0}")]
    InvalidConfig(String),
    /// The data set has no samples.
    #[error("the {0} data set is empty")]
    EmptyDataset(&'static str),
    /// The samples do not fit the graph's input.
    #[error("the {which} data set has samples of shape [{data}], but the graph takes [{graph}]")]
    InputShape {
        /// `training` or `evaluation`.
        which: &'static str,
        /// The data set's sample shape.
        data: String,
        /// The graph's input shape.
        graph: String,
    },
    /// The data set has more classes than the graph has outputs.
    #[error(
        "the {which} data set has {classes} classes, but the graph has {outputs} outputs \
         (output node `{node}`)"
    )]
    Classes {
        /// `training` or `evaluation`.
        which: &'static str,
        /// Classes of the data set.
        classes: usize,
        /// Outputs of the graph.
        outputs: usize,
        /// The graph's output node.
        node: String,
    },
    /// The loss became NaN or infinite (too high a learning rate, usually).
    #[error(
        "the training loss is {loss} at step {step} (epoch {epoch}, learning rate {lr}); \
         lower the learning rate"
    )]
    NonFiniteLoss {
        /// Epoch, counted from 1.
        epoch: usize,
        /// Optimisation step, counted from 1 over the whole run.
        step: usize,
        /// The loss value.
        loss: f64,
        /// The learning rate of that step.
        lr: f64,
    },
    /// The end-of-epoch hook ([`Trainer::after_epoch`](super::Trainer::after_epoch)) failed
    /// or returned a graph that no longer fits the data.
    #[error("after epoch {epoch}: {message}")]
    Hook {
        /// Epoch, counted from 1.
        epoch: usize,
        /// What went wrong.
        message: String,
    },
    /// `burn-train` stopped on an error (a device failure, a panic in a training step).
    #[error("training failed in burn-train: {0}")]
    Learner(String),
    /// Running the graph failed.
    #[error(transparent)]
    Graph(#[from] GraphError),
}
