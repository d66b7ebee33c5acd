//! Your own Burn model, pruned into your own type: a small ResNet written the way Burn's book
//! writes models (`#[derive(Config)]` + `init`, `#[derive(Module)]` structs with a `forward`).
//!
//! The program traces it, trains the traced graph for a few epochs on the synthetic Shapes-10
//! set, writes the trained weights back into the `ResNet`, explains one image with LRP, prunes
//! 30% of the channels with LRP scores from 10 labelled samples per class, saves the pruned
//! model and loads it into a fresh `ResNetConfig::init()`.
//!
//! `cargo run -p xprune --example own_resnet` (about a minute on 2 cores).

use xprune::burn::config::Config;
use xprune::burn::module::Module;
use xprune::burn::nn::conv::{Conv2d, Conv2dConfig};
use xprune::burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use xprune::burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d, Relu};
use xprune::burn::tensor::{Device, Tensor};
use xprune::io::data::synthetic::shapes10;
use xprune::lrp::{Attributor, Composite, Target};
use xprune::train::{Optimizer, TrainConfig, evaluate, train};
use xprune::{LrpCriterion, ModuleGraph, Pruner, Selection, load_pruned, save_pruned};

/// A 3x3 convolution with padding 1 and no bias (a batch norm follows).
fn conv3x3(i: usize, o: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([i, o], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(device)
}

/// The projection of a block that changes the width or the resolution.
#[derive(Module, Debug)]
pub struct Downsample {
    conv: Conv2d,
    bn: BatchNorm,
}

/// ResNet's basic block: two 3x3 convolutions and a residual connection.
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    relu: Relu,
    downsample: Option<Downsample>,
}

impl BasicBlock {
    fn new(i: usize, o: usize, stride: usize, device: &Device) -> Self {
        let downsample = (i != o || stride != 1).then(|| Downsample {
            conv: Conv2dConfig::new([i, o], [1, 1])
                .with_stride([stride, stride])
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(o).init(device),
        });
        Self {
            conv1: conv3x3(i, o, stride, device),
            bn1: BatchNormConfig::new(o).init(device),
            conv2: conv3x3(o, o, 1, device),
            bn2: BatchNormConfig::new(o).init(device),
            relu: Relu::new(),
            downsample,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(d) => d.bn.forward(d.conv.forward(x.clone())),
            None => x.clone(),
        };
        let y = self.relu.forward(self.bn1.forward(self.conv1.forward(x)));
        let y = self.bn2.forward(self.conv2.forward(y));
        self.relu.forward(y + identity)
    }
}

/// A ResNet for 32x32 images: a stem, three stages of basic blocks, a linear head.
#[derive(Module, Debug)]
pub struct ResNet {
    conv1: Conv2d,
    bn1: BatchNorm,
    relu: Relu,
    layer1: Vec<BasicBlock>,
    layer2: Vec<BasicBlock>,
    layer3: Vec<BasicBlock>,
    pool: AdaptiveAvgPool2d,
    fc: Linear,
}

/// The ResNet's configuration.
#[derive(Config, Debug)]
pub struct ResNetConfig {
    /// Number of classes.
    pub num_classes: usize,
    /// Width of the first stage (doubled at each later stage).
    #[config(default = 16)]
    pub width: usize,
    /// Blocks per stage.
    #[config(default = 2)]
    pub blocks: usize,
}

impl ResNetConfig {
    /// A ResNet with fresh weights.
    pub fn init(&self, device: &Device) -> ResNet {
        let w = self.width;
        let stage = |i: usize, o: usize, stride: usize| -> Vec<BasicBlock> {
            (0..self.blocks)
                .map(|b| {
                    let (i, s) = if b == 0 { (i, stride) } else { (o, 1) };
                    BasicBlock::new(i, o, s, device)
                })
                .collect()
        };
        ResNet {
            conv1: conv3x3(3, w, 1, device),
            bn1: BatchNormConfig::new(w).init(device),
            relu: Relu::new(),
            layer1: stage(w, w, 1),
            layer2: stage(w, 2 * w, 2),
            layer3: stage(2 * w, 4 * w, 2),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(4 * w, self.num_classes).init(device),
        }
    }
}

impl ResNet {
    /// Logits `[batch, classes]` of images `[batch, 3, 32, 32]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = self.relu.forward(self.bn1.forward(self.conv1.forward(x)));
        for block in self.layer1.iter().chain(&self.layer2).chain(&self.layer3) {
            x = block.forward(x);
        }
        self.fc.forward(self.pool.forward(x).flatten(1, 3))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::flex();
    let config = ResNetConfig::new(10);
    let model = config.init(&device);

    // Trace once: the graph every part of xprune works on, with the module paths as names.
    let traced = ModuleGraph::trace(model, [1, 3, 32, 32], |m, x| m.forward(x), &device)?;
    println!("{}", traced.graph().summary());

    // Train the traced graph and write the weights back into the ResNet.
    let (train_set, test_set) = (shapes10(2000, 0)?, shapes10(500, 1)?);
    let trained = train(
        traced.graph(),
        &train_set,
        &TrainConfig::new(3, 32, 2e-3).optimizer(Optimizer::adam()),
    )?
    .graph;
    let model: ResNet = traced.apply(&trained)?.into_module()?;
    let traced = ModuleGraph::trace(model, [1, 3, 32, 32], |m, x| m.forward(x), &device)?;
    println!(
        "accuracy {:.3}",
        evaluate(traced.graph(), &test_set, 100)?.accuracy
    );

    // LRP of one image; rules by layer kind, and by module path where wanted.
    let composite = Composite::named("epsilon-plus-flat")?;
    let attributor = Attributor::new(traced.graph(), &composite)?;
    let image = test_set.batch(&[0], &device)?;
    let relevance = attributor.attribute(image.inputs, Target::Class(0))?;
    println!(
        "relevance of the image sums to {:.3}",
        relevance.input.sum()
    );

    // Prune 30% of the channels by LRP relevance on 10 labelled samples per class; the result
    // is a ResNet again.
    let reference = train_set.per_class(10, 0)?;
    let mut pruner = Pruner::new(LrpCriterion::default()).selection(Selection::ratio(0.3));
    let (pruned, outcome) = traced.prune(&mut pruner, Some(&reference))?;
    println!(
        "{:.2}x fewer MACs, {:.2}x fewer parameters",
        outcome.mac_reduction(),
        outcome.param_reduction()
    );

    // Save, and load into a fresh init of the original configuration.
    save_pruned(&pruned, "resnet-pruned.safetensors")?;
    let small: ResNet = pruned.into_module()?;
    let loaded: ResNet =
        load_pruned(config.init(&device), "resnet-pruned.safetensors")?.into_module()?;
    let x = test_set.batch(&[0, 1, 2, 3], &device)?.inputs;
    let x: Tensor<4> = x.into_tensor().ok_or("images are 4-D")?;
    let diff = (small.forward(x.clone()) - loaded.forward(x))
        .abs()
        .max()
        .into_scalar::<f32>();
    println!(
        "pruned stem has {} channels; reloaded model differs by {diff}",
        small.conv1.weight.dims()[0]
    );
    Ok(())
}
