//! The MAC budget loss of ISP: `w * ln(max(r, p) / p)`, where `r` is the fraction of MACs the
//! gated model keeps and `p` the target. Zero (and without gradient) once the budget is met;
//! above it, it grows with the log of the excess.

use crate::{IspError, Result};
use burn::tensor::Tensor;

/// The budget loss of a kept-MAC fraction `r` (a one-element tensor, differentiable) for the
/// target `p` in `(0, 1]` and weight `w >= 0`.
///
/// # Errors
///
/// When `p` or `w` is out of range.
pub fn budget_loss(r: Tensor<1>, p: f32, w: f32) -> Result<Tensor<1>> {
    if !(p > 0.0 && p <= 1.0 && w.is_finite() && w >= 0.0) {
        return Err(IspError(format!(
            "the budget loss needs a target in (0, 1] and a weight >= 0, got {p} and {w}"
        )));
    }
    Ok(r.clamp_min(p).div_scalar(p).log().mul_scalar(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn the_loss_is_zero_within_budget_and_logarithmic_above() {
        let device = Device::flex().autodiff();
        let at = |r: f32| {
            let t = Tensor::<1>::from_data(TensorData::new(vec![r], [1]), &device).require_grad();
            let loss = budget_loss(t.clone(), 0.5, 2.0).unwrap();
            let v = loss.clone().into_data().try_to_vec::<f32>().unwrap()[0];
            let g = t
                .grad(&loss.backward())
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()[0];
            (v, g)
        };
        assert_eq!(at(0.3), (0.0, 0.0));
        let (v, g) = at(0.8);
        assert!((v - 2.0 * (0.8f32 / 0.5).ln()).abs() < 1e-6);
        assert!((g - 2.0 / 0.8).abs() < 1e-5, "{g}");
        let r = Tensor::<1>::zeros([1], &Device::flex());
        assert!(budget_loss(r.clone(), 0.0, 1.0).is_err());
        assert!(budget_loss(r, 0.5, -1.0).is_err());
    }
}
