//! Average pooling (`burn::nn::pool::AvgPool2d`, any padding, `count_include_pad` and ceil
//! mode) and adaptive average pooling (`AdaptiveAvgPool2d`): parameter-free linear maps, so
//! every rule applies (weight modifiers are ignored; Zennit's composites use the norm rule).

use crate::engine::{Hints, LinearLayer, propagate};
use crate::error::Result;
use crate::modifier::ParamMod;
use crate::rule::Rule;
use burn::nn::pool::{AdaptiveAvgPool2d, AvgPool2d};
use burn::tensor::module::{adaptive_avg_pool2d, avg_pool2d, avg_pool2d_backward};
use burn::tensor::ops::{AvgPoolOptions, PadMode};
use burn::tensor::{Tensor, TensorData};
use xprune_graph::{resolve_padding, window_output_len};

fn avg_options(pool: &AvgPool2d, p: [usize; 4]) -> AvgPoolOptions<2> {
    AvgPoolOptions::new(pool.kernel_size)
        .with_stride(pool.stride)
        .with_padding_pairs([(p[0], p[2]), (p[1], p[3])])
        .with_count_include_pad(pool.count_include_pad)
        .with_ceil_mode(pool.ceil_mode)
}

fn avg_padding(pool: &AvgPool2d, h: usize, w: usize) -> [usize; 4] {
    resolve_padding(&pool.padding, [h, w], pool.kernel_size, pool.stride)
}

impl LinearLayer<4, 4> for AvgPool2d {
    fn describe(&self) -> String {
        format!(
            "avg_pool2d kernel {:?} stride {:?}",
            self.kernel_size, self.stride
        )
    }

    fn output_dims(&self, [b, c, h, w]: [usize; 4]) -> std::result::Result<[usize; 4], String> {
        let p = avg_padding(self, h, w);
        let k = self.kernel_size;
        let oh = window_output_len(h, (p[0], p[2]), k[0], self.stride[0], 1, self.ceil_mode);
        let ow = window_output_len(w, (p[1], p[3]), k[1], self.stride[1], 1, self.ceil_mode);
        match (oh, ow) {
            (Some(oh), Some(ow)) => Ok([b, c, oh, ow]),
            _ => Err(format!(
                "window {k:?} with padding {p:?} does not fit input [{h}, {w}]"
            )),
        }
    }

    fn has_weight(&self) -> bool {
        false
    }

    fn has_bias(&self) -> bool {
        false
    }

    fn forward(&self, x: Tensor<4>, _weight: &ParamMod) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        avg_pool2d(x, avg_options(self, avg_padding(self, h, w)))
    }

    fn bias(&self, _bias: &ParamMod) -> Option<Tensor<4>> {
        None
    }

    fn transpose(&self, s: Tensor<4>, _weight: &ParamMod, [b, c, h, w]: [usize; 4]) -> Tensor<4> {
        let p = avg_padding(self, h, w);
        let (k, stride, cip, ceil) = (
            self.kernel_size,
            self.stride,
            self.count_include_pad,
            self.ceil_mode,
        );
        let device = s.device();
        if p[0] == p[2] && p[1] == p[3] {
            let x = Tensor::<4>::empty([b, c, h, w], &device);
            return avg_pool2d_backward(x, s, k, stride, [p[0], p[1]], cip, ceil);
        }
        // Asymmetric padding: Burn pads the input with zeros, pools without padding, divides
        // by the share of real values when padding does not count, and drops a last window
        // that starts in the end padding. The transpose undoes these steps in reverse order.
        let (hp, wp) = (h + p[0] + p[2], w + p[1] + p[3]);
        let bh = window_output_len(hp, (0, 0), k[0], stride[0], 1, ceil)
            .expect("checked by output_dims");
        let bw = window_output_len(wp, (0, 0), k[1], stride[1], 1, ceil)
            .expect("checked by output_dims");
        let [_, _, oh, ow] = s.dims();
        let mut s = s.pad([(0, bh - oh), (0, bw - ow)], PadMode::Constant(0.0));
        if !cip {
            let valid = Tensor::<4>::ones([1, 1, h, w], &device)
                .pad([(p[0], p[2]), (p[1], p[3])], PadMode::Constant(0.0));
            let options = AvgPoolOptions::new(k)
                .with_stride(stride)
                .with_count_include_pad(false)
                .with_ceil_mode(ceil);
            let valid = avg_pool2d(valid, options);
            let empty = valid.clone().equal_elem(0.0);
            s = s / valid.mask_fill(empty, 1.0);
        }
        let x = Tensor::<4>::empty([b, c, hp, wp], &device);
        avg_pool2d_backward(x, s, k, stride, [0, 0], cip, ceil)
            .narrow(2, p[0], h)
            .narrow(3, p[1], w)
    }
}

