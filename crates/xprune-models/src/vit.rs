//! Vision transformers in torchvision's layout (`VisionTransformer`): patch embedding, class
//! token, learned position embedding, pre-norm encoder blocks, layer norm and a linear head on
//! the class token.

use xprune_graph::burn::tensor::Device;
use xprune_graph::{Conv2dSpec, FeatureShape, Graph, GraphBuilder, GraphError, Result};

/// The sizes of a vision transformer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VitConfig {
    /// Side of the square patches (the patch embedding's kernel and stride).
    pub patch: usize,
    /// Embedding width (torchvision's `hidden_dim`).
    pub dim: usize,
    /// Encoder blocks.
    pub depth: usize,
    /// Attention heads per block (`dim` must be a multiple).
    pub heads: usize,
    /// Hidden neurons of each block's MLP (torchvision's `mlp_dim`).
    pub mlp_dim: usize,
}

impl VitConfig {
    /// A tiny transformer for 32x32 images and tests: patch 4, width 64, 4 blocks of 4 heads
    /// of 16 channels, MLP 128.
    pub fn tiny() -> Self {
        Self {
            patch: 4,
            dim: 64,
            depth: 4,
            heads: 4,
            mlp_dim: 128,
        }
    }

    /// ViT-B/16 (torchvision's `vit_b_16`: patch 16, width 768, 12 blocks of 12 heads, MLP
    /// 3072).
    pub fn b16() -> Self {
        Self {
            patch: 16,
            dim: 768,
            depth: 12,
            heads: 12,
            mlp_dim: 3072,
        }
    }
}

/// A vision transformer for `input` images (`[3, H, W]`, sides multiples of the patch) and
/// `classes` outputs, with torchvision's node names:
///
/// - `conv_proj` (the patch embedding), `tokens`, `class_token`,
///   `encoder.pos_embedding`;
/// - per block `i`: `encoder.layers.encoder_layer_i.ln_1`, `.self_attention.{q,k,v}`,
///   `.self_attention.attention`, `.self_attention.out` (torchvision's `out_proj`), `.add_1`,
///   `.ln_2`, `.mlp.0` (linear), `.mlp.1` (GELU), `.mlp.3` (linear), `.add_2`;
/// - `encoder.ln`, `select_class_token`, `heads.head`.
///
/// Layer norms have epsilon `1e-6`, as torchvision's; dropout is left out (torchvision's
/// default rate is 0).
pub fn vit(
    input: FeatureShape,
    classes: usize,
    config: VitConfig,
    device: &Device,
    seed: u64,
) -> Result<Graph> {
    let VitConfig {
        patch,
        dim,
        depth,
        heads,
        mlp_dim,
    } = config;
    let bad = |message: String| GraphError::Shape {
        node: "vit".into(),
        message,
    };
    let FeatureShape::Spatial([_, h, w]) = input else {
        return Err(bad(format!(
            "a vision transformer takes images, got [{input}]"
        )));
    };
    if patch == 0 || h % patch != 0 || w % patch != 0 {
        return Err(bad(format!(
            "images of {h}x{w} do not split into patches of {patch}"
        )));
    }
    let mut b = GraphBuilder::new(input, device).seed(seed);
    let x = b.conv2d(
        "conv_proj",
        b.input(),
        Conv2dSpec::new(dim, patch).stride(patch),
    )?;
    let x = b.tokens("tokens", x)?;
    let x = b.class_token("class_token", x)?;
    let mut x = b.position_embedding("encoder.pos_embedding", x)?;
    for i in 0..depth {
        let p = format!("encoder.layers.encoder_layer_{i}");
        let y = b.layer_norm(format!("{p}.ln_1"), x)?;
        let y = b.self_attention(format!("{p}.self_attention"), y, heads)?;
        x = b.add(format!("{p}.add_1"), &[x, y])?;
        let y = b.layer_norm(format!("{p}.ln_2"), x)?;
        let y = b.linear(format!("{p}.mlp.0"), y, mlp_dim)?;
        let y = b.gelu(format!("{p}.mlp.1"), y, false)?;
        let y = b.linear(format!("{p}.mlp.3"), y, dim)?;
        x = b.add(format!("{p}.add_2"), &[x, y])?;
    }
    let x = b.layer_norm("encoder.ln", x)?;
    let x = b.select_token("select_class_token", x, 0)?;
    let out = b.linear("heads.head", x, classes)?;
    b.build(out)
}
