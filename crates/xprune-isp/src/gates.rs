//! Gumbel-sigmoid channel gates (ISP: temperature 0.4, logits offset 3 so that gates start
//! open), hard at 0.5 with a straight-through estimator.
//!
//! Soft gate: `s = sigmoid((l + offset + log(u) - log(1 - u)) / t)` with `u ~ U(0, 1)`
//! (logistic noise, the difference of two Gumbel variables); without noise (evaluation)
//! `s = sigmoid((l + offset) / t)`. Hard gate: `h = [s > 0.5]`; the value passed on is
//! `s + detach(h - s)`: exactly `h` forward, the gradient of `s` backward.

use crate::{IspError, Result};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// The authors' temperature.
pub const DEFAULT_TEMPERATURE: f32 = 0.4;
/// The authors' logits offset (gates start open).
pub const DEFAULT_OFFSET: f32 = 3.0;

/// Gate settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GateConfig {
    /// Temperature of the sigmoid (> 0).
    pub temperature: f32,
    /// Added to the logits.
    pub offset: f32,
}

impl Default for GateConfig {
    fn default() -> Self {
        Self {
            temperature: DEFAULT_TEMPERATURE,
            offset: DEFAULT_OFFSET,
        }
    }
}

impl GateConfig {
    pub(crate) fn check(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature > 0.0 && self.offset.is_finite()) {
            return Err(IspError(format!(
                "gates need a finite temperature > 0 and a finite offset, got {} and {}",
                self.temperature, self.offset
            )));
        }
        Ok(())
    }

    /// Soft gates of `logits`, with logistic noise drawn from `seed` (training) or none
    /// (`None`: evaluation).
    ///
    /// # Errors
    ///
    /// An invalid configuration.
    pub fn soft<const D: usize>(&self, logits: Tensor<D>, seed: Option<u64>) -> Result<Tensor<D>> {
        self.check()?;
        let shifted = logits.clone().add_scalar(self.offset);
        let noisy = match seed {
            Some(seed) => shifted + logistic_noise(logits.dims(), seed, &logits.device()),
            None => shifted,
        };
        Ok(burn::tensor::activation::sigmoid(
            noisy.div_scalar(self.temperature),
        ))
    }

    /// Hard gates (0 or 1, open where the soft gate exceeds 0.5) whose gradient is the soft
    /// gates' (straight-through).
    ///
    /// # Errors
    ///
    /// An invalid configuration.
    pub fn hard<const D: usize>(&self, logits: Tensor<D>, seed: Option<u64>) -> Result<Tensor<D>> {
        let soft = self.soft(logits, seed)?;
        let hard = soft.clone().greater_elem(0.5).float();
        // `s + detach(h - s)`: exactly `h` forward (`1 - s` is exact for `s` in [0.5, 1], and
        // `s - s` is 0), the gradient of `s` backward.
        Ok(soft.clone() + (hard - soft).detach())
    }
}

/// `log(u) - log(1 - u)` for `u ~ U(0, 1)` (kept away from 0 and 1), from `seed`.
fn logistic_noise<const D: usize>(dims: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
    let n: usize = dims.iter().product();
    let mut rng = StdRng::seed_from_u64(seed);
    let v: Vec<f32> = (0..n)
        .map(|_| {
            let u = rng.random::<f64>().clamp(1e-6, 1.0 - 1e-6);
            (u.ln() - (1.0 - u).ln()) as f32
        })
        .collect();
    Tensor::from_data(TensorData::new(v, dims), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn gates_start_open_and_close_for_low_logits() {
        let device = Device::flex();
        let g = GateConfig::default();
        let logits = Tensor::<1>::from_data(
            TensorData::new(vec![0.0f32, -2.0, -3.5, -6.0], [4]),
            &device,
        );
        let soft = values(g.soft(logits.clone(), None).unwrap());
        // sigmoid((0 + 3) / 0.4) = sigmoid(7.5)
        assert!((soft[0] - 1.0 / (1.0 + (-7.5f32).exp())).abs() < 1e-6);
        assert_eq!(
            values(g.hard(logits, None).unwrap()),
            vec![1.0, 1.0, 0.0, 0.0]
        );
        assert!(
            GateConfig {
                temperature: 0.0,
                offset: 3.0
            }
            .soft(Tensor::<1>::zeros([1], &device), None)
            .is_err()
        );
    }

    #[test]
    fn noise_is_seeded() {
        let device = Device::flex();
        let g = GateConfig::default();
        let l = Tensor::<1>::zeros([64], &device).add_scalar(-3.0);
        let a = values(g.soft(l.clone(), Some(1)).unwrap());
        assert_eq!(a, values(g.soft(l.clone(), Some(1)).unwrap()));
        assert_ne!(a, values(g.soft(l, Some(2)).unwrap()));
        // At logit + offset = 0 the noise decides: some open, some closed.
        let open = a.iter().filter(|v| **v > 0.5).count();
        assert!(open > 10 && open < 54, "{open}");
    }

    #[test]
    fn hard_gates_pass_the_soft_gradient_straight_through() {
        let device = Device::flex().autodiff();
        let g = GateConfig::default();
        let data = TensorData::new(vec![-2.9f32, -3.1, 0.5], [3]);
        let l1 = Tensor::<1>::from_data(data.clone(), &device).require_grad();
        let l2 = Tensor::<1>::from_data(data, &device).require_grad();
        let w = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0], [3]), &device);
        let hard = g.hard(l1.clone(), None).unwrap();
        assert_eq!(values(hard.clone().detach()), vec![1.0, 0.0, 1.0]);
        let gh = (hard * w.clone()).sum().backward();
        let gs = (g.soft(l2.clone(), None).unwrap() * w).sum().backward();
        let a = values(l1.grad(&gh).unwrap());
        let b = values(l2.grad(&gs).unwrap());
        assert_eq!(a, b);
        assert!(a[0] > 0.0);
    }
}
