//! Burn's training stack for a [`Graph`]: the step traits of `burn-train`, so that a graph
//! trains in Burn's `Learner` and `SupervisedTraining` like any `#[derive(Module)]` model, and
//! the `burn-dataset` view of a [`Dataset`] with the batcher that stacks its samples.
//!
//! ```
//! use burn::data::dataloader::DataLoaderBuilder;
//! use burn::tensor::Device;
//! use burn_train::TrainStep;
//! use xprune_graph::{Dataset, FeatureShape, GraphBuilder, SampleBatcher};
//!
//! # fn main() -> Result<(), xprune_graph::GraphError> {
//! let device = Device::flex().autodiff();
//! let mut b = GraphBuilder::new(FeatureShape::flat(2), &device).seed(1);
//! let input = b.input();
//! let out = b.linear("fc", input, 2)?;
//! let graph = b.build(out)?;
//! let data = Dataset::new(vec![0.0, 1.0, 1.0, 0.0], vec![0, 1], FeatureShape::flat(2), 2)?;
//! let loader = DataLoaderBuilder::new(SampleBatcher::new(data.sample_shape()))
//!     .batch_size(2)
//!     .set_device(device.clone())
//!     .build(data);
//! let batch = loader.iter().next().expect("one batch").expect("no error");
//! let output = TrainStep::step(&graph, batch);
//! assert_eq!(output.item.output.dims(), [2, 2]);
//! # Ok(())
//! # }
//! ```

use crate::activation::Activation;
use crate::data::{Batch, Dataset};
use crate::error::{GraphError, Result};
use crate::forward::Mode;
use crate::graph::Graph;
use crate::shape::{FeatureShape, MAX_SAMPLE_VALUES};
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{BatchDataLoader, BatchStrategy, DataLoader};
use burn::data::dataset::DatasetError;
use burn::data::dataset::transform::ShuffledDataset;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::Device;
use burn_train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use std::sync::Arc;

/// The most values [`Dataset::from_burn`] collects (4 Gi `f32`, 16 GiB).
pub const MAX_DATASET_VALUES: usize = 1 << 32;

/// One labelled sample, the item of a [`Dataset`] seen as a `burn-dataset` dataset: its
/// values in row-major order of the sample shape and its class.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The sample's values (as many as its shape holds).
    pub features: Vec<f32>,
    /// The class, in `0..num_classes`.
    pub label: usize,
}

impl burn::data::dataset::Dataset<Sample> for Dataset {
    fn get(&self, index: usize) -> std::result::Result<Sample, DatasetError> {
        if index >= Dataset::len(self) {
            return Err(DatasetError::new(GraphError::Data(format!(
                "no sample {index} in a dataset of {}",
                Dataset::len(self)
            ))));
        }
        Ok(Sample {
            features: self.sample(index).to_vec(),
            label: self.labels()[index] as usize,
        })
    }

    fn len(&self) -> usize {
        Dataset::len(self)
    }
}

