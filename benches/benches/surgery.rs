//! Surgery benchmark: (a) the time to find groups and remove channels from ResNet-56 and
//! VGG-16-BN, and (b) the measured inference speed-up of the pruned models against their MAC
//! reduction, at 30/50/70 % of the channels of every prunable group removed (chosen by the
//! L1 norm of the producers' weights), batch 32, CIFAR shapes; also in inference form
//! (`xprune::inference_form`: batch norms folded, identities removed), the `folded` columns,
//! whose speed-up is against the dense model's inference form.
//!
//! `cargo bench -p xprune-benches --profile dev --bench surgery -- --backend flex --backend wgpu
//! [--quick] [--batch N] [--models resnet56,vgg16bn] [--round-to N] [--profile]`
//!
//! `--profile` times every node of the dense and of the pruned models on its own (inputs
//! from a recorded pass, device synchronised around each node) and prints the time per layer
//! kind and the convolution throughput (GMAC/s) by output channel count: where the speed-up
//! is lost when it falls short of the MAC ratio.

use std::collections::BTreeMap;
use std::time::Instant;
use xprune::burn::tensor::{Device, Tensor, TensorData};
use xprune::graph::tensor_util::to_vec;
use xprune::graph::{Graph, Layer};
use xprune::surgery::{ChannelGroups, PrunePlan, count, prune};
use xprune_benches::{
    BenchOptions, Table, device, machine_line, speed_model, speed_model_name, time,
};

const RATIOS: [f64; 3] = [0.3, 0.5, 0.7];

struct Args {
    batch: usize,
    models: Vec<&'static str>,
    round_to: usize,
    profile: bool,
}

fn parse(rest: &[String]) -> Args {
    let mut args = Args {
        batch: 32,
        models: vec!["ResNet-56", "VGG-16-BN"],
        round_to: 1,
        profile: false,
    };
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next().cloned().unwrap_or_else(|| {
                eprintln!("{a} needs a value");
                std::process::exit(2)
            })
        };
        let number = |v: String| match v.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("bad value for {a}");
                std::process::exit(2)
            }
        };
        match a.as_str() {
            "--batch" => args.batch = number(value()),
            "--round-to" => args.round_to = number(value()),
            "--profile" => args.profile = true,
            "--models" => args.models = value().split(',').map(speed_model_name).collect(),
            other => {
                eprintln!("unknown argument {other} (--batch, --models, --round-to, --profile)");
                std::process::exit(2)
            }
        }
    }
    args
}

fn model(name: &str, device: &Device) -> Graph {
    speed_model(name, 1.0, device)
}

/// Per-node timing: each node alone on its recorded inputs. Returns (kind, name, out
/// channels, MACs per sample, median ms) per node.
fn node_times(
    graph: &Graph,
    x: &Tensor<4>,
    device: &Device,
    reps: usize,
) -> Vec<(&'static str, String, usize, u64, f64)> {
    let rec = graph.forward_recorded(x.clone()).expect("forward runs");
    let counts = count(graph);
    let mut out = Vec::new();
    for id in 1..graph.len() {
        let info = &graph.nodes()[id];
        let inputs: Vec<_> = info
            .inputs
            .iter()
            .map(|&i| rec.get(i).expect("recorded").clone())
            .collect();
        let layer = graph.layer(id).expect("node exists");
        let t = time(device, 1, reps, || {
            layer
                .forward(inputs.clone(), false)
                .expect("the layer runs");
        });
        out.push((
            layer.kind_name(),
            info.name.clone(),
            info.shape.channels(),
            counts.nodes[id].macs,
            t.ms(),
        ));
    }
    out
}

/// Prints where the time of the dense and pruned models goes.
fn profile(graph: &Graph, pruned: &Graph, x: &Tensor<4>, device: &Device, reps: usize) {
    let dense = node_times(graph, x, device, reps);
    let small = node_times(pruned, x, device, reps);
    let mut kinds: BTreeMap<&str, (f64, f64, u64, u64)> = BTreeMap::new();
    for (d, s) in dense.iter().zip(&small) {
        let e = kinds.entry(d.0).or_default();
        e.0 += d.4;
        e.1 += s.4;
        e.2 += d.3;
        e.3 += s.3;
    }
    let (td, ts): (f64, f64) = kinds
        .values()
        .fold((0.0, 0.0), |a, v| (a.0 + v.0, a.1 + v.1));
    let mut t = Table::new(&[
        "kind",
        "dense ms",
        "pruned ms",
        "speed-up",
        "MAC ratio",
        "share of dense",
        "share of pruned",
    ]);
    for (k, v) in &kinds {
        t.row(vec![
            k.to_string(),
            format!("{:.1}", v.0),
            format!("{:.1}", v.1),
            format!("{:.2}", v.0 / v.1),
            if v.3 > 0 {
                format!("{:.2}", v.2 as f64 / v.3 as f64)
            } else {
                String::new()
            },
            format!("{:.0} %", 100.0 * v.0 / td),
            format!("{:.0} %", 100.0 * v.1 / ts),
        ]);
    }
    t.row(vec![
        "sum".into(),
        format!("{td:.1}"),
        format!("{ts:.1}"),
        format!("{:.2}", td / ts),
        String::new(),
        String::new(),
        String::new(),
    ]);
    println!("{t}\n{}", t.markdown());
    // Convolution throughput by output channel count.
    let batch = x.dims()[0] as f64;
    let mut by_width: BTreeMap<usize, (u64, f64, usize)> = BTreeMap::new();
    for n in dense.iter().chain(&small).filter(|n| n.0 == "conv2d") {
        let e = by_width.entry(n.2).or_default();
        e.0 += n.3;
        e.1 += n.4;
        e.2 += 1;
    }
    let mut c = Table::new(&["conv out channels", "convs", "GMAC/s"]);
    for (w, (macs, ms, k)) in &by_width {
        c.row(vec![
            w.to_string(),
            k.to_string(),
            format!("{:.1}", *macs as f64 * batch / (ms * 1e-3) / 1e9),
        ]);
    }
    println!("{c}\n{}", c.markdown());
}

