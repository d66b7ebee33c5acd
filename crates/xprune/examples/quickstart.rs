//! The README's library example: train, prune with LRP scores from 10 samples per class,
//! fine-tune briefly, export to ONNX. `cargo run --example quickstart -p xprune`
use xprune::burn::tensor::Device;
use xprune::io::{data::synthetic::shapes10, onnx::export_onnx};
use xprune::models::{VggDepth, vgg};
use xprune::train::{Optimizer, TrainConfig, evaluate, train};
use xprune::{FeatureShape, LrpCriterion, Normalization, Pruner, Selection};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::flex(); // or Device::wgpu(DeviceKind::DefaultDevice), Device::ndarray()
    let (train_set, test_set) = (shapes10(2000, 0)?, shapes10(500, 1)?);
    let input = FeatureShape::spatial(3, 32, 32);
    let model = vgg(VggDepth::Vgg11, true, input, 10, 0.25, &device, 0)?;
    let config = TrainConfig::new(4, 32, 2e-3).optimizer(Optimizer::adam());
    let model = train(&model, &train_set, &config)?.graph;

    let reference = train_set.per_class(10, 0)?; // 10 labelled samples per class
    let selection = Selection::ratio(0.3).normalization(Normalization::L2);
    let pruned = Pruner::new(LrpCriterion::default())
        .selection(selection)
        .one_shot(&model, Some(&reference))?;
    let tuned = train(
        &pruned.graph,
        &train_set,
        &TrainConfig::new(1, 32, 1e-3).optimizer(Optimizer::adam()),
    )?
    .graph;
    let acc = |g| evaluate(g, &test_set, 100).map(|m| m.accuracy);
    let (a, b, c) = (acc(&model)?, acc(&pruned.graph)?, acc(&tuned)?);
    println!(
        "{:.2}x fewer MACs; accuracy {a:.3} -> {b:.3} pruned -> {c:.3} fine-tuned",
        pruned.mac_reduction()
    );
    export_onnx(&tuned, "pruned.onnx")?; // runs in onnxruntime, PyTorch, ...
    Ok(())
}