impl Dataset {
    /// Collects the items of a `burn-dataset` dataset, turned into [`Sample`]s by
    /// `to_sample`, into a dataset of `sample_shape` and `num_classes` (the checks of
    /// [`Dataset::new`] apply).
    ///
    /// This is how your own `burn-dataset` data (an `InMemDataset`, a mapped or
    /// partial dataset, a vision folder) becomes reference or evaluation data:
    ///
    /// ```
    /// use burn::data::dataset::InMemDataset;
    /// use xprune_graph::{Dataset, FeatureShape, Sample};
    ///
    /// let items = InMemDataset::new(vec![([0.5f32, 1.0], 1u8), ([0.0, 0.2], 0)]);
    /// let data = Dataset::from_burn(&items, FeatureShape::flat(2), 2, |(x, y)| Sample {
    ///     features: x.to_vec(),
    ///     label: y as usize,
    /// })?;
    /// assert_eq!(data.labels(), &[1, 0]);
    /// # Ok::<(), xprune_graph::GraphError>(())
    /// ```
    ///
    /// Errors: a sample with another number of values than `sample_shape` holds (naming its
    /// index), more than [`MAX_DATASET_VALUES`]
    /// values in all, an item the source fails to give, and the errors of [`Dataset::new`] (labels out of range, values that
    /// are not finite).
    pub fn from_burn<I, E>(
        source: &impl burn::data::dataset::Dataset<I, E>,
        sample_shape: FeatureShape,
        num_classes: usize,
        mut to_sample: impl FnMut(I) -> Sample,
    ) -> Result<Self>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let per = sample_shape.numel();
        if per == 0 || per > MAX_SAMPLE_VALUES {
            return Err(GraphError::Data(format!(
                "sample shape [{sample_shape}] must hold 1 to {MAX_SAMPLE_VALUES} values"
            )));
        }
        let n = source.len();
        let total = n
            .checked_mul(per)
            .filter(|t| *t <= MAX_DATASET_VALUES)
            .ok_or_else(|| {
                GraphError::Data(format!(
                    "{n} samples of [{sample_shape}] exceed {MAX_DATASET_VALUES} values"
                ))
            })?;
        let mut features = Vec::with_capacity(total);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let item = source
                .get(i)
                .map_err(|e| GraphError::Data(format!("item {i} of {n}: {e}")))?;
            let sample = to_sample(item);
            if sample.features.len() != per {
                return Err(GraphError::Data(format!(
                    "sample {i} has {} values, the shape [{sample_shape}] holds {per}",
                    sample.features.len()
                )));
            }
            features.extend_from_slice(&sample.features);
            labels.push(i64::try_from(sample.label).unwrap_or(i64::MAX));
        }
        Dataset::new(features, labels, sample_shape, num_classes)
    }
}

/// Stacks [`Sample`]s of one sample shape into a [`Batch`] on a device: the batcher of
/// `DataLoaderBuilder` for a [`Dataset`] (or any `burn-dataset` dataset of [`Sample`]s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleBatcher {
    shape: FeatureShape,
}

impl SampleBatcher {
    /// A batcher for samples of `shape` (a [`Dataset`]'s
    /// [`sample_shape`](Dataset::sample_shape)).
    pub fn new(shape: FeatureShape) -> Self {
        Self { shape }
    }
}

impl Batcher<Sample, Batch> for SampleBatcher {
    /// # Panics
    ///
    /// On an empty list or a sample whose number of values is not the shape's: the batcher
    /// trait cannot return an error. A [`Dataset`] is checked when it is made, so its
    /// samples always fit; check other sources first, or collect them with
    /// [`Dataset::from_burn`].
    fn batch(&self, items: Vec<Sample>, device: &Device) -> Batch {
        let per = self.shape.numel();
        assert!(!items.is_empty(), "a batch needs at least one sample");
        let mut values = Vec::with_capacity(items.len() * per);
        let mut labels = Vec::with_capacity(items.len());
        for (i, s) in items.iter().enumerate() {
            assert_eq!(
                s.features.len(),
                per,
                "sample {i} of the batch has {} values, the shape [{}] holds {per}",
                s.features.len(),
                self.shape
            );
            values.extend_from_slice(&s.features);
            labels.push(s.label as i64);
        }
        Batch::on_device(values, labels, self.shape, device)
    }
}

/// `burn`'s batch strategy for a fixed batch size whose last, smaller batch of an epoch is
/// kept or dropped (`DataLoaderBuilder`'s fixed strategy always keeps it).
pub struct Batches {
    items: Vec<Sample>,
    size: usize,
    drop_last: bool,
}

impl Batches {
    /// Batches of `size` samples, dropping a smaller last batch with `drop_last`.
    pub fn new(size: usize, drop_last: bool) -> Self {
        Self {
            items: Vec::with_capacity(size),
            size,
            drop_last,
        }
    }
}

