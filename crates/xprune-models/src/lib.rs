//! # xprune-models
//!
//! Reference architectures as [`Graph`](xprune_graph::Graph) builders, with PyTorch-style node
//! names (`layer1.0.conv1`, `features.3`, ...): [`mlp`], [`lenet5`], [`vgg`] (11/16, with or
//! without batch norm, CIFAR head), [`resnet_cifar`] (ResNet-20/56) and [`resnet18`] (CIFAR
//! and ImageNet stems), and small networks in the style of the modern families
//! ([`mobilenet_v3_like`], [`efficientnet_like`], [`shufflenet_like`], [`regnet_like`],
//! [`convnext_like`], and [`misc_net`] with every remaining layer kind), and vision transformers
//! ([`vit`], torchvision's layout). Every builder takes a
//! width multiplier so tests can use small versions of the same topology, and a seed for the
//! initial weights.
#![warn(missing_docs)]

mod families;
mod lenet;
mod mlp;
mod resnet;
mod vgg;
mod vit;

pub use families::{
    convnext_like, efficientnet_like, misc_net, mobilenet_v3_like, regnet_like, shufflenet_like,
};
pub use lenet::lenet5;
pub use mlp::mlp;
pub use resnet::{ResNetCifarDepth, ResNetStem, resnet_cifar, resnet18};
pub use vgg::{VggDepth, vgg};
pub use vit::{VitConfig, vit};

/// Scales a channel count by a width multiplier, keeping at least one channel.
pub fn scaled(channels: usize, width: f32) -> usize {
    ((channels as f32 * width).round() as usize).max(1)
}

#[cfg(test)]
mod tests;