/// L1 norm of every output channel of a producer, as a host vector.
fn producer_l1(graph: &Graph, node: usize) -> Vec<f32> {
    match graph.layer(node).expect("producer exists") {
        Layer::Conv2d(conv) => {
            let w = conv.weight.val();
            let [out, i, kh, kw] = w.dims();
            to_vec(
                &w.abs()
                    .reshape([out, i * kh * kw])
                    .sum_dim(1)
                    .reshape([out]),
            )
        }
        // Burn's linear weight is [in, out].
        Layer::Linear(linear) => {
            let w = linear.weight.val();
            let [_, out] = w.dims();
            to_vec(&w.abs().sum_dim(0).reshape([out]))
        }
        other => panic!(
            "a producer is a conv or linear layer, got {}",
            other.kind_name()
        ),
    }
}

/// Removes `ratio` of the channels of every prunable group: those with the smallest summed L1
/// norm over the group's producers (fewer if needed to keep a multiple of `round_to`).
fn l1_plan(graph: &Graph, groups: &ChannelGroups, ratio: f64, round_to: usize) -> PrunePlan {
    let mut plan = PrunePlan::new();
    for g in groups.prunable() {
        let mut score = vec![0f32; g.channels()];
        for p in g.producers() {
            for (s, v) in score.iter_mut().zip(producer_l1(graph, p)) {
                *s += v;
            }
        }
        let mut remove = ((g.channels() as f64 * ratio).round() as usize).min(g.channels() - 1);
        while remove > 0 && !(g.channels() - remove).is_multiple_of(round_to) {
            remove -= 1;
        }
        let mut order: Vec<usize> = (0..g.channels()).collect();
        order.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
        order.truncate(remove);
        plan.insert(g.id(), order);
    }
    plan
}

