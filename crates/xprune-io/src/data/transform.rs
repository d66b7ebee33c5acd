//! Transforms of whole data sets.

use super::error::{DataError, Result};
use xprune_graph::Dataset;

/// Normalises every channel: `(x - mean[c]) / std[c]`.
///
/// `mean` and `std` hold one value per channel (per feature for flat samples), or a single
/// value used for all channels. Every `std` must be positive and finite.
pub fn normalize_channels(dataset: &Dataset, mean: &[f32], std: &[f32]) -> Result<Dataset> {
    let shape = dataset.sample_shape();
    let channels = shape.channels();
    let positions = shape.positions();
    for (what, v) in [("mean", mean), ("std", std)] {
        if v.len() != channels && v.len() != 1 {
            return Err(DataError::InvalidArgument(format!(
                "{what} has {} values; samples [{shape}] need {channels} (one per channel) or 1",
                v.len()
            )));
        }
    }
    if let Some(s) = std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(DataError::InvalidArgument(format!(
            "std {s} must be positive and finite"
        )));
    }
    if let Some(m) = mean.iter().find(|m| !m.is_finite()) {
        return Err(DataError::InvalidArgument(format!(
            "mean {m} must be finite"
        )));
    }
    let pick = |v: &[f32], c: usize| if v.len() == 1 { v[0] } else { v[c] };
    let features: Vec<f32> = dataset
        .features()
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let c = (i / positions) % channels;
            (x - pick(mean, c)) / pick(std, c)
        })
        .collect();
    Dataset::new(
        features,
        dataset.labels().to_vec(),
        shape,
        dataset.num_classes(),
    )
    .map_err(|source| DataError::Dataset {
        path: Default::default(),
        source,
    })
}

/// Per-channel mean and standard deviation of a data set's features (population statistics,
/// computed in `f64`).
pub fn channel_stats(dataset: &Dataset) -> (Vec<f32>, Vec<f32>) {
    let shape = dataset.sample_shape();
    let (channels, positions) = (shape.channels(), shape.positions());
    let mut sum = vec![0.0f64; channels];
    let mut sq = vec![0.0f64; channels];
    for (i, x) in dataset.features().iter().enumerate() {
        let c = (i / positions) % channels;
        sum[c] += *x as f64;
        sq[c] += (*x as f64) * (*x as f64);
    }
    let count = (dataset.len() * positions).max(1) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
    let std = sq
        .iter()
        .zip(&mean)
        .map(|(q, m)| ((q / count - m * m).max(0.0)).sqrt() as f32)
        .collect();
    (mean.into_iter().map(|m| m as f32).collect(), std)
}
