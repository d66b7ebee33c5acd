//! 2-D convolutions (`burn::nn::conv::Conv2d`) with any stride, padding (asymmetric
//! included), dilation and groups. The transpose is one `conv_transpose2d` with the output
//! padding that restores the input size (and a crop for asymmetric padding).

use crate::engine::{Hints, LinearLayer, propagate};
use crate::error::Result;
use crate::modifier::ParamMod;
use crate::rule::Rule;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use burn::tensor::module::{conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use xprune_graph::{resolve_padding, window_output_len};

/// Padding `[top, left, bottom, right]` of a convolution for an input of height `h` and width
/// `w`, as Burn's forward pass computes it.
pub(crate) fn conv_padding(conv: &Conv2d, h: usize, w: usize) -> [usize; 4] {
    resolve_padding(&conv.padding, [h, w], conv.kernel_size, conv.stride)
}

impl LinearLayer<4, 4> for Conv2d {
    fn describe(&self) -> String {
        let [o, i, kh, kw] = self.weight.dims();
        format!(
            "conv2d {}->{o} kernel [{kh}, {kw}] stride {:?} dilation {:?} groups {}",
            i * self.groups,
            self.stride,
            self.dilation,
            self.groups
        )
    }

    fn output_dims(&self, [b, c, h, w]: [usize; 4]) -> std::result::Result<[usize; 4], String> {
        let [o, i, kh, kw] = self.weight.dims();
        if c != i * self.groups {
            return Err(format!(
                "input has {c} channels, the convolution expects {} ({i} per group x {} groups)",
                i * self.groups,
                self.groups
            ));
        }
        let p = conv_padding(self, h, w);
        let oh = window_output_len(h, (p[0], p[2]), kh, self.stride[0], self.dilation[0], false);
        let ow = window_output_len(w, (p[1], p[3]), kw, self.stride[1], self.dilation[1], false);
        match (oh, ow) {
            (Some(oh), Some(ow)) => Ok([b, o, oh, ow]),
            _ => Err(format!(
                "kernel [{kh}, {kw}] with padding {p:?} and dilation {:?} does not fit input [{h}, {w}]",
                self.dilation
            )),
        }
    }

    fn has_weight(&self) -> bool {
        true
    }

    fn has_bias(&self) -> bool {
        self.bias.is_some()
    }

    fn forward(&self, x: Tensor<4>, weight: &ParamMod) -> Tensor<4> {
        self.forward_biased(x, weight, &ParamMod::Zero)
    }

    fn forward_biased(&self, x: Tensor<4>, weight: &ParamMod, bias: &ParamMod) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let p = conv_padding(self, h, w);
        let options = ConvOptions::new_with_padding(
            self.stride,
            [(p[0], p[2]), (p[1], p[3])],
            self.dilation,
            self.groups,
        );
        // The kernel adds the bias in place, saving a pass over the output.
        let b = match bias {
            ParamMod::Zero => None,
            m => self.bias.as_ref().map(|b| m.apply(b.val())),
        };
        conv2d(x, weight.apply(self.weight.val()), b, options)
    }

    fn bias(&self, bias: &ParamMod) -> Option<Tensor<4>> {
        self.bias.as_ref().map(|b| {
            let b = bias.apply(b.val());
            let [o] = b.dims();
            b.reshape([1, o, 1, 1])
        })
    }

    fn transpose(&self, s: Tensor<4>, weight: &ParamMod, [_, _, h, w]: [usize; 4]) -> Tensor<4> {
        let [_, _, oh, ow] = s.dims();
        let [_, _, kh, kw] = self.weight.dims();
        let p = conv_padding(self, h, w);
        let weight = weight.apply(self.weight.val());
        // Size of the padded input the windows cover, and what the last window leaves out.
        let rest = |size: usize, begin: usize, end: usize, out: usize, k: usize, d: usize| {
            let covered = (out - 1) * self.stride[d] + self.dilation[d] * (k - 1) + 1;
            size + begin + end - covered
        };
        let rh = rest(h, p[0], p[2], oh, kh, 0);
        let rw = rest(w, p[1], p[3], ow, kw, 1);
        if p[0] == p[2] && p[1] == p[3] {
            let options = ConvTransposeOptions::new(
                self.stride,
                [p[0], p[1]],
                [rh, rw],
                self.dilation,
                self.groups,
            );
            conv_transpose2d(s, weight, None, options)
        } else {
            let options = ConvTransposeOptions::new(
                self.stride,
                [0, 0],
                [rh, rw],
                self.dilation,
                self.groups,
            );
            conv_transpose2d(s, weight, None, options)
                .narrow(2, p[0], h)
                .narrow(3, p[1], w)
        }
    }
}

/// Relevance propagation through Burn's 2-D convolution.
pub trait Conv2dLrp {
    /// The relevance of `input` (`[batch, C, H, W]`) given the relevance of the layer's output,
    /// with `rule`.
    fn relevance(
        &self,
        input: &Tensor<4>,
        relevance_out: Tensor<4>,
        rule: &dyn Rule,
    ) -> Result<Tensor<4>>;
}

impl Conv2dLrp for Conv2d {
    fn relevance(
        &self,
        input: &Tensor<4>,
        relevance_out: Tensor<4>,
        rule: &dyn Rule,
    ) -> Result<Tensor<4>> {
        propagate(self, input, relevance_out, rule, Hints::default())
    }
}
