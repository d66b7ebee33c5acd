//! LRP cost relative to a gradient: for VGG-11-BN and ResNet-18 (CIFAR, 32x32, 10 classes),
//! the time of one attribution (recorded forward pass + relevance propagation, batch norms
//! folded once beforehand) per composite, divided by the time of a forward pass plus an
//! input-gradient pass with Burn's autodiff on the same backend.
//!
//! ```text
//! cargo bench -p xprune-benches --profile dev --bench lrp -- [--backend flex|wgpu|all]
//!     [--quick] [--reps N] [--batch N] [--width W] [--model vgg11|resnet18]...
//!     [--composite NAME]... [--csv PATH] [--lrp-only]
//! ```
//!
//! `--csv PATH` writes one line per row (`backend,model,composite,batch,width,lrp_ms,
//! baseline_ms,ratio`), which `benches/compare/lrp_zennit.py --xprune-csv PATH` reads to print
//! xprune/Zennit ratios. `--lrp-only` skips the baseline (for profiling the propagation).

use std::process::exit;
use std::time::Instant;
use xprune::burn::module::Module;
use xprune::burn::tensor::{Device, Distribution, Tensor, TensorData};
use xprune::graph::tensor_util::int_tensor;
use xprune::lrp::{Attributor, COMPOSITE_NAMES, Composite, Target};
use xprune::models::{ResNetStem, VggDepth, resnet18, vgg};
use xprune::{FeatureShape, Graph};
use xprune_benches::{BenchOptions, Table, Timing, device, machine_line, time};

struct Args {
    batch: usize,
    width: f32,
    models: Vec<String>,
    composites: Vec<String>,
    csv: Option<String>,
    lrp_only: bool,
    reps: Option<usize>,
}

fn parse(rest: &[String]) -> Args {
    let mut args = Args {
        batch: 32,
        width: 1.0,
        models: Vec::new(),
        composites: Vec::new(),
        csv: None,
        lrp_only: false,
        reps: None,
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
            "--model" => args.models.push(value()),
            "--composite" => {
                let c = value();
                if !COMPOSITE_NAMES.contains(&c.as_str()) {
                    eprintln!("unknown composite {c} (one of {COMPOSITE_NAMES:?})");
                    exit(2)
                }
                args.composites.push(c)
            }
            "--csv" => args.csv = Some(value()),
            "--reps" => args.reps = Some(value().parse().unwrap_or_else(|_| bad(a))),
            "--lrp-only" => args.lrp_only = true,
            other => {
                eprintln!("unknown argument {other}");
                exit(2)
            }
        }
    }
    if args.models.is_empty() {
        args.models = vec!["vgg11".into(), "resnet18".into()];
    }
    if args.composites.is_empty() {
        args.composites = COMPOSITE_NAMES.iter().map(|c| c.to_string()).collect();
    }
    args
}

fn bad<T>(flag: &str) -> T {
    eprintln!("bad value for {flag}");
    exit(2)
}

/// Times `a` and `b` alternately (`warmup` runs of each, then `reps` of each, synchronising
/// the device around every run) and returns the statistics of `a` and of `b`.
fn time_interleaved(
    device: &Device,
    warmup: usize,
    reps: usize,
    a: &mut dyn FnMut(),
    b: &mut dyn FnMut(),
) -> (Timing, Timing) {
    for _ in 0..warmup {
        a();
        b();
        device.sync().expect("device sync");
    }
    let once = |f: &mut dyn FnMut()| {
        device.sync().expect("device sync");
        let t = Instant::now();
        f();
        device.sync().expect("device sync");
        t.elapsed()
    };
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    for _ in 0..reps.max(1) {
        sa.push(once(a));
        sb.push(once(b));
    }
    let stats = |mut s: Vec<std::time::Duration>| {
        s.sort();
        Timing {
            median: s[s.len() / 2],
            min: s[0],
            max: s[s.len() - 1],
        }
    };
    (stats(sa), stats(sb))
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
    let reps = args.reps.unwrap_or(reps);
    println!(
        "LRP time / (forward + input gradient), batch {}, width {}",
        args.batch, args.width
    );
    println!("{}", machine_line());
    let mut csv = String::from("backend,model,composite,batch,width,lrp_ms,baseline_ms,ratio\n");
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
            let mut baseline = || {
                let xa = Tensor::<4>::from_data(x_data.clone(), &ad).require_grad();
                let logits = graph_ad.logits(xa.clone()).expect("forward");
                let grads = (logits * one_hot.clone()).sum().backward();
                let g = xa.grad(&grads).expect("input gradient");
                let _: f32 = g.sum().into_scalar();
            };

            for composite_name in &args.composites {
                let composite = Composite::named(composite_name).expect("built-in composite");
                let attributor = Attributor::new(&graph, &composite)
                    .expect("attributor")
                    .keep_nodes(false);
                let mut lrp = || {
                    let a = attributor
                        .attribute(x.clone(), Target::Labels(labels_t.clone()))
                        .expect("attribution");
                    let _: f32 = a.input.flatten().sum().into_scalar();
                };
                // The baseline and the attribution alternate, one repetition each, so that
                // both see the same load on a shared machine.
                let (t, base) = if args.lrp_only {
                    (time(&device, warmup, reps, lrp), None)
                } else {
                    let (t, b) = time_interleaved(&device, warmup, reps, &mut lrp, &mut baseline);
                    (t, Some(b))
                };
                let (base_ms, ratio) = match base {
                    Some(b) => (format!("{:.1}", b.ms()), format!("{:.2}", t.ms() / b.ms())),
                    None => ("-".to_string(), "-".to_string()),
                };
                println!(
                    "{backend} {name} {composite_name}: {:.1} ms vs {base_ms} ms",
                    t.ms()
                );
                csv.push_str(&format!(
                    "{backend},{name},{composite_name},{},{},{:.3},{},{}\n",
                    args.batch,
                    args.width,
                    t.ms(),
                    base.map_or("".to_string(), |b| format!("{:.3}", b.ms())),
                    base.map_or("".to_string(), |b| format!("{:.4}", t.ms() / b.ms())),
                ));
                table.row(vec![
                    backend.to_string(),
                    name.clone(),
                    composite_name.to_string(),
                    format!("{:.1}", t.ms()),
                    base_ms,
                    ratio,
                ]);
            }
        }
    }
    println!("\n{table}");
    println!("{}", table.markdown());
    if let Some(path) = &args.csv {
        if let Err(e) = std::fs::write(path, csv) {
            eprintln!("cannot write {path}: {e}");
            exit(1)
        }
        println!("wrote {path}");
    }
}
