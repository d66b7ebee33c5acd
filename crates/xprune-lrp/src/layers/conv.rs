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
        let b = match bias {
            ParamMod::Zero => None,
            m => self.bias.as_ref().map(|b| m.apply(b.val())),
        };
        conv_forward(self, x, weight.apply(self.weight.val()), b)
    }

    fn bias(&self, bias: &ParamMod) -> Option<Tensor<4>> {
        self.bias.as_ref().map(|b| {
            let b = bias.apply(b.val());
            let [o] = b.dims();
            b.reshape([1, o, 1, 1])
        })
    }

    fn transpose(&self, s: Tensor<4>, weight: &ParamMod, input: [usize; 4]) -> Tensor<4> {
        conv_transpose(self, s, weight.apply(self.weight.val()), input)
    }
}

/// The convolution of `conv` on `x` with the given weight and bias (the kernel adds the bias in
/// place, saving a pass over the output).
fn conv_forward(
    conv: &Conv2d,
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let p = conv_padding(conv, h, w);
    let options = ConvOptions::new_with_padding(
        conv.stride,
        [(p[0], p[2]), (p[1], p[3])],
        conv.dilation,
        conv.groups,
    );
    conv2d(x, weight, bias, options)
}

/// The transpose of `conv`'s linear map with the given weight, applied to `s`, for an input of
/// dimensions `[_, _, h, w]`.
fn conv_transpose(
    conv: &Conv2d,
    s: Tensor<4>,
    weight: Tensor<4>,
    [_, _, h, w]: [usize; 4],
) -> Tensor<4> {
    let [_, _, oh, ow] = s.dims();
    let [_, _, kh, kw] = conv.weight.dims();
    let p = conv_padding(conv, h, w);
    // Size of the padded input the windows cover, and what the last window leaves out.
    let rest = |size: usize, begin: usize, end: usize, out: usize, k: usize, d: usize| {
        let covered = (out - 1) * conv.stride[d] + conv.dilation[d] * (k - 1) + 1;
        size + begin + end - covered
    };
    let rh = rest(h, p[0], p[2], oh, kh, 0);
    let rw = rest(w, p[1], p[3], ow, kw, 1);
    if p[0] == p[2] && p[1] == p[3] {
        let options = ConvTransposeOptions::new(
            conv.stride,
            [p[0], p[1]],
            [rh, rw],
            conv.dilation,
            conv.groups,
        );
        conv_transpose2d(s, weight, None, options)
    } else {
        let options =
            ConvTransposeOptions::new(conv.stride, [0, 0], [rh, rw], conv.dilation, conv.groups);
        conv_transpose2d(s, weight, None, options)
            .narrow(2, p[0], h)
            .narrow(3, p[1], w)
    }
}

/// A key for caching a modified parameter: `None` for modifiers that must be computed on every
/// use (custom functions, whose names need not be unique) or that need no tensor (identity,
/// zero).
fn cache_key(m: &ParamMod) -> Option<String> {
    match m {
        ParamMod::Custom(_) | ParamMod::Zero => None,
        m if m.is_identity() => None,
        m => Some(format!("{m:?}")),
    }
}

/// The modified weights and biases of one convolution that a rule needs, computed once (the
/// attributor keeps them between calls: the graph's parameters do not change).
#[derive(Clone, Debug, Default)]
pub(crate) struct ConvParamCache {
    weights: Vec<(String, Tensor<4>)>,
    biases: Vec<(String, Tensor<1>)>,
}

impl ConvParamCache {
    /// Computes the modified weights and biases of `conv` for the given modifiers.
    pub(crate) fn new<'a>(
        conv: &Conv2d,
        weight_mods: impl IntoIterator<Item = &'a ParamMod>,
        bias_mods: impl IntoIterator<Item = &'a ParamMod>,
    ) -> Self {
        let mut cache = Self::default();
        for m in weight_mods {
            if let Some(k) = cache_key(m)
                && !cache.weights.iter().any(|(key, _)| *key == k)
            {
                cache.weights.push((k, m.apply(conv.weight.val())));
            }
        }
        if let Some(b) = &conv.bias {
            for m in bias_mods {
                if let Some(k) = cache_key(m)
                    && !cache.biases.iter().any(|(key, _)| *key == k)
                {
                    cache.biases.push((k, m.apply(b.val())));
                }
            }
        }
        cache
    }

    fn weight(&self, conv: &Conv2d, m: &ParamMod) -> Tensor<4> {
        cache_key(m)
            .and_then(|k| self.weights.iter().find(|(key, _)| *key == k))
            .map_or_else(|| m.apply(conv.weight.val()), |(_, w)| w.clone())
    }

    fn bias(&self, conv: &Conv2d, m: &ParamMod) -> Option<Tensor<1>> {
        let b = conv.bias.as_ref()?;
        if m.is_zero() {
            return None;
        }
        Some(
            cache_key(m)
                .and_then(|k| self.biases.iter().find(|(key, _)| *key == k))
                .map_or_else(|| m.apply(b.val()), |(_, b)| b.clone()),
        )
    }
}