fn random_batch(graph: &Graph, batch: usize, device: &Device) -> Tensor<4> {
    let dims = graph.input_shape().batch_dims(batch);
    let n: usize = dims.iter().product();
    let mut state = 12345u64;
    let values: Vec<f32> = (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    Tensor::from_data(
        TensorData::new(values, [dims[0], dims[1], dims[2], dims[3]]),
        device,
    )
}

fn main() {
    let opts = BenchOptions::from_args();
    let args = parse(&opts.rest);
    let (warmup, reps) = opts.reps();
    println!(
        "# surgery benchmark\n{}, batch {}, kept channels rounded to multiples of {}, median of \
         {reps} runs after {warmup} warm-up",
        machine_line(),
        args.batch,
        args.round_to,
    );
    if args.profile {
        for backend in &opts.backends {
            let device = device(*backend);
            for name in &args.models {
                let graph = model(name, &device);
                let x = random_batch(&graph, args.batch, &device);
                let groups = ChannelGroups::new(&graph);
                // A pruned graph against a freshly built one of the same shapes: any cost of
                // the surgery itself (strided or copied weights) would show here.
                let plan = l1_plan(&graph, &groups, 0.5, 1);
                let pruned = prune(&graph, &groups, &plan).expect("plan applies");
                let fresh = speed_model(name, 0.5, &device);
                assert_eq!(count(&pruned).macs, count(&fresh).macs, "same shapes");
                let tp = time(&device, warmup, reps, || {
                    pruned.forward(x.clone()).expect("forward runs");
                });
                let tf = time(&device, warmup, reps, || {
                    fresh.forward(x.clone()).expect("forward runs");
                });
                println!(
                    "\n## {backend} {name}: pruned 50 % {:.1} ms (min {:.1}), freshly built at \
                     width 0.5 {:.1} ms (min {:.1})",
                    tp.ms(),
                    tp.min.as_secs_f64() * 1e3,
                    tf.ms(),
                    tf.min.as_secs_f64() * 1e3
                );
                for ratio in [0.5, 0.7] {
                    let plan = l1_plan(&graph, &groups, ratio, args.round_to);
                    let pruned = prune(&graph, &groups, &plan).expect("plan applies");
                    println!("\n## {backend} {name}, {:.0} % removed", ratio * 100.0);
                    profile(&graph, &pruned, &x, &device, reps);
                }
            }
        }
        return;
    }
    let mut surgery = Table::new(&[
        "backend",
        "model",
        "removed",
        "find groups (ms)",
        "plan + prune (ms)",
    ]);
    let mut speed = Table::new(&[
        "backend",
        "model",
        "removed",
        "params",
        "MACs/sample",
        "MAC ratio",
        "forward (ms)",
        "speed-up",
        "speed-up / MAC ratio",
        "folded (ms)",
        "folded speed-up",
        "folded speed-up / MAC ratio",
    ]);
    let mut folding: Vec<String> = Vec::new();
    for backend in &opts.backends {
        let device = device(*backend);
        for name in args.models.iter().copied() {
            let graph = model(name, &device);
            let x = random_batch(&graph, args.batch, &device);
            let full = count(&graph);
            let base = time(&device, warmup, reps, || {
                graph.forward(x.clone()).expect("forward runs");
            });
            // The inference form: batch norms folded, identities removed.
            let folded = xprune::inference_form(&graph).expect("folds").graph;
            let base_folded = time(&device, warmup, reps, || {
                folded.forward(x.clone()).expect("forward runs");
            });
            speed.row(vec![
                backend.to_string(),
                name.into(),
                "0 %".into(),
                format!("{:.3} M", full.params as f64 / 1e6),
                format!("{:.1} M", full.macs as f64 / 1e6),
                "1.00".into(),
                format!("{:.1}", base.ms()),
                "1.00".into(),
                "1.00".into(),
                format!("{:.1}", base_folded.ms()),
                "1.00".into(),
                "1.00".into(),
            ]);
            eprintln!(
                "{backend} {name}: folding alone runs the dense model {:.2}x faster",
                base.ms() / base_folded.ms()
            );
            folding.push(format!(
                "{backend} {name}: the inference form of the dense model runs {:.2}x faster \
                 ({:.1} -> {:.1} ms)",
                base.ms() / base_folded.ms(),
                base.ms(),
                base_folded.ms()
            ));
            eprintln!("{backend} {name}: unpruned {:.1} ms", base.ms());
            for ratio in RATIOS {
                let t0 = Instant::now();
                let groups = ChannelGroups::new(&graph);
                let find_ms = t0.elapsed().as_secs_f64() * 1e3;
                let plan = l1_plan(&graph, &groups, ratio, args.round_to);
                let surgery_time = time(&device, 1, reps, || {
                    let plan = l1_plan(&graph, &groups, ratio, args.round_to);
                    prune(&graph, &groups, &plan).expect("plan applies");
                });
                let pruned = prune(&graph, &groups, &plan).expect("plan applies");
                let c = count(&pruned);
                let t = time(&device, warmup, reps, || {
                    pruned.forward(x.clone()).expect("forward runs");
                });
                let folded = xprune::inference_form(&pruned).expect("folds").graph;
                let tf = time(&device, warmup, reps, || {
                    folded.forward(x.clone()).expect("forward runs");
                });
                let mac_ratio = full.mac_ratio(&c);
                let speedup = base.ms() / t.ms();
                let removed = format!("{:.0} %", ratio * 100.0);
                surgery.row(vec![
                    backend.to_string(),
                    name.into(),
                    removed.clone(),
                    format!("{find_ms:.2}"),
                    format!("{:.1}", surgery_time.ms()),
                ]);
                speed.row(vec![
                    backend.to_string(),
                    name.into(),
                    removed,
                    format!("{:.3} M", c.params as f64 / 1e6),
                    format!("{:.1} M", c.macs as f64 / 1e6),
                    format!("{mac_ratio:.2}"),
                    format!("{:.1}", t.ms()),
                    format!("{speedup:.2}"),
                    format!("{:.2}", speedup / mac_ratio),
                    format!("{:.1}", tf.ms()),
                    format!("{:.2}", base_folded.ms() / tf.ms()),
                    format!("{:.2}", base_folded.ms() / tf.ms() / mac_ratio),
                ]);
                eprintln!(
                    "{backend} {name} {ratio}: {:.1} ms, MAC ratio {mac_ratio:.2}, speed-up {speedup:.2}",
                    t.ms()
                );
            }
        }
    }
    println!(
        "\n## (a) surgery time\n\n{surgery}\n## (b) speed-up against MAC reduction\n\n{speed}"
    );
    println!(
        "\n### Markdown\n\n{}\n{}\n{}",
        surgery.markdown(),
        speed.markdown(),
        folding.join("\n")
    );
}