impl BatchStrategy<Sample> for Batches {
    fn add(&mut self, item: Sample) {
        self.items.push(item);
    }

    fn batch(&mut self, force: bool) -> Option<Vec<Sample>> {
        if self.items.len() >= self.size {
            let rest = self.items.split_off(self.size);
            return Some(std::mem::replace(&mut self.items, rest));
        }
        if !force || self.items.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.items);
        (!self.drop_last).then_some(rest)
    }

    fn clone_dyn(&self) -> Box<dyn BatchStrategy<Sample>> {
        Box::new(Self::new(self.size, self.drop_last))
    }

    fn batch_size(&self) -> Option<usize> {
        Some(self.size)
    }
}

/// A `burn` data loader of `data` in batches of `size` on `device` (the smaller last batch
/// dropped with `drop_last`), in the order drawn from the seed `order` (burn-dataset's
/// [`ShuffledDataset`]) or in dataset order.
pub fn data_loader(
    data: &Arc<Dataset>,
    size: usize,
    drop_last: bool,
    order: Option<u64>,
    device: &Device,
) -> Arc<dyn DataLoader<Batch>> {
    let dataset: Arc<dyn burn::data::dataset::Dataset<Sample>> = match order {
        Some(seed) => Arc::new(ShuffledDataset::new(data.clone(), seed)),
        None => data.clone(),
    };
    Arc::new(BatchDataLoader::new(
        Box::new(Batches::new(size, drop_last)),
        dataset,
        Arc::new(SampleBatcher::new(data.sample_shape())),
        device.clone(),
        None,
    ))
}

impl Graph {
    /// Reshapes a batch for the graph's input: samples of any shape are flattened for a flat
    /// input with as many values; other inputs are returned as they are.
    pub fn fit_input(&self, inputs: Activation) -> Activation {
        match (self.input_shape(), &inputs) {
            (FeatureShape::Flat(_), Activation::Spatial(_)) => Activation::Flat(inputs.flatten()),
            _ => inputs,
        }
    }

    /// The logits `[batch, outputs]` of a batch and their mean cross-entropy against its
    /// labels, in `mode` (training mode for a training step), as `burn-train`'s
    /// [`ClassificationOutput`] (so that its accuracy, loss and other classification metrics
    /// apply).
    pub fn classify(&self, batch: Batch, mode: Mode) -> Result<ClassificationOutput> {
        let input = self.fit_input(batch.inputs);
        let output = self
            .run(input)
            .mode(mode)
            .execute()?
            .into_output()
            .flatten();
        let loss = CrossEntropyLossConfig::new()
            .init(&output.device())
            .forward(output.clone(), batch.labels.clone());
        Ok(ClassificationOutput::new(loss, output, batch.labels))
    }
}

/// A training step of `burn-train`: the cross-entropy of the batch in training mode
/// ([`Graph::classify`]) and its gradients.
///
/// # Panics
///
/// When the batch does not fit the graph's input (the trait cannot return an error; xprune's
/// own trainer checks the data before it starts).
impl TrainStep for Graph {
    type Input = Batch;
    type Output = ClassificationOutput;

    fn step(&self, batch: Batch) -> TrainOutput<ClassificationOutput> {
        let output = self
            .classify(batch, Mode::Train)
            .unwrap_or_else(|e| panic!("training step of the graph: {e}"));
        let grads = output.loss.backward();
        TrainOutput::new(self, grads, output)
    }
}

/// A validation step of `burn-train`: [`Graph::classify`] in inference mode.
///
/// # Panics
///
/// When the batch does not fit the graph's input.
impl InferenceStep for Graph {
    type Input = Batch;
    type Output = ClassificationOutput;

    fn step(&self, batch: Batch) -> ClassificationOutput {
        self.classify(batch, Mode::Eval)
            .unwrap_or_else(|e| panic!("validation step of the graph: {e}"))
    }
}
