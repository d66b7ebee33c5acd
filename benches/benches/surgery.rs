//! Surgery benchmark: (a) the time to find groups and remove channels from ResNet-56 and
//! VGG-16-BN, and (b) the measured inference speed-up of the pruned models against their MAC
//! reduction, at 30/50/70 % of the channels of every prunable group removed (chosen by the
//! L1 norm of the producers' weights), batch 32, CIFAR shapes.
//!
//! `cargo bench -p xprune-benches --bench surgery -- --backend flex --backend wgpu [--quick]`

use std::time::Instant;
use xprune::burn::tensor::{Device, Tensor, TensorData};
use xprune::graph::tensor_util::to_vec;
use xprune::graph::{FeatureShape, Graph, Layer};
use xprune::models::{ResNetCifarDepth, VggDepth, resnet_cifar, vgg};
use xprune::surgery::{ChannelGroups, PrunePlan, count, prune};
use xprune_benches::{BenchOptions, Table, device, machine_line, time};

const BATCH: usize = 32;
const RATIOS: [f64; 3] = [0.3, 0.5, 0.7];

fn model(name: &str, device: &Device) -> Graph {
    let cifar = FeatureShape::spatial(3, 32, 32);
    match name {
        "ResNet-56" => resnet_cifar(ResNetCifarDepth::ResNet56, cifar, 10, 1.0, device, 1),
        "VGG-16-BN" => vgg(VggDepth::Vgg16, true, cifar, 10, 1.0, device, 1),
        _ => unreachable!("known model"),
    }
    .expect("reference model builds")
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
/// norm over the group's producers.
fn l1_plan(graph: &Graph, groups: &ChannelGroups, ratio: f64) -> PrunePlan {
    let mut plan = PrunePlan::new();
    for g in groups.prunable() {
        let mut score = vec![0f32; g.channels()];
        for p in g.producers() {
            for (s, v) in score.iter_mut().zip(producer_l1(graph, p)) {
                *s += v;
            }
        }
        let remove = ((g.channels() as f64 * ratio).round() as usize).min(g.channels() - 1);
        let mut order: Vec<usize> = (0..g.channels()).collect();
        order.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
        order.truncate(remove);
        plan.insert(g.id(), order);
    }
    plan
}

fn random_batch(graph: &Graph, device: &Device) -> Tensor<4> {
    let dims = graph.input_shape().batch_dims(BATCH);
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
    let (warmup, reps) = opts.reps();
    println!(
        "# surgery benchmark\n{}, batch {BATCH}, median of {reps} runs after {warmup} warm-up",
        machine_line()
    );
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
    ]);
    for backend in &opts.backends {
        let device = device(*backend);
        for name in ["ResNet-56", "VGG-16-BN"] {
            let graph = model(name, &device);
            let x = random_batch(&graph, &device);
            let full = count(&graph);
            let base = time(&device, warmup, reps, || {
                graph.forward(x.clone()).expect("forward runs");
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
            ]);
            eprintln!("{backend} {name}: unpruned {:.1} ms", base.ms());
            for ratio in RATIOS {
                let t0 = Instant::now();
                let groups = ChannelGroups::new(&graph);
                let find_ms = t0.elapsed().as_secs_f64() * 1e3;
                let plan = l1_plan(&graph, &groups, ratio);
                let surgery_time = time(&device, 1, reps, || {
                    let plan = l1_plan(&graph, &groups, ratio);
                    prune(&graph, &groups, &plan).expect("plan applies");
                });
                let pruned = prune(&graph, &groups, &plan).expect("plan applies");
                let c = count(&pruned);
                let t = time(&device, warmup, reps, || {
                    pruned.forward(x.clone()).expect("forward runs");
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
        "\n### Markdown\n\n{}\n{}",
        surgery.markdown(),
        speed.markdown()
    );
}
