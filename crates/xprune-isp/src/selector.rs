//! The selector's decoder (the amortised explainer): from the classifier's feature map and
//! the class, three numbers per image, the centre and the width of an RBF saliency mask.
//!
//! `features [N, C, h, w]` are gated by the class: `f * sigmoid(sum_c f_c * e_c(y))` with a
//! learned class embedding `e(y)` (as in the authors' selector); a 1x1 convolution with ReLU
//! and a linear layer over the whole map (the authors' full-size convolution) give
//! `p = [p_x, p_y, p_s]`. The mask centre is `(S - 1) / 2 + a * tanh(p / a)` per axis with
//! `a = 0.875 * S / 2` (the authors' `14 * tanh(p / 14) + 16` on 32 pixels), the width
//! `softplus(p_s + b) + 0.5` pixels, `b` chosen so that an untrained selector starts at the
//! middle of the predictor's width range (the authors initialise the bias for the same
//! purpose; the 0.5-pixel floor keeps the normalised mask finite).

use crate::{IspError, Result};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig};
use burn::tensor::activation::{relu, sigmoid, softplus};
use burn::tensor::{Device, Int, Tensor};

/// The smallest mask width, in pixels.
pub const MIN_SIGMA: f32 = 0.5;

/// The selector's decoder; see the module documentation.
#[derive(Module, Debug)]
pub struct Selector {
    embedding: Embedding,
    conv: Conv2d,
    head: Linear,
    /// Image height and width in pixels.
    image: [usize; 2],
    /// Feature map `[C, h, w]` the decoder reads.
    features: [usize; 3],
    /// Channels after the 1x1 convolution.
    hidden: usize,
    /// Added to `p_s` before the softplus.
    sigma_offset: f32,
}

impl Selector {
    /// A decoder for feature maps `[channels, h, w]` of `classes`-class images of
    /// `image = [height, width]` pixels, with `hidden` channels after the 1x1 convolution and
    /// initial mask width `sigma0` pixels; weights drawn from the device's seeded generator.
    ///
    /// # Errors
    ///
    /// Empty sizes or `sigma0 <= 0.5`.
    pub fn new(
        features: [usize; 3],
        classes: usize,
        image: [usize; 2],
        hidden: usize,
        sigma0: f32,
        device: &Device,
    ) -> Result<Self> {
        let [c, h, w] = features;
        if c == 0 || h == 0 || w == 0 || classes == 0 || hidden == 0 || image.contains(&0) {
            return Err(IspError(format!(
                "the selector needs non-empty sizes, got features [{c}, {h}, {w}], {classes} \
                 classes, {hidden} hidden channels, image {image:?}"
            )));
        }
        if !(sigma0.is_finite() && sigma0 > MIN_SIGMA) {
            return Err(IspError(format!(
                "the initial mask width must exceed {MIN_SIGMA} pixels, got {sigma0}"
            )));
        }
        let s = (sigma0 - MIN_SIGMA) as f64;
        // Inverse softplus: softplus(b) = s.
        let sigma_offset = (s.exp_m1().ln()) as f32;
        Ok(Self {
            embedding: EmbeddingConfig::new(classes, c)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 1.0 / (c as f64).sqrt(),
                })
                .init(device),
            conv: Conv2dConfig::new([c, hidden], [1, 1]).init(device),
            head: LinearConfig::new(hidden * h * w, 3).init(device),
            image,
            features,
            hidden,
            sigma_offset,
        })
    }

    /// The feature map shape `[C, h, w]` the decoder reads.
    pub fn feature_shape(&self) -> [usize; 3] {
        self.features
    }

    /// The raw mask parameters `[N, 3]` for `features [N, C, h, w]` and `labels [N]`.
    ///
    /// # Errors
    ///
    /// Features of another shape, or a label count that differs from the batch.
    pub fn parameters(&self, features: Tensor<4>, labels: Tensor<1, Int>) -> Result<Tensor<2>> {
        let [n, c, h, w] = features.dims();
        if [c, h, w] != self.features || labels.dims()[0] != n {
            return Err(IspError(format!(
                "the selector reads features {:?} with one label per sample, got [{n}, {c}, \
                 {h}, {w}] and {} labels",
                self.features,
                labels.dims()[0]
            )));
        }
        let e = self
            .embedding
            .forward(labels.reshape([n, 1]))
            .reshape([n, c, 1, 1]);
        let gate = sigmoid((features.clone() * e).sum_dim(1)); // [N, 1, h, w]
        let x = relu(self.conv.forward(features * gate));
        Ok(self.head.forward(x.reshape([n, self.head_inputs()])))
    }

    fn head_inputs(&self) -> usize {
        let [_, h, w] = self.features;
        self.hidden * h * w
    }

    /// The mask centres `[N, 2]` (`x`, `y` in pixels) and widths `[N]` of raw parameters.
    pub fn mask_parameters(&self, parameters: Tensor<2>) -> (Tensor<2>, Tensor<1>) {
        let [n, _] = parameters.dims();
        let [height, width] = self.image;
        let axis = |p: Tensor<2>, size: usize| {
            let a = 0.875 * size as f64 / 2.0;
            p.div_scalar(a)
                .tanh()
                .mul_scalar(a)
                .add_scalar((size as f64 - 1.0) / 2.0)
        };
        let cx = axis(parameters.clone().narrow(1, 0, 1), width);
        let cy = axis(parameters.clone().narrow(1, 1, 1), height);
        let sigma = softplus(
            parameters
                .narrow(1, 2, 1)
                .add_scalar(self.sigma_offset as f64),
            1.0,
        )
        .add_scalar(MIN_SIGMA as f64)
        .reshape([n]);
        (Tensor::cat(vec![cx, cy], 1), sigma)
    }

    /// Masks `[N, 1, H, W]` of raw parameters.
    pub fn masks(&self, parameters: Tensor<2>) -> Result<Tensor<4>> {
        let (centres, sigmas) = self.mask_parameters(parameters);
        let [height, width] = self.image;
        crate::rbf::rbf_masks(centres, sigmas, height, width)
    }
}
