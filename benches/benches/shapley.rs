//! Shapley value estimation: prefix caching + batched coalitions against the naive way (one
//! full forward pass per coalition), at the same permutations, on the 64-channel convolution
//! of a small digits CNN with 100 reference images.
//!
//! `cargo bench -p xprune-benches --bench shapley -- [--backend flex|wgpu|all] [--quick]`

use xprune::burn::tensor::Device;
use xprune::criteria::shapley::{
    GraphGame, NaiveGraphGame, SampleAggregate, ShapleyMethod, shapley_values,
};
use xprune::graph::{Conv2dSpec, Dataset, FeatureShape, Graph, GraphBuilder};
use xprune::surgery::ChannelGroups;
use xprune_benches::{BenchOptions, Table, device, machine_line, time};

/// conv(1->32) - relu - pool - conv(32->64) - relu - pool - fc(128) - relu - fc(10), 28x28.
fn digits_cnn(device: &Device) -> Graph {
    let mut b = GraphBuilder::new(FeatureShape::spatial(1, 28, 28), device).seed(1);
    let x = b
        .conv2d("conv1", b.input(), Conv2dSpec::new(32, 3).padding(1))
        .unwrap();
    let x = b.relu("relu1", x).unwrap();
    let x = b.max_pool2d("pool1", x, 2, 2).unwrap();
    let x = b
        .conv2d("conv2", x, Conv2dSpec::new(64, 3).padding(1))
        .unwrap();
    let x = b.relu("relu2", x).unwrap();
    let x = b.max_pool2d("pool2", x, 2, 2).unwrap();
    let x = b.flatten("flatten", x).unwrap();
    let x = b.linear("fc1", x, 128).unwrap();
    let x = b.relu("relu3", x).unwrap();
    let out = b.linear("fc2", x, 10).unwrap();
    b.build(out).unwrap()
}

fn images(n: usize) -> Dataset {
    // Deterministic pseudo-images: the benchmark measures cost, not accuracy.
    let mut state = 12345u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    let features: Vec<f32> = (0..n * 28 * 28).map(|_| next()).collect();
    let labels: Vec<i64> = (0..n).map(|i| (i % 10) as i64).collect();
    Dataset::new(features, labels, FeatureShape::spatial(1, 28, 28), 10).unwrap()
}

fn main() {
    let opts = BenchOptions::from_args();
    let (warmup, reps) = if opts.quick { (0, 1) } else { (1, 3) };
    let permutations = 5;
    let samples = 100;
    let data = images(samples);
    let method = ShapleyMethod::Permutations {
        permutations,
        antithetic: false,
        truncation: None,
    };
    println!(
        "# Shapley values of conv2 (64 channels), {permutations} permutations, {samples} images"
    );
    println!("# {}", machine_line());
    let mut table = Table::new(&[
        "backend",
        "naive (ms)",
        "cached + batched (ms)",
        "speed-up",
        "coalitions",
        "max |difference|",
    ]);
    for backend in &opts.backends {
        let dev = device(*backend);
        let graph = digits_cnn(&dev);
        let groups = ChannelGroups::new(&graph);
        let group = groups.find("conv2").expect("conv2 group");
        let mut naive_values = Vec::new();
        let naive = time(&dev, warmup, reps, || {
            let mut game = NaiveGraphGame::new(&graph, group, &data, samples, &dev).unwrap();
            naive_values = shapley_values(&mut game, &method, SampleAggregate::Mean, 1, 7)
                .unwrap()
                .values;
        });
        let mut fast_values = Vec::new();
        let mut evaluations = 0;
        let fast = time(&dev, warmup, reps, || {
            let mut game = GraphGame::new(&graph, group, &data, samples, &dev).unwrap();
            let r = shapley_values(&mut game, &method, SampleAggregate::Mean, 16, 7).unwrap();
            evaluations = r.evaluations;
            fast_values = r.values;
        });
        let diff = naive_values
            .iter()
            .zip(&fast_values)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        table.row(vec![
            backend.to_string(),
            format!("{:.0}", naive.ms()),
            format!("{:.0}", fast.ms()),
            format!("{:.1}x", naive.ms() / fast.ms()),
            evaluations.to_string(),
            format!("{diff:.1e}"),
        ]);
    }
    println!("{table}");
    println!("{}", table.markdown());
}
