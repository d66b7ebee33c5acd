//! Seeded weight initialisation, independent of the backend, so that a graph built with the
//! same seed has the same weights on every device.

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// A seeded source of initial weights.
#[derive(Debug)]
pub struct Initializer {
    rng: StdRng,
}

impl Initializer {
    /// A new initialiser; the same seed gives the same weights.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// `n` values drawn uniformly from `[-bound, bound)`.
    pub fn uniform(&mut self, n: usize, bound: f32) -> Vec<f32> {
        (0..n)
            .map(|_| (self.rng.random::<f32>() * 2.0 - 1.0) * bound)
            .collect()
    }

    /// A parameter of shape `dims` with He-uniform values for a ReLU layer of `fan_in` inputs:
    /// `U(-sqrt(6 / fan_in), sqrt(6 / fan_in))`.
    pub fn he_uniform<const D: usize>(
        &mut self,
        dims: [usize; D],
        fan_in: usize,
        device: &Device,
    ) -> Param<Tensor<D>> {
        let bound = (6.0 / fan_in.max(1) as f32).sqrt();
        self.param(dims, bound, device)
    }

    /// A bias of `n` values, `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` as in PyTorch.
    pub fn bias(&mut self, n: usize, fan_in: usize, device: &Device) -> Param<Tensor<1>> {
        let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
        self.param([n], bound, device)
    }

    /// A parameter of shape `dims` drawn from `U(-bound, bound)`.
    pub fn param<const D: usize>(
        &mut self,
        dims: [usize; D],
        bound: f32,
        device: &Device,
    ) -> Param<Tensor<D>> {
        let n = dims.iter().product();
        let values = self.uniform(n, bound);
        Param::from_tensor(Tensor::from_data(TensorData::new(values, dims), device))
    }
}
