//! A model built on one backend gives the same outputs on `flex`, `ndarray` and `wgpu`.
//!
//! Models are built with seeded weights on flex, their batch-norm statistics and affine
//! parameters randomised (so that eval-mode batch norm is not the identity), then moved to
//! every backend twice: by saving and loading the graph file, and by `Module::to_device` of
//! a copy. Outputs (plain and channel-masked) must match flex within 1e-4 relative to the
//! largest output.

use xprune::burn::module::Module;
use xprune::burn::tensor::{Device, Tensor, TensorData};
use xprune::graph::tensor_util::data_to_f32;
use xprune::models::{ResNetCifarDepth, VggDepth, lenet5, resnet_cifar, vgg};
use xprune::{ChannelMasks, FeatureShape, Graph};
use xprune_tests::{assert_close, devices, max_abs};

/// Relative tolerance (to the largest reference output).
const REL: f32 = 1e-4;

/// A deterministic pseudo-random sequence in `[-1, 1)` (a 64-bit LCG).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// The graph with random batch-norm running statistics and affine parameters.
fn randomise_batch_norm(graph: &Graph, seed: u64) -> Graph {
    let tensors = graph.named_tensors();
    let device = graph.device();
    graph
        .with_tensors(
            |name| {
                let (_, data) = tensors
                    .iter()
                    .find(|(n, _)| n == name)
                    .expect("known tensor");
                let shape = data.shape().as_slice().to_vec();
                let n: usize = shape.iter().product();
                let r = values(n, seed ^ name.len() as u64 ^ (n as u64) << 8);
                let v: Option<Vec<f32>> = if name.ends_with(".running_mean") {
                    Some(r.iter().map(|x| 0.3 * x).collect())
                } else if name.ends_with(".running_var") {
                    Some(r.iter().map(|x| 0.75 + 0.5 * x).collect())
                } else if name.ends_with(".gamma") {
                    Some(r.iter().map(|x| 1.0 + 0.3 * x).collect())
                } else if name.ends_with(".beta") {
                    Some(r.iter().map(|x| 0.2 * x).collect())
                } else {
                    None
                };
                Ok(match v {
                    Some(v) => TensorData::new(v, shape),
                    None => data.clone(),
                })
            },
            &device,
            std::path::Path::new("randomised"),
        )
        .expect("same shapes")
}

fn input(batch: usize, device: &Device) -> Tensor<4> {
    Tensor::from_data(
        TensorData::new(values(batch * 3 * 32 * 32, 99), [batch, 3, 32, 32]),
        device,
    )
}

/// Masks that drop every third channel of the first two batch norms / relus found.
fn masks(graph: &Graph, device: &Device) -> ChannelMasks {
    let mut m = ChannelMasks::new();
    let ids: Vec<usize> = (0..graph.len())
        .filter(|&id| graph.layer(id).is_ok_and(|l| l.kind_name() == "relu"))
        .take(2)
        .collect();
    for id in ids {
        let c = graph.node(id).unwrap().shape.channels();
        let keep: Vec<bool> = (0..c).map(|i| i % 3 != 1).collect();
        m.insert_keep(graph, id, &keep, device).unwrap();
    }
    m
}

fn outputs(graph: &Graph, device: &Device) -> (Vec<f32>, Vec<f32>) {
    let x = input(4, device);
    let plain = graph.forward(x.clone()).unwrap().to_vec();
    let masked = graph
        .forward_masked(x, &masks(graph, device))
        .unwrap()
        .to_vec();
    (plain, masked)
}

fn check_model(name: &str, graph: Graph) {
    let flex = Device::flex();
    let graph = randomise_batch_norm(&graph, 7);
    let (want, want_masked) = outputs(&graph, &flex);
    assert!(max_abs(&want) > 1e-3, "{name}: degenerate outputs");
    assert_ne!(want, want_masked, "{name}: the masks change nothing");
    let dir = std::env::temp_dir().join(format!("xprune-backends-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("model.safetensors");
    graph.save(&file).unwrap();
    for (backend, device) in devices() {
        let loaded = Graph::load(&file, &device).unwrap();
        let moved = Graph::load(&file, &flex).unwrap().to_device(&device);
        for (how, g) in [("save/load", loaded), ("to_device", moved)] {
            let what = format!("{name} on {backend} ({how})");
            let (got, got_masked) = outputs(&g, &device);
            assert_close(&got, &want, REL, max_abs(&want), &what);
            assert_close(&got_masked, &want_masked, REL, max_abs(&want_masked), &what);
            // The tensors themselves arrive unchanged.
            for ((n, a), (_, b)) in g.named_tensors().into_iter().zip(graph.named_tensors()) {
                assert_eq!(data_to_f32(a), data_to_f32(b), "{what}: tensor {n}");
            }
        }
        println!("{name}: {backend} matches flex");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn vgg11_bn_matches_across_backends() {
    let shape = FeatureShape::spatial(3, 32, 32);
    check_model(
        "vgg11-bn",
        vgg(VggDepth::Vgg11, true, shape, 10, 0.125, &Device::flex(), 3).unwrap(),
    );
}

#[test]
fn resnet20_matches_across_backends() {
    let shape = FeatureShape::spatial(3, 32, 32);
    let g = resnet_cifar(
        ResNetCifarDepth::ResNet20,
        shape,
        10,
        0.5,
        &Device::flex(),
        5,
    )
    .unwrap();
    check_model("resnet20", g);
}

#[test]
fn lenet5_matches_across_backends() {
    let shape = FeatureShape::spatial(3, 32, 32);
    check_model("lenet5", lenet5(shape, 10, &Device::flex(), 1).unwrap());
}

#[test]
fn a_missing_wgpu_device_fails_unless_skipped_explicitly() {
    use xprune_dev_deps::wgpu::{INSTALL_HINT, SKIP_VAR, WgpuPolicy, policy};
    let missing = Err("no adapter".to_string());
    // No device, no opt-out: a failure saying how to install the driver or opt out.
    match policy(&missing, false, false) {
        WgpuPolicy::Fail(m) => {
            assert!(
                m.contains(INSTALL_HINT) && m.contains(&format!("{SKIP_VAR}=1")),
                "{m}"
            )
        }
        other => panic!("a missing device without opt-out gives {other:?}"),
    }
    // The explicit opt-out skips (with a message); CI's requirement overrides it.
    assert!(
        matches!(policy(&missing, false, true), WgpuPolicy::Skip(m) if m.contains("no adapter"))
    );
    assert!(
        matches!(policy(&missing, true, true), WgpuPolicy::Fail(m) if m.contains(INSTALL_HINT))
    );
    assert_eq!(policy(&Ok(()), false, false), WgpuPolicy::Run);
    assert_eq!(policy(&Ok(()), true, true), WgpuPolicy::Run);
}

#[test]
fn the_wgpu_probe_follows_the_ci_requirement() {
    // A missing device panics inside wgpu_device() unless XPRUNE_SKIP_WGPU=1 (and then not
    // with XPRUNE_REQUIRE_WGPU=1); a device that is returned must compute correctly.
    if let Some(d) = xprune_tests::wgpu_device() {
        let t = Tensor::<2>::from_floats([[1.0, -2.0], [3.0, 4.0]], &d);
        let v = data_to_f32(
            t.matmul(Tensor::<2>::from_floats([[1.0], [1.0]], &d))
                .to_data(),
        );
        assert_eq!(v, vec![-1.0, 7.0]);
    }
}
