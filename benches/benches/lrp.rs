//! LRP cost relative to a gradient: for VGG-11-BN and ResNet-18 (CIFAR, 32x32, 10 classes),
//! the time of one attribution (recorded forward pass + relevance propagation, batch norms
//! folded once beforehand) per composite, divided by the time of a forward pass plus an
//! input-gradient pass with Burn's autodiff on the same backend.
//!
//! ```text
//! cargo bench -p xprune-benches --bench lrp -- [--backend flex|wgpu|all] [--quick]
//!     [--batch N] [--width W] [--model vgg11|resnet18]
//! ```

use std::process::exit;
use xprune::burn::module::Module;
use xprune::burn::tensor::{Device, Distribution, Tensor, TensorData};
use xprune::graph::tensor_util::int_tensor;
use xprune::lrp::{Attributor, COMPOSITE_NAMES, Composite, Target};
use xprune::models::{ResNetStem, VggDepth, resnet18, vgg};
use xprune::{FeatureShape, Graph};
use xprune_benches::{BenchOptions, Table, device, machine_line, time};

struct Args {
    batch: usize,
    width: f32,
    models: Vec<String>,
}

fn parse(rest: &[String]) -> Args {
    let mut args = Args {
        batch: 32,
        width: 1.0,
        models: vec!["vgg11".into(), "resnet18".into()],
    };
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next().cloned().unwrap_or_else(|| {
                eprintln!("{a} needs a value");
                exit(2)
            })
        };
        match a.as_str() {
            "--batch" => args.batch = value().parse().unwrap_or_else(|_| bad(a)),
            "--width" => args.width = value().parse().unwrap_or_else(|_| bad(a)),
            "--model" => args.models = vec![value()],
            other => {
                eprintln!("unknown argument {other}");
                exit(2)
            }
        }
    }
    args
}

fn bad<T>(flag: &str) -> T {
    eprintln!("bad value for {flag}");
    exit(2)
}

fn model(name: &str, width: f32, device: &Device) -> Graph {
    let shape = FeatureShape::spatial(3, 32, 32);
    let g = match name {
        "vgg11" => vgg(VggDepth::Vgg11, true, shape, 10, width, device, 1),
        "resnet18" => resnet18(ResNetStem::Cifar, shape, 10, width, device, 1),
        other => {
            eprintln!("unknown model {other} (vgg11, resnet18)");
            exit(2)
        }
    };
    g.unwrap_or_else(|e| {
        eprintln!("{e}");
        exit(1)
    })
}

fn main() {
    let opts = BenchOptions::from_args();
    let args = parse(&opts.rest);
    let (warmup, reps) = opts.reps();
    println!(
        "LRP time / (forward + input gradient), batch {}, width {}",
        args.batch, args.width
    );
    println!("{}", machine_line());
    let mut table = Table::new(&[
        "backend",
        "model",
        "composite",
        "LRP ms",
        "fwd+grad ms",
        "ratio",
    ]);
    for backend in &opts.backends {
        let device = device(*backend);
        for name in &args.models {
            let graph = model(name, args.width, &device);
            let x = Tensor::<4>::random(
                [args.batch, 3, 32, 32],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let labels: Vec<i64> = (0..args.batch as i64).map(|i| i % 10).collect();
            let labels_t = int_tensor(labels.clone(), &device);

            // Baseline: forward + gradient with respect to the input only.
            let ad = device.clone().autodiff();
            let graph_ad = graph.clone().fork(&ad).no_grad();
            let mut one_hot = vec![0.0f32; args.batch * 10];
            for (i, l) in labels.iter().enumerate() {
                one_hot[i * 10 + *l as usize] = 1.0;
            }
            let one_hot = Tensor::<2>::from_data(TensorData::new(one_hot, [args.batch, 10]), &ad);
            let x_data = x.to_data();
            let baseline = || {
                time(&device, warmup, reps, || {
                    let xa = Tensor::<4>::from_data(x_data.clone(), &ad).require_grad();
                    let logits = graph_ad.logits(xa.clone()).expect("forward");
                    let grads = (logits * one_hot.clone()).sum().backward();
                    let g = xa.grad(&grads).expect("input gradient");
                    let _: f32 = g.sum().into_scalar();
                })
            };

            for composite_name in COMPOSITE_NAMES {
                // The baseline is timed next to each composite so that both see the same load.
                let base = baseline();
                let composite = Composite::named(composite_name).expect("built-in composite");
                let attributor = Attributor::new(&graph, &composite)
                    .expect("attributor")
                    .keep_nodes(false);
                let t = time(&device, warmup, reps, || {
                    let a = attributor
                        .attribute(x.clone(), Target::Labels(labels_t.clone()))
                        .expect("attribution");
                    let _: f32 = a.input.flatten().sum().into_scalar();
                });
                table.row(vec![
                    backend.to_string(),
                    name.clone(),
                    composite_name.to_string(),
                    format!("{:.1}", t.ms()),
                    format!("{:.1}", base.ms()),
                    format!("{:.2}", t.ms() / base.ms()),
                ]);
                println!(
                    "{backend} {name} {composite_name}: {:.1} ms vs {:.1} ms",
                    t.ms(),
                    base.ms()
                );
            }
        }
    }
    println!("\n{table}");
    println!("{}", table.markdown());
}
