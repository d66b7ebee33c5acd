//! A user's own Burn model (a `#[derive(Module)]` struct with a hand-written `forward`),
//! traced, explained and pruned back into its own type on every backend.

use xprune::burn::module::Module;
use xprune::burn::nn::conv::{Conv2d, Conv2dConfig};
use xprune::burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use xprune::burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use xprune::burn::tensor::{Device, Tensor, TensorData};
use xprune::lrp::{Attributor, Composite, Target};
use xprune::{ModuleGraph, Pruner, Scope, Selection, WeightNorm};
use xprune_tests::{assert_close, devices};

/// Stem, a residual pair of convolutions, an inverted block with a depthwise convolution,
/// and a head, as a Burn user writes them.
#[derive(Module, Debug)]
struct UserNet {
    stem: Conv2d,
    stem_bn: BatchNorm,
    conv_a: Conv2d,
    bn_a: BatchNorm,
    expand: Conv2d,
    dw: Conv2d,
    dw_bn: BatchNorm,
    project: Conv2d,
    pool: AdaptiveAvgPool2d,
    head: Linear,
}

impl UserNet {
    fn new(device: &Device) -> Self {
        let pad = PaddingConfig2d::Explicit(1, 1, 1, 1);
        Self {
            stem: Conv2dConfig::new([3, 8], [3, 3])
                .with_padding(pad.clone())
                .init(device),
            stem_bn: BatchNormConfig::new(8).init(device),
            conv_a: Conv2dConfig::new([8, 8], [3, 3])
                .with_padding(pad.clone())
                .init(device),
            bn_a: BatchNormConfig::new(8).init(device),
            expand: Conv2dConfig::new([8, 16], [1, 1]).init(device),
            dw: Conv2dConfig::new([16, 16], [3, 3])
                .with_groups(16)
                .with_padding(pad)
                .init(device),
            dw_bn: BatchNormConfig::new(16).init(device),
            project: Conv2dConfig::new([16, 8], [1, 1]).init(device),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            head: LinearConfig::new(8, 5).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        use xprune::burn::tensor::activation::relu;
        let x = relu(self.stem_bn.forward(self.stem.forward(x)));
        let x = relu(x.clone() + self.bn_a.forward(self.conv_a.forward(x)));
        let y = self.expand.forward(x.clone()).clamp(0.0, 6.0);
        let y = relu(self.dw_bn.forward(self.dw.forward(y)));
        let x = x + self.project.forward(y);
        self.head.forward(self.pool.forward(x).flatten(1, 3))
    }
}

/// Deterministic input values.
fn input(device: &Device) -> Tensor<4> {
    let n = 2 * 3 * 8 * 8;
    let v: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    Tensor::from_data(TensorData::new(v, [2, 3, 8, 8]), device)
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn a_users_module_is_traced_explained_and_pruned_on_every_backend() {
    // One set of weights for every backend.
    let reference = UserNet::new(&Device::flex());
    let mut first: Option<(Vec<f32>, Vec<f32>)> = None;
    for (name, device) in devices() {
        // `valid()` first: Burn's running statistics are shared between clones and would move too.
        let net = reference.valid().to_device(&device);
        let traced = ModuleGraph::trace(net.clone(), [1, 3, 8, 8], |m, x| m.forward(x), &device)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let x = input(&device);
        assert_close(
            &traced.graph().forward(x.clone()).unwrap().to_vec(),
            &to_vec(net.forward(x.clone())),
            1e-4,
            1e-4,
            &format!("{name}: traced forward"),
        );

        let composite = Composite::named("epsilon-plus-flat").unwrap();
        let relevance = Attributor::new(traced.graph(), &composite)
            .unwrap()
            .attribute(x.clone(), Target::Class(2))
            .unwrap()
            .input
            .to_vec();

        let mut pruner =
            Pruner::new(WeightNorm::l1()).selection(Selection::ratio(0.25).scope(Scope::PerGroup));
        let (pruned, outcome) = traced.prune(&mut pruner, None).unwrap();
        let changes = pruned.conv_groups().to_vec();
        assert_eq!(changes.len(), 1, "{name}: {changes:?}");
        let small = pruned.into_module_with(|m, c| {
            if c.path == "dw" {
                m.dw.groups = c.groups;
            }
        });
        assert!(small.expand.weight.dims()[0] < 16, "{name}");
        let got = to_vec(small.forward(x.clone()));
        assert_close(
            &got,
            &outcome.graph.forward(x).unwrap().to_vec(),
            1e-4,
            1e-4,
            &format!("{name}: pruned module vs pruned graph"),
        );
        match &first {
            None => first = Some((relevance, got)),
            Some((r0, g0)) => {
                assert_close(
                    &relevance,
                    r0,
                    1e-3,
                    1e-4,
                    &format!("{name}: relevance vs flex"),
                );
                assert_close(
                    &got,
                    g0,
                    1e-3,
                    1e-4,
                    &format!("{name}: pruned output vs flex"),
                );
            }
        }
    }
}