/// The averaging matrix `[out, size]` of adaptive pooling along one dimension (PyTorch's
/// windows: `floor(i * size / out) .. ceil((i + 1) * size / out)`).
pub(crate) fn adaptive_matrix(size: usize, out: usize) -> Vec<f32> {
    let mut m = vec![0.0f32; out * size];
    for i in 0..out {
        let start = i * size / out;
        let end = ((i + 1) * size).div_ceil(out);
        let len = (end - start) as f32;
        for j in start..end {
            m[i * size + j] = 1.0 / len;
        }
    }
    m
}

impl LinearLayer<4, 4> for AdaptiveAvgPool2d {
    fn describe(&self) -> String {
        format!("adaptive_avg_pool2d to {:?}", self.output_size)
    }

    fn output_dims(&self, [b, c, _, _]: [usize; 4]) -> std::result::Result<[usize; 4], String> {
        let [oh, ow] = self.output_size;
        if oh == 0 || ow == 0 {
            return Err(format!(
                "output size {:?} must be positive",
                self.output_size
            ));
        }
        Ok([b, c, oh, ow])
    }

    fn has_weight(&self) -> bool {
        false
    }

    fn has_bias(&self) -> bool {
        false
    }

    fn forward(&self, x: Tensor<4>, _weight: &ParamMod) -> Tensor<4> {
        adaptive_avg_pool2d(x, self.output_size)
    }

    fn bias(&self, _bias: &ParamMod) -> Option<Tensor<4>> {
        None
    }

    fn transpose(&self, s: Tensor<4>, _weight: &ParamMod, [b, c, h, w]: [usize; 4]) -> Tensor<4> {
        let [oh, ow] = self.output_size;
        if oh == 1 && ow == 1 {
            return s.div_scalar((h * w) as f64).expand([b, c, h, w]);
        }
        let device = s.device();
        let ph = Tensor::<2>::from_data(TensorData::new(adaptive_matrix(h, oh), [oh, h]), &device);
        let pw = Tensor::<2>::from_data(TensorData::new(adaptive_matrix(w, ow), [ow, w]), &device);
        let t = s.reshape([b * c * oh, ow]).matmul(pw); // [b*c*oh, w]
        let t = t
            .reshape([b * c, oh, w])
            .swap_dims(1, 2)
            .reshape([b * c * w, oh]);
        let t = t.matmul(ph); // [b*c*w, h]
        t.reshape([b, c, w, h]).swap_dims(2, 3)
    }
}

/// Relevance propagation through Burn's 2-D average pooling.
pub trait AvgPool2dLrp {
    /// The relevance of `input` given the relevance of the pooling's output, with `rule`
    /// (usually [`crate::Norm`]).
    fn relevance(
        &self,
        input: &Tensor<4>,
        relevance_out: Tensor<4>,
        rule: &dyn Rule,
    ) -> Result<Tensor<4>>;
}

impl AvgPool2dLrp for AvgPool2d {
    fn relevance(
        &self,
        input: &Tensor<4>,
        relevance_out: Tensor<4>,
        rule: &dyn Rule,
    ) -> Result<Tensor<4>> {
        propagate(self, input, relevance_out, rule, Hints::default())
    }
}

/// Relevance propagation through Burn's 2-D adaptive average pooling.
pub trait AdaptiveAvgPool2dLrp {
    /// The relevance of `input` given the relevance of the pooling's output, with `rule`
    /// (usually [`crate::Norm`]).
    fn relevance(
        &self,
        input: &Tensor<4>,
        relevance_out: Tensor<4>,
        rule: &dyn Rule,
    ) -> Result<Tensor<4>>;
}

impl AdaptiveAvgPool2dLrp for AdaptiveAvgPool2d {
    fn relevance(
        &self,
        input: &Tensor<4>,
        relevance_out: Tensor<4>,
        rule: &dyn Rule,
    ) -> Result<Tensor<4>> {
        propagate(self, input, relevance_out, rule, Hints::default())
    }
}