/// A convolution seen through a [`ConvParamCache`]: the same arithmetic as [`Conv2d`]'s, with
/// the modified parameters taken from the cache.
pub(crate) struct CachedConv<'a> {
    pub(crate) conv: &'a Conv2d,
    pub(crate) cache: &'a ConvParamCache,
}

impl LinearLayer<4, 4> for CachedConv<'_> {
    fn describe(&self) -> String {
        LinearLayer::<4, 4>::describe(self.conv)
    }

    fn output_dims(&self, input: [usize; 4]) -> std::result::Result<[usize; 4], String> {
        self.conv.output_dims(input)
    }

    fn has_weight(&self) -> bool {
        true
    }

    fn has_bias(&self) -> bool {
        self.conv.bias.is_some()
    }

    fn forward(&self, x: Tensor<4>, weight: &ParamMod) -> Tensor<4> {
        conv_forward(self.conv, x, self.cache.weight(self.conv, weight), None)
    }

    fn forward_biased(&self, x: Tensor<4>, weight: &ParamMod, bias: &ParamMod) -> Tensor<4> {
        let b = self.cache.bias(self.conv, bias);
        conv_forward(self.conv, x, self.cache.weight(self.conv, weight), b)
    }

    fn bias(&self, bias: &ParamMod) -> Option<Tensor<4>> {
        if bias.is_zero() {
            // as the plain convolution: a zero bias of the right shape
            return LinearLayer::<4, 4>::bias(self.conv, bias);
        }
        self.cache.bias(self.conv, bias).map(|b| {
            let [o] = b.dims();
            b.reshape([1, o, 1, 1])
        })
    }

    fn transpose(&self, s: Tensor<4>, weight: &ParamMod, input: [usize; 4]) -> Tensor<4> {
        conv_transpose(self.conv, s, self.cache.weight(self.conv, weight), input)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modifier::CustomMod;
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution};
    use xprune_graph::tensor_util::to_vec;

    fn max_diff(a: &Tensor<4>, b: &Tensor<4>) -> f32 {
        to_vec(&(a.clone() - b.clone()).abs().max())[0]
    }

    #[test]
    fn cached_parameters_give_the_same_arithmetic() {
        let d = Device::flex();
        let conv = Conv2dConfig::new([4, 6], [3, 3])
            .with_stride([2, 1])
            .with_padding(PaddingConfig2d::Explicit(1, 0, 2, 1))
            .init(&d);
        let x = Tensor::<4>::random([2, 4, 7, 6], Distribution::Normal(0.0, 1.0), &d);
        let mods = [
            ParamMod::Identity,
            ParamMod::Positive,
            ParamMod::Negative,
            ParamMod::Zero,
            ParamMod::Ones,
            ParamMod::Square,
            ParamMod::AddPositive(0.25),
            ParamMod::AddNegative(0.25),
            ParamMod::Custom(CustomMod::new("half", |t| t.mul_scalar(0.5))),
        ];
        // only some modifiers are cached: the others must still be applied on use
        let cache = ConvParamCache::new(&conv, &mods[..4], &mods[4..7]);
        let cached = CachedConv {
            conv: &conv,
            cache: &cache,
        };
        let out_dims = conv.output_dims(x.dims()).unwrap();
        let s = Tensor::<4>::random(out_dims, Distribution::Normal(0.0, 1.0), &d);
        for w in &mods {
            for b in &mods {
                let want = conv.forward_biased(x.clone(), w, b);
                let got = cached.forward_biased(x.clone(), w, b);
                assert!(max_diff(&want, &got) < 1e-6, "forward {w:?} {b:?}");
            }
            let want = conv.transpose(s.clone(), w, x.dims());
            let got = cached.transpose(s.clone(), w, x.dims());
            assert_eq!(got.dims(), x.dims());
            assert!(max_diff(&want, &got) < 1e-6, "transpose {w:?}");
            let (bw, bg) = (conv.bias(w), cached.bias(w));
            assert_eq!(bw.is_some(), bg.is_some());
            if let (Some(bw), Some(bg)) = (bw, bg) {
                assert!(max_diff(&bw, &bg) < 1e-6, "bias {w:?}");
            }
        }
    }
}
