//! RBF saliency masks: `m(x, y) = exp(-((x - cx)^2 + (y - cy)^2) / (2 sigma^2))` divided by
//! its maximum over the image, so that every mask reaches 1 (at the pixel nearest its centre)
//! even when the centre lies between pixels or near a border.

use crate::{IspError, Result};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Masks `[N, 1, H, W]` for centres `[N, 2]` (`x` = column, `y` = row, in pixels) and widths
/// `[N]` (in pixels), differentiable in both.
///
/// # Errors
///
/// When the shapes disagree or the image is empty.
pub fn rbf_masks(
    centres: Tensor<2>,
    sigmas: Tensor<1>,
    height: usize,
    width: usize,
) -> Result<Tensor<4>> {
    let [n, two] = centres.dims();
    if two != 2 || sigmas.dims()[0] != n || height == 0 || width == 0 {
        return Err(IspError(format!(
            "rbf masks need centres [N, 2] and sigmas [N] for a non-empty image, got centres \
             {:?}, sigmas {:?}, image {height} x {width}",
            centres.dims(),
            sigmas.dims()
        )));
    }
    let device = centres.device();
    let cols: Vec<f32> = (0..width).map(|x| x as f32).collect();
    let rows: Vec<f32> = (0..height).map(|y| y as f32).collect();
    let xs = Tensor::<1>::from_data(TensorData::new(cols, [width]), &device).reshape([1, 1, width]);
    let ys =
        Tensor::<1>::from_data(TensorData::new(rows, [height]), &device).reshape([1, height, 1]);
    let cx = centres.clone().narrow(1, 0, 1).reshape([n, 1, 1]);
    let cy = centres.narrow(1, 1, 1).reshape([n, 1, 1]);
    let dx = xs - cx;
    let dy = ys - cy;
    let d2 = dx.clone() * dx + dy.clone() * dy; // [N, H, W]
    let s2 = sigmas.reshape([n, 1, 1]);
    let g = (d2.neg() / (s2.clone() * s2 * 2.0)).exp();
    let max = g.clone().max_dim(1).max_dim(2); // [N, 1, 1]
    Ok((g / max).reshape([n, 1, height, width]))
}

/// Random mask parameters for the predictor's training: centres uniform over the image,
/// widths uniform in `[sigma_min, sigma_max]`, from `seed`.
///
/// # Errors
///
/// When the range is empty, not positive or not finite.
pub fn random_parameters(
    n: usize,
    height: usize,
    width: usize,
    sigma: (f32, f32),
    seed: u64,
    device: &Device,
) -> Result<(Tensor<2>, Tensor<1>)> {
    let (lo, hi) = sigma;
    if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
        return Err(IspError(format!(
            "the sigma range must be finite with 0 < min <= max, got [{lo}, {hi}]"
        )));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut centres = Vec::with_capacity(2 * n);
    let mut sigmas = Vec::with_capacity(n);
    for _ in 0..n {
        centres.push(rng.random::<f32>() * (width as f32 - 1.0).max(0.0));
        centres.push(rng.random::<f32>() * (height as f32 - 1.0).max(0.0));
        sigmas.push(lo + rng.random::<f32>() * (hi - lo));
    }
    Ok((
        Tensor::from_data(TensorData::new(centres, [n, 2]), device),
        Tensor::from_data(TensorData::new(sigmas, [n]), device),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_match_the_dense_formula_and_peak_at_one() {
        let device = Device::flex();
        let centres = Tensor::<2>::from_data(
            TensorData::new(vec![2.3f32, 1.6, 0.0, 4.0], [2, 2]),
            &device,
        );
        let sigmas = Tensor::<1>::from_data(TensorData::new(vec![1.5f32, 3.0], [2]), &device);
        let m = rbf_masks(centres, sigmas, 5, 6).unwrap();
        assert_eq!(m.dims(), [2, 1, 5, 6]);
        let v = m.into_data().try_to_vec::<f32>().unwrap();
        for (i, (cx, cy, s)) in [(2.3f64, 1.6f64, 1.5f64), (0.0, 4.0, 3.0)]
            .into_iter()
            .enumerate()
        {
            let g = |x: f64, y: f64| (-((x - cx).powi(2) + (y - cy).powi(2)) / (2.0 * s * s)).exp();
            let max = (0..5)
                .flat_map(|y| (0..6).map(move |x| (x, y)))
                .map(|(x, y)| g(x as f64, y as f64))
                .fold(0.0, f64::max);
            for y in 0..5 {
                for x in 0..6 {
                    let want = g(x as f64, y as f64) / max;
                    let got = v[i * 30 + y * 6 + x] as f64;
                    assert!(
                        (got - want).abs() < 1e-6,
                        "mask {i} at ({x}, {y}): {got} vs {want}"
                    );
                }
            }
            let peak = v[i * 30..(i + 1) * 30]
                .iter()
                .cloned()
                .fold(0.0f32, f32::max);
            assert!((peak - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn masks_are_differentiable_in_their_parameters() {
        let device = Device::flex().autodiff();
        let centres = Tensor::<2>::from_data(TensorData::new(vec![2.0f32, 2.0], [1, 2]), &device)
            .require_grad();
        let sigmas =
            Tensor::<1>::from_data(TensorData::new(vec![1.0f32], [1]), &device).require_grad();
        let m = rbf_masks(centres.clone(), sigmas.clone(), 5, 5).unwrap();
        let grads = m.sum().backward();
        // A wider mask covers more: the sum grows with sigma.
        let ds = sigmas
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()[0];
        assert!(ds > 0.0, "{ds}");
        assert!(centres.grad(&grads).is_some());
    }

    #[test]
    fn random_parameters_are_seeded_and_in_range() {
        let device = Device::flex();
        let (c1, s1) = random_parameters(16, 32, 32, (5.0, 11.0), 7, &device).unwrap();
        let (c2, s2) = random_parameters(16, 32, 32, (5.0, 11.0), 7, &device).unwrap();
        let c = c1.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(c, c2.into_data().try_to_vec::<f32>().unwrap());
        let s = s1.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(s, s2.into_data().try_to_vec::<f32>().unwrap());
        assert!(c.iter().all(|v| (0.0..=31.0).contains(v)));
        assert!(s.iter().all(|v| (5.0..=11.0).contains(v)));
        assert!(random_parameters(1, 8, 8, (3.0, 2.0), 0, &device).is_err());
        assert!(random_parameters(1, 8, 8, (0.0, 2.0), 0, &device).is_err());
    }
}
