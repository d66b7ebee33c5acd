//! Interpretations-steered pruning on every backend: the differentiable MAC count and the
//! gate masks agree with flex, and the three phases run and give a valid plan.

use xprune::burn::module::Module;
use xprune::burn::tensor::{Device, Tensor, TensorData};
use xprune::io::data::synthetic::shapes10;
use xprune::isp::{GateLayout, PhaseConfig, SoftMacs};
use xprune::models::{ResNetCifarDepth, resnet_cifar};
use xprune::surgery::prune;
use xprune::{ChannelGroups, FeatureShape, Isp, IspConfig};
use xprune_tests::{assert_close, devices};

fn gates(layout: &GateLayout, device: &Device) -> Vec<Tensor<1>> {
    layout
        .groups()
        .iter()
        .enumerate()
        .map(|(g, group)| {
            let v: Vec<f32> = (0..group.channels)
                .map(|k| ((g * 7 + k * 3) % 10) as f32 / 9.0)
                .collect();
            Tensor::from_data(TensorData::new(v, [group.channels]), device)
        })
        .collect()
}

#[test]
fn isp_runs_on_every_backend_with_the_same_counts_and_masks() {
    let flex = Device::flex();
    let graph = resnet_cifar(
        ResNetCifarDepth::ResNet20,
        FeatureShape::spatial(3, 32, 32),
        10,
        0.25,
        &flex,
        3,
    )
    .unwrap();
    let groups = ChannelGroups::new(&graph);
    let layout = GateLayout::new(&graph, &groups).unwrap();
    let macs = SoftMacs::new(&graph, &groups, &layout).unwrap();
    let data = shapes10(16, 5).unwrap();
    let x = data.batch(&[0, 1, 2, 3], &flex).unwrap().inputs;
    let reference_kept = macs
        .kept(&gates(&layout, &flex))
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let masks = layout
        .masks(&graph, &groups, &gates(&layout, &flex))
        .unwrap();
    let reference_out = graph.forward_masked(x.clone(), &masks).unwrap().to_vec();
    for (name, device) in devices() {
        let g = graph.clone().to_device(&device);
        let kept = macs
            .kept(&gates(&layout, &device))
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_close(&kept, &reference_kept, 1e-6, 1.0, name);
        let m = layout.masks(&g, &groups, &gates(&layout, &device)).unwrap();
        let out = g
            .forward_masked(x.clone().to_device(&device), &m)
            .unwrap()
            .to_vec();
        assert_close(&out, &reference_out, 1e-3, 1e-2, name);
        let config = IspConfig {
            predictor: PhaseConfig::new(1, 16, 1e-3),
            selector: PhaseConfig::new(1, 16, 1e-3),
            gates: PhaseConfig::new(1, 16, 0.2),
            ..IspConfig::with_budget(0.6)
        };
        let outcome = Isp::new(config).run(&g, &groups, &data).unwrap();
        for p in &outcome.phases {
            assert!(
                p.epoch_losses.iter().all(|l| l.is_finite()),
                "{name}: {p:?}"
            );
        }
        let pruned = prune(&g, &groups, &outcome.plan).unwrap();
        let ratio = pruned.macs() as f64 / g.macs() as f64;
        assert!((ratio - outcome.kept_fraction).abs() < 1e-12, "{name}");
    }
}
