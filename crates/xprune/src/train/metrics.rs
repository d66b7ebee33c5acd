//! [`evaluate`]: accuracy, per-class accuracy, loss and confusion matrix in inference mode.

use super::error::TrainError;
use burn::module::Module;
use std::fmt;
use xprune_graph::{Dataset, FeatureShape, Graph};

/// Classification metrics of a graph on a data set.
#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    /// Number of samples evaluated.
    pub samples: usize,
    /// Fraction of samples whose largest output is their label.
    pub accuracy: f64,
    /// Mean cross-entropy (softmax of the outputs against the labels), computed in `f64`.
    pub loss: f64,
    /// Accuracy on the samples of each class; `None` for a class without samples.
    pub per_class_accuracy: Vec<Option<f64>>,
    /// `confusion[label][prediction]`: counts of samples by true class (one row per class of
    /// the data set) and predicted output (one column per graph output).
    pub confusion: Vec<Vec<usize>>,
}

impl Metrics {
    /// Number of correctly classified samples.
    pub fn correct(&self) -> usize {
        self.confusion
            .iter()
            .enumerate()
            .map(|(c, row)| row.get(c).copied().unwrap_or(0))
            .sum()
    }

    /// Mean of the per-class accuracies over the classes that have samples.
    pub fn balanced_accuracy(&self) -> f64 {
        let present: Vec<f64> = self.per_class_accuracy.iter().flatten().copied().collect();
        present.iter().sum::<f64>() / present.len().max(1) as f64
    }
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "accuracy {:.2}% ({}/{}), loss {:.4}",
            100.0 * self.accuracy,
            self.correct(),
            self.samples,
            self.loss
        )
    }
}

/// Number of outputs of a graph (the output node's values per sample).
pub(crate) fn outputs(graph: &Graph) -> usize {
    graph.output_shape().numel()
}

/// Checks that a data set fits a graph: non-empty, matching input (a flat graph input also
/// takes samples of any shape with as many values) and no more classes than outputs.
pub(crate) fn check_fit(
    graph: &Graph,
    data: &Dataset,
    which: &'static str,
) -> Result<(), TrainError> {
    if data.is_empty() {
        return Err(TrainError::EmptyDataset(which));
    }
    let (have, want) = (data.sample_shape(), graph.input_shape());
    let flat_ok = matches!(want, FeatureShape::Flat(n) if n == have.numel());
    if have != want && !flat_ok {
        return Err(TrainError::InputShape {
            which,
            data: have.to_string(),
            graph: want.to_string(),
        });
    }
    if data.num_classes() > outputs(graph) {
        return Err(TrainError::Classes {
            which,
            classes: data.num_classes(),
            outputs: outputs(graph),
            node: graph.name(graph.output()).to_string(),
        });
    }
    Ok(())
}

/// Evaluates `graph` on `data` in inference mode (batch norm with running statistics, no
/// dropout), `batch_size` samples at a time.
///
/// A graph on an autodiff device is evaluated through a validation copy
/// ([`Module::valid`]); the graph itself is not modified.
pub fn evaluate(graph: &Graph, data: &Dataset, batch_size: usize) -> Result<Metrics, TrainError> {
    if batch_size == 0 {
        return Err(TrainError::InvalidConfig(
            "evaluation batch size must be at least 1".into(),
        ));
    }
    check_fit(graph, data, "evaluation")?;
    let valid;
    let graph = if graph.device().is_autodiff() {
        valid = graph.valid();
        &valid
    } else {
        graph
    };
    let device = graph.device();
    let mut tally = Tally::new(data.num_classes(), outputs(graph));
    for idx in data.batch_indices(batch_size) {
        let batch = data.batch(&idx, &device)?;
        let logits = graph.logits(graph.fit_input(batch.inputs))?;
        let labels: Vec<i64> = idx.iter().map(|&i| data.labels()[i]).collect();
        tally.add(&xprune_graph::tensor_util::to_vec(&logits), &labels);
    }
    Ok(tally.metrics())
}

/// Accumulates [`Metrics`] over batches of logits: the one place where predictions, the
/// confusion matrix and the `f64` cross-entropy are computed (by [`evaluate`] and by the
/// trainer's per-epoch evaluation in `burn-train`'s validation loop).
#[derive(Clone, Debug)]
pub(crate) struct Tally {
    outputs: usize,
    confusion: Vec<Vec<usize>>,
    loss_sum: f64,
    samples: usize,
}

impl Tally {
    /// An empty tally for `classes` classes and `outputs` graph outputs.
    pub(crate) fn new(classes: usize, outputs: usize) -> Self {
        Self {
            outputs,
            confusion: vec![vec![0usize; outputs]; classes],
            loss_sum: 0.0,
            samples: 0,
        }
    }

    /// Adds a batch: `logits` row-major `[labels.len(), outputs]`.
    pub(crate) fn add(&mut self, logits: &[f32], labels: &[i64]) {
        for (row, &label) in logits.chunks_exact(self.outputs).zip(labels) {
            let label = label as usize;
            let (pred, lse) = argmax_logsumexp(row);
            self.loss_sum += lse - row[label] as f64;
            self.confusion[label][pred] += 1;
            self.samples += 1;
        }
    }

    /// Samples added so far.
    pub(crate) fn samples(&self) -> usize {
        self.samples
    }

    /// The metrics of the samples added.
    pub(crate) fn metrics(self) -> Metrics {
        let samples = self.samples;
        let classes = self.confusion.len();
        let correct: usize = (0..classes).map(|c| self.confusion[c][c]).sum();
        let per_class_accuracy = self
            .confusion
            .iter()
            .enumerate()
            .map(|(c, row)| {
                let total: usize = row.iter().sum();
                (total > 0).then(|| row[c] as f64 / total as f64)
            })
            .collect();
        Metrics {
            samples,
            accuracy: correct as f64 / samples.max(1) as f64,
            loss: self.loss_sum / samples.max(1) as f64,
            per_class_accuracy,
            confusion: self.confusion,
        }
    }
}

/// The index of the largest value (the first on ties) and `log(sum(exp(row)))`, in `f64`.
fn argmax_logsumexp(row: &[f32]) -> (usize, f64) {
    let mut best = 0;
    for (j, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = j;
        }
    }
    let max = row[best] as f64;
    let sum: f64 = row.iter().map(|v| (*v as f64 - max).exp()).sum();
    (best, max + sum.ln())
}
