//! What xprune's [`Trainer`](super::Trainer) reads of every step in `burn-train`: the loss
//! and accuracy of a training step, the logits of a validation batch.

use burn::tensor::{Int, Tensor, TensorReadError};
use burn_train::ClassificationOutput;
use burn_train::metric::Adaptor;

/// What the trainer passes from `burn-train`'s metric thread to its own.
pub(crate) enum Event {
    /// A training step: its loss, correctly classified samples, and batch size.
    Step {
        loss: f64,
        correct: usize,
        samples: usize,
    },
    /// A validation batch: its logits (`samples x outputs`, row-major) and labels.
    Valid { logits: Vec<f32>, labels: Vec<i64> },
}

/// The part of a [`ClassificationOutput`] the trainer reads.
pub(crate) struct Recorded {
    loss: Tensor<1>,
    output: Tensor<2>,
    targets: Tensor<1, Int>,
}

impl Adaptor<Recorded> for ClassificationOutput {
    fn adapt(&self) -> Recorded {
        Recorded {
            loss: self.loss.clone(),
            output: self.output.clone(),
            targets: self.targets.clone(),
        }
    }
}

/// A training step's loss and accuracy; stops training at a loss that is not finite.
pub(crate) fn read_step(item: &Recorded) -> Result<(Event, bool), TensorReadError> {
    let loss = item.loss.clone().try_into_scalar::<f64>()?;
    let [samples, _] = item.output.dims();
    let correct = item
        .output
        .clone()
        .argmax(1)
        .reshape([samples])
        .equal(item.targets.clone())
        .int()
        .sum()
        .try_into_scalar::<i64>()? as usize;
    let event = Event::Step {
        loss,
        correct,
        samples,
    };
    Ok((event, !loss.is_finite()))
}

/// A validation batch's logits and labels.
pub(crate) fn read_valid(item: &Recorded) -> Result<(Event, bool), TensorReadError> {
    let event = Event::Valid {
        logits: xprune_graph::tensor_util::to_vec(&item.output),
        labels: xprune_graph::tensor_util::to_vec_int(&item.targets),
    };
    Ok((event, false))
}
