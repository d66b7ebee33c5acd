//! LRP attribution, criterion scores and surgery give the same results on `flex`, `ndarray`
//! and `wgpu` (software Vulkan in CI) within 1e-4 of the largest value.

use xprune::burn::tensor::{Device, Distribution, Tensor};
use xprune::criteria::{Criterion, LrpCriterion, ScoringContext, Taylor};
use xprune::lrp::{Composite, Target, attribute};
use xprune::models::{ResNetCifarDepth, resnet_cifar};
use xprune::{ChannelGroups, Dataset, FeatureShape, Graph};
use xprune_tests::{assert_close, devices, max_abs};

const REL: f32 = 1e-4;

fn model(device: &Device) -> Graph {
    resnet_cifar(
        ResNetCifarDepth::ResNet20,
        FeatureShape::spatial(3, 16, 16),
        10,
        0.25,
        device,
        3,
    )
    .unwrap()
}

fn images(device: &Device) -> Tensor<4> {
    // Drawn on flex so every backend sees the same numbers.
    Tensor::<4>::random(
        [4, 3, 16, 16],
        Distribution::Normal(0.0, 1.0),
        &Device::flex(),
    )
    .to_device(device)
}

#[test]
fn lrp_attribution_is_the_same_on_every_backend() {
    let flex = Device::flex();
    let x = images(&flex);
    for name in ["epsilon-plus-flat", "epsilon-gamma-box"] {
        let composite = Composite::named(name).unwrap();
        let want = attribute(&model(&flex), x.clone(), Target::ArgMax, &composite).unwrap();
        let want = want.input.to_vec();
        assert!(max_abs(&want) > 0.0, "{name}: zero relevance");
        for (backend, device) in devices() {
            let got = attribute(
                &model(&device),
                x.clone().to_device(&device),
                Target::ArgMax,
                &composite,
            )
            .unwrap();
            assert_close(
                &got.input.to_vec(),
                &want,
                REL,
                max_abs(&want),
                &format!("{name} on {backend}"),
            );
        }
    }
}

fn scores(criterion: &dyn Criterion, device: &Device, data: &Dataset) -> Vec<f32> {
    let graph = model(device);
    let groups = ChannelGroups::new(&graph);
    let ctx = ScoringContext::new(&graph, &groups, device)
        .with_data(data)
        .with_seed(1);
    let s = criterion.score(&ctx).unwrap();
    s.iter()
        .flat_map(|(_, g)| g.values.iter().map(|v| *v as f32).collect::<Vec<_>>())
        .collect()
}

#[test]
fn criterion_scores_are_the_same_on_every_backend() {
    let flex = Device::flex();
    let x = xprune::graph::tensor_util::to_vec(&images(&flex));
    let data = Dataset::new(x, vec![0, 1, 2, 3], FeatureShape::spatial(3, 16, 16), 10).unwrap();
    let criteria: Vec<(&str, Box<dyn Criterion>)> = vec![
        ("lrp", Box::new(LrpCriterion::default())),
        ("taylor", Box::new(Taylor::default())),
    ];
    for (name, criterion) in &criteria {
        let want = scores(criterion.as_ref(), &flex, &data);
        for (backend, device) in devices() {
            let got = scores(criterion.as_ref(), &device, &data);
            assert_close(
                &got,
                &want,
                REL,
                max_abs(&want),
                &format!("{name} scores on {backend}"),
            );
        }
    }
}
