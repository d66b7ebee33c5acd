//! Your own MobileNet-style Burn model (inverted residual blocks with depthwise convolutions),
//! pruned into your own type.
//!
//! Depthwise convolutions lose groups with their channels, and Burn's `Conv2d` keeps `groups`
//! as a plain field that a `ModuleMapper` cannot change, so the program assigns them with
//! `Pruned::into_module_with`.
//!
//! `cargo run -p xprune --example own_mobilenet` (under a minute on 2 cores).

use xprune::burn::module::Module;
use xprune::burn::nn::conv::{Conv2d, Conv2dConfig};
use xprune::burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use xprune::burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use xprune::burn::tensor::{Device, Tensor};
use xprune::io::data::synthetic::shapes10;
use xprune::train::{Optimizer, TrainConfig, evaluate, train};
use xprune::{ModuleGraph, Pruner, Selection, Taylor};

/// `min(max(x, 0), 6)`.
fn relu6(x: Tensor<4>) -> Tensor<4> {
    x.clamp(0.0, 6.0)
}

/// A pointwise (1x1) convolution without bias.
fn pointwise(i: usize, o: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([i, o], [1, 1])
        .with_bias(false)
        .init(device)
}

/// MobileNetV2's inverted residual: expand (1x1), depthwise (3x3), project (1x1).
#[derive(Module, Debug)]
pub struct InvertedResidual {
    expand: Conv2d,
    bn1: BatchNorm,
    dw: Conv2d,
    bn2: BatchNorm,
    project: Conv2d,
    bn3: BatchNorm,
    residual: bool,
}

impl InvertedResidual {
    fn new(i: usize, o: usize, stride: usize, expansion: usize, device: &Device) -> Self {
        let hidden = i * expansion;
        Self {
            expand: pointwise(i, hidden, device),
            bn1: BatchNormConfig::new(hidden).init(device),
            dw: Conv2dConfig::new([hidden, hidden], [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_groups(hidden)
                .with_bias(false)
                .init(device),
            bn2: BatchNormConfig::new(hidden).init(device),
            project: pointwise(hidden, o, device),
            bn3: BatchNormConfig::new(o).init(device),
            residual: i == o && stride == 1,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = relu6(self.bn1.forward(self.expand.forward(x.clone())));
        let y = relu6(self.bn2.forward(self.dw.forward(y)));
        let y = self.bn3.forward(self.project.forward(y));
        if self.residual { x + y } else { y }
    }
}

/// A small MobileNetV2 for 32x32 images.
#[derive(Module, Debug)]
pub struct MobileNet {
    stem: Conv2d,
    stem_bn: BatchNorm,
    blocks: Vec<InvertedResidual>,
    pool: AdaptiveAvgPool2d,
    classifier: Linear,
}

impl MobileNet {
    /// A MobileNet with fresh weights.
    pub fn new(classes: usize, device: &Device) -> Self {
        let spec = [
            (16, 16, 1),
            (16, 24, 2),
            (24, 24, 1),
            (24, 32, 2),
            (32, 32, 1),
        ];
        Self {
            stem: Conv2dConfig::new([3, 16], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device),
            stem_bn: BatchNormConfig::new(16).init(device),
            blocks: spec
                .iter()
                .map(|&(i, o, s)| InvertedResidual::new(i, o, s, 4, device))
                .collect(),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            classifier: LinearConfig::new(32, classes).init(device),
        }
    }

    /// Logits `[batch, classes]` of images `[batch, 3, 32, 32]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = relu6(self.stem_bn.forward(self.stem.forward(x)));
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.classifier.forward(self.pool.forward(x).flatten(1, 3))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::flex();
    let model = MobileNet::new(10, &device);
    let traced = ModuleGraph::trace(model, [1, 3, 32, 32], |m, x| m.forward(x), &device)?;

    let (train_set, test_set) = (shapes10(2000, 0)?, shapes10(500, 1)?);
    let config = TrainConfig::new(3, 32, 3e-3).optimizer(Optimizer::adam());
    let trained = train(traced.graph(), &train_set, &config)?.graph;
    let model: MobileNet = traced.apply(&trained)?.into_module()?;
    let traced = ModuleGraph::trace(model, [1, 3, 32, 32], |m, x| m.forward(x), &device)?;
    println!(
        "accuracy {:.3}",
        evaluate(traced.graph(), &test_set, 100)?.accuracy
    );

    // Taylor scores from 10 labelled samples per class; 30% of every group's channels.
    let reference = train_set.per_class(10, 0)?;
    let mut pruner = Pruner::new(Taylor::default()).selection(Selection::ratio(0.3));
    let (pruned, outcome) = traced.prune(&mut pruner, Some(&reference))?;
    for change in pruned.conv_groups() {
        println!(
            "`{}` now has {} groups (was {})",
            change.path, change.groups, change.before
        );
    }
    let small: MobileNet = pruned.into_module_with(|net, change| {
        // Paths are `blocks.<i>.dw`.
        let index = change
            .path
            .strip_prefix("blocks.")
            .and_then(|rest| rest.strip_suffix(".dw"))
            .and_then(|i| i.parse::<usize>().ok());
        if let Some(i) = index {
            net.blocks[i].dw.groups = change.groups;
        }
    });
    let x: Tensor<4> = test_set
        .batch(&[0, 1, 2, 3], &device)?
        .inputs
        .into_tensor()
        .ok_or("images are 4-D")?;
    let want = outcome.graph.forward(x.clone())?.to_vec();
    let got = small
        .forward(x)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    let diff = want
        .iter()
        .zip(&got)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!(
        "{:.2}x fewer MACs; the pruned MobileNet equals the pruned graph within {diff:e}",
        outcome.mac_reduction()
    );
    Ok(())
}
