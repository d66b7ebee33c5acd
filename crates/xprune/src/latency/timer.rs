//! What a probe times layers with: the graph's own Burn device ([`DeviceTimer`]) or any other
//! runtime through a runner process ([`RunnerTimer`](super::RunnerTimer)).

use super::{LatencyError, ProbeOptions, Result};
use std::time::Instant;
use xprune_graph::burn::tensor::Device;
use xprune_graph::{Activation, FeatureShape, Graph, Layer};

/// Times layers and whole graphs for [`LatencyModel::probe_with`](super::LatencyModel::probe_with).
///
/// Every time is milliseconds per batch of [`ProbeOptions::batch`] samples; an implementation
/// decides how it samples (the ones here keep the fastest of [`ProbeOptions::reps`] runs
/// after [`ProbeOptions::warmup`]). The probe asks for each distinct layer and input shapes
/// once.
pub trait LayerTimer {
    /// What the times are measured on, stored in the model
    /// ([`LatencyModel::device`](super::LatencyModel::device)) and compared when a cached
    /// model is reused.
    fn device(&self) -> String;

    /// The time of `layer` (the layer of node `node`) run alone on inputs of `shapes`.
    fn time_layer(&mut self, node: &str, layer: &Layer, shapes: &[FeatureShape]) -> Result<f64>;

    /// The time of a whole forward pass of `graph`.
    fn time_graph(&mut self, graph: &Graph) -> Result<f64>;
}

/// Times layers on a Burn device, on seeded random inputs, the device synchronised around
/// each run; keeps the fastest of [`ProbeOptions::reps`] runs after [`ProbeOptions::warmup`].
#[derive(Debug)]
pub struct DeviceTimer {
    device: Device,
    batch: usize,
    warmup: usize,
    reps: usize,
    state: u64,
}

impl DeviceTimer {
    /// A timer on `device` with the batch, repetitions and seed of `options`.
    pub fn new(device: Device, options: &ProbeOptions) -> Self {
        Self {
            device,
            batch: options.batch,
            warmup: options.warmup,
            reps: options.reps.max(1),
            state: options.seed ^ 0x9e37_79b9_7f4a_7c15,
        }
    }

    fn random(&mut self, shape: FeatureShape) -> Result<Activation> {
        let n = shape.numel() * self.batch;
        let values: Vec<f32> = (0..n)
            .map(|_| {
                self.state = self
                    .state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (self.state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        Activation::from_vec_in(values, self.batch, shape, &self.device).ok_or_else(|| {
            LatencyError::Config(format!("cannot build an input of shape [{shape}]"))
        })
    }

    fn sync(&self, node: &str) -> Result<()> {
        self.device.sync().map_err(|e| LatencyError::Run {
            node: node.to_string(),
            message: format!("device synchronisation failed: {e:?}"),
        })
    }

    /// The fastest of `reps` timed calls of `run` after `warmup` untimed ones.
    fn fastest(&self, node: &str, mut run: impl FnMut() -> Result<()>) -> Result<f64> {
        for _ in 0..self.warmup {
            run()?;
            self.sync(node)?;
        }
        let mut best = f64::INFINITY;
        for _ in 0..self.reps {
            self.sync(node)?;
            let t = Instant::now();
            run()?;
            self.sync(node)?;
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
        }
        Ok(best)
    }
}

impl LayerTimer for DeviceTimer {
    fn device(&self) -> String {
        format!("{:?}", self.device)
    }

    fn time_layer(&mut self, node: &str, layer: &Layer, shapes: &[FeatureShape]) -> Result<f64> {
        let inputs = shapes
            .iter()
            .map(|&s| self.random(s))
            .collect::<Result<Vec<_>>>()?;
        self.fastest(node, || {
            layer
                .forward(inputs.clone(), false)
                .map(drop)
                .map_err(|message| LatencyError::Run {
                    node: node.to_string(),
                    message,
                })
        })
    }

    fn time_graph(&mut self, graph: &Graph) -> Result<f64> {
        let x = self.random(graph.input_shape())?;
        self.fastest("(whole graph)", || {
            graph.forward(x.clone()).map(drop).map_err(Into::into)
        })
    }
}
