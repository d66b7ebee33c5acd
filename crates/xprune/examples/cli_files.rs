//! Writes the example files of `docs/cli.md` into the current directory: a small CNN trained
//! on Shapes-10 (`shapes_cnn.onnx`), reference and test data (`reference.npz`, `test.npz`) and
//! four test images with their labels (`images.npy`, `labels.npy`).
//!
//! `cargo run -p xprune --example cli_files` (about two minutes on 2 cores).

use xprune::burn::tensor::Device;
use xprune::io::data::npz::{self, Compression};
use xprune::io::data::synthetic::shapes10;
use xprune::io::data::{Array, npy};
use xprune::io::onnx::export_onnx;
use xprune::train::{LrSchedule, Optimizer, ScheduleUnit, TrainConfig, evaluate, train};
use xprune::{Conv2dSpec, FeatureShape, GraphBuilder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dev = Device::flex();
    let mut b = GraphBuilder::new(FeatureShape::spatial(3, 32, 32), &dev).seed(0);
    let mut x = b.input();
    for (i, c) in [16, 32, 32].into_iter().enumerate() {
        x = b.conv2d(
            format!("conv{}", i + 1),
            x,
            Conv2dSpec::new(c, 3).padding(1),
        )?;
        x = b.batch_norm(format!("bn{}", i + 1), x)?;
        x = b.relu(format!("relu{}", i + 1), x)?;
        x = b.max_pool2d(format!("pool{}", i + 1), x, 2, 2)?;
    }
    let x = b.flatten("flatten", x)?;
    let x = b.linear("fc1", x, 64)?;
    let x = b.relu("relu4", x)?;
    let out = b.linear("fc2", x, 10)?;
    let config = TrainConfig::new(8, 64, 3e-3)
        .optimizer(Optimizer::adam())
        .schedule(LrSchedule::Cosine { min_lr: 1e-4 }, ScheduleUnit::Step)
        .drop_last(true)
        .seed(0);
    let trained = train(&b.build(out)?, &shapes10(4000, 1)?, &config)?.graph;
    let test = shapes10(1000, 3)?;
    println!("test accuracy {}", evaluate(&trained, &test, 100)?.accuracy);
    export_onnx(&trained, "shapes_cnn.onnx")?;
    npz::write_dataset("reference.npz", &shapes10(200, 2)?, Compression::Deflated)?;
    npz::write_dataset("test.npz", &test, Compression::Deflated)?;
    let first = test.subset(&[0, 1, 2, 3])?;
    npy::write(
        "images.npy",
        &Array::f32(vec![4, 3, 32, 32], first.features().to_vec())?,
    )?;
    npy::write("labels.npy", &Array::i64(vec![4], first.labels().to_vec())?)?;
    Ok(())
}
