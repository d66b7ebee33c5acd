//! The losses of the predictor and the selector.

use burn::tensor::Tensor;
use burn::tensor::activation::{log_softmax, softmax};

/// `KL(softmax(target) || softmax(logits))`, averaged over the batch (`[N, K]` logits; the
/// target is not differentiated).
pub fn kl_to_target(target: Tensor<2>, logits: Tensor<2>) -> Tensor<1> {
    let target = target.detach();
    let p = softmax(target.clone(), 1);
    let log_p = log_softmax(target, 1);
    let log_q = log_softmax(logits, 1);
    (p * (log_p - log_q)).sum_dim(1).mean().reshape([1])
}

/// The area term `mean((m + 5e-4)^0.3)` of masks `[N, 1, H, W]` (the offset keeps the
/// gradient finite at 0).
pub fn area(masks: Tensor<4>) -> Tensor<1> {
    masks.add_scalar(5e-4).powf_scalar(0.3).mean().reshape([1])
}

/// The smoothness term of masks `[N, 1, H, W]`: squared differences of neighbouring pixels
/// plus 0.3 times the squared values on the border, summed and divided by `2 N` (the
/// authors' saliency loss, power 2).
pub fn smoothness(masks: Tensor<4>) -> Tensor<1> {
    let [n, _, h, w] = masks.dims();
    let mut total = Tensor::<1>::zeros([1], &masks.device());
    if h > 1 {
        let d = masks.clone().narrow(2, 1, h - 1) - masks.clone().narrow(2, 0, h - 1);
        total = total + d.powi_scalar(2).sum().reshape([1]);
    }
    if w > 1 {
        let d = masks.clone().narrow(3, 1, w - 1) - masks.clone().narrow(3, 0, w - 1);
        total = total + d.powi_scalar(2).sum().reshape([1]);
    }
    let border = masks.clone().narrow(2, 0, 1).powi_scalar(2).sum()
        + masks.clone().narrow(2, h - 1, 1).powi_scalar(2).sum()
        + masks.clone().narrow(3, 0, 1).powi_scalar(2).sum()
        + masks.narrow(3, w - 1, 1).powi_scalar(2).sum();
    (total + border.reshape([1]).mul_scalar(0.3)).div_scalar(2.0 * n.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn vec1(t: Tensor<1>) -> f32 {
        t.into_data().try_to_vec::<f32>().unwrap()[0]
    }

    #[test]
    fn kl_is_zero_for_equal_logits_and_matches_the_formula() {
        let d = Device::flex();
        let a = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 0.5, -1.0], [2, 2]), &d);
        assert!(vec1(kl_to_target(a.clone(), a.clone())).abs() < 1e-7);
        let b = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 0.0, 0.0, 0.0], [2, 2]), &d);
        // Dense: rows p = softmax([1, 2]) and softmax([0.5, -1]) against q = (0.5, 0.5).
        let kl = |x: [f64; 2]| {
            let z = x[0].exp() + x[1].exp();
            let p = [x[0].exp() / z, x[1].exp() / z];
            p[0] * (p[0] / 0.5).ln() + p[1] * (p[1] / 0.5).ln()
        };
        let want = (kl([1.0, 2.0]) + kl([0.5, -1.0])) / 2.0;
        assert!((vec1(kl_to_target(a, b)) as f64 - want).abs() < 1e-6);
    }

    #[test]
    fn area_and_smoothness_match_dense_sums() {
        let d = Device::flex();
        let v: Vec<f32> = (0..12).map(|i| (i as f32 * 0.37).sin().abs()).collect();
        let m = Tensor::<4>::from_data(TensorData::new(v.clone(), [1, 1, 3, 4]), &d);
        let want_area = v.iter().map(|x| (x + 5e-4).powf(0.3)).sum::<f32>() / 12.0;
        assert!((vec1(area(m.clone())) - want_area).abs() < 1e-6);
        let at = |r: usize, c: usize| v[r * 4 + c] as f64;
        let mut s = 0.0;
        for r in 0..3 {
            for c in 0..4 {
                if r + 1 < 3 {
                    s += (at(r + 1, c) - at(r, c)).powi(2);
                }
                if c + 1 < 4 {
                    s += (at(r, c + 1) - at(r, c)).powi(2);
                }
            }
        }
        let mut border = 0.0;
        for c in 0..4 {
            border += at(0, c).powi(2) + at(2, c).powi(2);
        }
        for r in 0..3 {
            border += at(r, 0).powi(2) + at(r, 3).powi(2);
        }
        let want = (s + 0.3 * border) / 2.0;
        assert!((vec1(smoothness(m)) as f64 - want).abs() < 1e-5);
    }
}
