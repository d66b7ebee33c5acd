//! [`Dataset`]: labelled samples on the host, cut into device batches.

use crate::activation::Activation;
use crate::error::{GraphError, Result};
use crate::shape::FeatureShape;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// A batch on a device: inputs and integer class labels.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Inputs, `[batch, ...sample shape]`.
    pub inputs: Activation,
    /// Class labels, `[batch]`.
    pub labels: Tensor<1, Int>,
}

impl Batch {
    /// The batch of `labels.len()` samples of `shape` whose values are `values` (row-major,
    /// one sample after the other; the caller has checked the sizes).
    pub(crate) fn on_device(
        values: Vec<f32>,
        labels: Vec<i64>,
        shape: FeatureShape,
        device: &Device,
    ) -> Self {
        let n = labels.len();
        let inputs =
            Activation::from_vec(values, &shape.batch_dims(n), device).expect("sizes checked");
        let labels = Tensor::from_data(TensorData::new(labels, [n]), device);
        Batch { inputs, labels }
    }
}

/// Labelled samples held on the host as `f32` features (row-major, one sample after the other)
/// and `i64` class labels in `0..num_classes`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    features: Vec<f32>,
    labels: Vec<i64>,
    sample_shape: FeatureShape,
    num_classes: usize,
}

impl Dataset {
    /// A dataset; checks that `features` holds `labels.len()` samples of `sample_shape` and
    /// that every label is in `0..num_classes`.
    pub fn new(
        features: Vec<f32>,
        labels: Vec<i64>,
        sample_shape: FeatureShape,
        num_classes: usize,
    ) -> Result<Self> {
        let per = sample_shape.numel();
        if per == 0 {
            return Err(GraphError::Data(format!(
                "sample shape [{sample_shape}] has no values"
            )));
        }
        if features.len() != labels.len() * per {
            return Err(GraphError::Data(format!(
                "{} feature values do not make {} samples of shape [{sample_shape}] ({} values)",
                features.len(),
                labels.len(),
                labels.len() * per
            )));
        }
        if let Some((i, l)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| **l < 0 || **l as usize >= num_classes)
        {
            return Err(GraphError::Data(format!(
                "label {l} of sample {i} is outside 0..{num_classes}"
            )));
        }
        if let Some(i) = features.iter().position(|v| !v.is_finite()) {
            return Err(GraphError::Data(format!(
                "feature value {} of sample {} is not finite",
                features[i],
                i / per
            )));
        }
        Ok(Self {
            features,
            labels,
            sample_shape,
            num_classes,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Shape of one sample.
    pub fn sample_shape(&self) -> FeatureShape {
        self.sample_shape
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// All labels.
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }

    /// All features, sample after sample.
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// The features of sample `i`.
    pub fn sample(&self, i: usize) -> &[f32] {
        let per = self.sample_shape.numel();
        &self.features[i * per..(i + 1) * per]
    }

    /// Number of samples of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for l in &self.labels {
            counts[*l as usize] += 1;
        }
        counts
    }

    /// The samples at `indices`, in that order (indices may repeat).
    pub fn subset(&self, indices: &[usize]) -> Result<Self> {
        if let Some(i) = indices.iter().find(|i| **i >= self.len()) {
            return Err(GraphError::Data(format!(
                "sample index {i} is outside 0..{}",
                self.len()
            )));
        }
        let per = self.sample_shape.numel();
        let mut features = Vec::with_capacity(indices.len() * per);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            features.extend_from_slice(self.sample(i));
            labels.push(self.labels[i]);
        }
        Ok(Self {
            features,
            labels,
            sample_shape: self.sample_shape,
            num_classes: self.num_classes,
        })
    }

