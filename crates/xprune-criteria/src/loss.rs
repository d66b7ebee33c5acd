//! Per-sample cross-entropy, the loss every data-driven criterion measures.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// Cross-entropy of every sample: `-log softmax(logits)[label]`, `[batch]`.
pub fn per_sample_cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let [b, _] = logits.dims();
    let logp = log_softmax(logits, 1);
    logp.gather(1, labels.reshape([b, 1])).reshape([b]).neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use xprune_graph::tensor_util::to_vec;

    #[test]
    fn matches_hand_computation() {
        let d = Device::flex();
        let logits = Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], &d);
        let labels = Tensor::<1, Int>::from_ints([2, 0], &d);
        let l = to_vec(&per_sample_cross_entropy(logits, labels));
        let z: f64 = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        assert!((l[0] as f64 - (z - 3.0)).abs() < 1e-5);
        assert!((l[1] as f64 - 3f64.ln()).abs() < 1e-5);
    }
}