    /// A seeded random split into `(first, second)` with `round(fraction * len)` samples in
    /// the first part.
    pub fn split(&self, fraction: f64, seed: u64) -> Result<(Self, Self)> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(GraphError::Data(format!(
                "split fraction {fraction} is outside [0, 1]"
            )));
        }
        let mut idx: Vec<usize> = (0..self.len()).collect();
        idx.shuffle(&mut StdRng::seed_from_u64(seed));
        let k = (fraction * self.len() as f64).round() as usize;
        Ok((self.subset(&idx[..k])?, self.subset(&idx[k..])?))
    }

    /// Up to `per_class` samples of every class, chosen at random with `seed`, grouped by
    /// class. Classes with fewer samples contribute all they have.
    pub fn per_class(&self, per_class: usize, seed: u64) -> Result<Self> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut chosen = Vec::new();
        for c in 0..self.num_classes {
            let mut idx: Vec<usize> = (0..self.len())
                .filter(|&i| self.labels[i] as usize == c)
                .collect();
            idx.shuffle(&mut rng);
            idx.truncate(per_class);
            chosen.extend(idx);
        }
        self.subset(&chosen)
    }

    /// The samples whose label is in `classes`, relabelled `0..classes.len()` in that order.
    pub fn select_classes(&self, classes: &[usize]) -> Result<Self> {
        if let Some(c) = classes.iter().find(|c| **c >= self.num_classes) {
            return Err(GraphError::Data(format!(
                "class {c} is outside 0..{}",
                self.num_classes
            )));
        }
        let idx: Vec<usize> = (0..self.len())
            .filter(|&i| classes.contains(&(self.labels[i] as usize)))
            .collect();
        let mut sub = self.subset(&idx)?;
        for l in sub.labels.iter_mut() {
            *l = classes
                .iter()
                .position(|c| *c as i64 == *l)
                .expect("selected") as i64;
        }
        sub.num_classes = classes.len();
        Ok(sub)
    }

    /// The samples `indices` as a device batch.
    pub fn batch(&self, indices: &[usize], device: &Device) -> Result<Batch> {
        if indices.is_empty() {
            return Err(GraphError::Data("a batch needs at least one sample".into()));
        }
        let sub = self.subset(indices)?;
        Ok(Batch::on_device(
            sub.features,
            sub.labels,
            self.sample_shape,
            device,
        ))
    }

    /// The whole dataset as one device batch.
    pub fn to_batch(&self, device: &Device) -> Result<Batch> {
        let all: Vec<usize> = (0..self.len()).collect();
        self.batch(&all, device)
    }

    /// Index lists of consecutive batches of at most `batch_size` samples, in order.
    pub fn batch_indices(&self, batch_size: usize) -> Vec<Vec<usize>> {
        let all: Vec<usize> = (0..self.len()).collect();
        all.chunks(batch_size.max(1)).map(|c| c.to_vec()).collect()
    }

    /// Index lists of batches of at most `batch_size` samples in a seeded random order.
    pub fn shuffled_batch_indices(&self, batch_size: usize, seed: u64) -> Vec<Vec<usize>> {
        let mut all: Vec<usize> = (0..self.len()).collect();
        all.shuffle(&mut StdRng::seed_from_u64(seed));
        all.chunks(batch_size.max(1)).map(|c| c.to_vec()).collect()
    }

    /// Consecutive device batches of at most `batch_size` samples.
    pub fn batches<'a>(
        &'a self,
        batch_size: usize,
        device: &'a Device,
    ) -> impl Iterator<Item = Batch> + 'a {
        self.batch_indices(batch_size)
            .into_iter()
            .map(move |idx| self.batch(&idx, device).expect("indices are in range"))
    }

    /// Concatenates two datasets of the same sample shape and class count.
    pub fn concat(&self, other: &Self) -> Result<Self> {
        if self.sample_shape != other.sample_shape || self.num_classes != other.num_classes {
            return Err(GraphError::Data(format!(
                "cannot concatenate samples [{}] x {} classes with [{}] x {} classes",
                self.sample_shape, self.num_classes, other.sample_shape, other.num_classes
            )));
        }
        let mut features = self.features.clone();
        features.extend_from_slice(&other.features);
        let mut labels = self.labels.clone();
        labels.extend_from_slice(&other.labels);
        Ok(Self {
            features,
            labels,
            sample_shape: self.sample_shape,
            num_classes: self.num_classes,
        })
    }
}
