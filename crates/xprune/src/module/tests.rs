//! User-defined Burn modules: traced, explained and pruned into their own type.

use super::*;
use crate::prune::{Scope, Selection};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::tensor::{Distribution, Tensor, TensorData};
use xprune_criteria::WeightNorm;

#[derive(Module, Debug)]
struct Block {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
}

impl Block {
    fn new(c: usize, device: &Device) -> Self {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device)
        };
        Self {
            conv1: conv(c, c),
            bn1: BatchNormConfig::new(c).init(device),
            conv2: conv(c, c),
            bn2: BatchNormConfig::new(c).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = burn::tensor::activation::relu(self.bn1.forward(self.conv1.forward(x.clone())));
        let y = self.bn2.forward(self.conv2.forward(y));
        burn::tensor::activation::relu(x + y)
    }
}

/// A small ResNet written the way Burn's book writes models.
#[derive(Module, Debug)]
struct Net {
    conv1: Conv2d,
    bn1: BatchNorm,
    relu: Relu,
    block: Block,
    pool: AdaptiveAvgPool2d,
    fc1: Linear,
    fc2: Linear,
}

impl Net {
    fn new(device: &Device) -> Self {
        Self {
            conv1: Conv2dConfig::new([3, 8], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device),
            bn1: BatchNormConfig::new(8).init(device),
            relu: Relu::new(),
            block: Block::new(8, device),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc1: LinearConfig::new(8, 16).init(device),
            fc2: LinearConfig::new(16, 4).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.relu.forward(self.bn1.forward(self.conv1.forward(x)));
        let x = self.block.forward(x);
        let x = self.pool.forward(x).flatten(1, 3);
        let x = self.relu.forward(self.fc1.forward(x));
        self.fc2.forward(x)
    }
}

/// Gives every batch norm non-trivial statistics, so that slicing them matters.
fn with_statistics<M: Module>(module: M, seed: u64) -> M {
    struct Stats(u64);
    impl burn::module::ModuleMapper for Stats {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<Tensor<D>>,
        ) -> burn::module::Param<Tensor<D>> {
            let (id, t, mapper) = param.consume();
            self.0 += 1;
            let n: usize = t.dims().iter().product();
            let values: Vec<f32> = (0..n)
                .map(|i| 0.6 + ((i as u64 * 7 + self.0 * 13) % 11) as f32 / 10.0)
                .collect();
            let device = t.device();
            let noise = Tensor::<D>::from_data(TensorData::new(values, t.dims()), &device);
            let shifted = t * noise.clone() + noise - 1.0;
            burn::module::Param::from_mapped_value(id, shifted, mapper)
        }
    }
    module.map(&mut Stats(seed))
}

fn input(device: &Device) -> Tensor<4> {
    Tensor::<4>::random([3, 3, 8, 8], Distribution::Normal(0.0, 1.0), device)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

fn traced(device: &Device) -> (Net, ModuleGraph<Net>) {
    let net = with_statistics(Net::new(device), 1);
    let mg = ModuleGraph::trace(net.clone(), [1, 3, 8, 8], |n, x| n.forward(x), device).unwrap();
    (net, mg)
}

#[test]
fn a_traced_module_has_module_paths_as_names_and_the_same_forward() {
    let device = Device::flex();
    let (net, mg) = traced(&device);
    let g = mg.graph();
    for name in ["conv1", "bn1", "block.conv1", "block.bn2", "fc1", "fc2"] {
        assert!(g.find(name).is_ok(), "no node `{name}` in\n{}", g.summary());
    }
    let p = mg.traced().param("block.bn2.running_var").unwrap();
    assert_eq!(
        (p.node.as_str(), p.role.as_str()),
        ("block.bn2", "running_var")
    );
    let x = input(&device);
    let want = values(net.forward(x.clone()));
    let got = g.forward(x).unwrap().to_vec();
    assert!(max_diff(&want, &got) < 1e-5, "{want:?} vs {got:?}");
}

#[test]
fn tracing_and_pruning_leave_the_callers_module_untouched() {
    let device = Device::flex();
    let (net, mg) = traced(&device);
    let before = values(net.bn1.running_mean.value());
    let mut pruner = Pruner::new(WeightNorm::l1()).selection(Selection::ratio(0.5));
    let (pruned, _) = mg.prune(&mut pruner, None).unwrap();
    drop(pruned);
    // The running statistics are still the caller's, on the caller's device.
    let after = net.bn1.running_mean.value();
    assert_eq!(after.device(), device);
    assert_eq!(values(after), before);
    assert_eq!(net.conv1.weight.dims(), [8, 3, 3, 3]);
}

#[test]
fn a_pruned_module_is_the_users_type_and_equals_the_masked_original() {
    let device = Device::flex();
    let (_, mg) = traced(&device);
    let mut pruner =
        Pruner::new(WeightNorm::l1()).selection(Selection::ratio(0.4).scope(Scope::PerGroup));
    let (pruned, outcome) = mg.prune(&mut pruner, None).unwrap();
    let small: Net = pruned.into_module().unwrap();
    assert!(
        small.conv1.weight.dims()[0] < 8,
        "{:?}",
        small.conv1.weight.dims()
    );
    assert!(small.fc1.weight.dims()[1] < 16);
    assert_eq!(
        small.bn1.running_var.value().dims()[0],
        small.conv1.weight.dims()[0]
    );

    let x = input(&device);
    let groups = pruner.groups(mg.graph()).unwrap();
    let masks = outcome
        .original_plan()
        .masks(mg.graph(), &groups, &device)
        .unwrap();
    let masked = mg
        .graph()
        .forward_masked(x.clone(), &masks)
        .unwrap()
        .to_vec();
    let got = values(small.forward(x));
    assert!(max_diff(&got, &masked) < 1e-4, "{got:?} vs {masked:?}");
}

#[test]
fn a_pruned_module_saved_loads_into_a_fresh_init() {
    let device = Device::flex();
    let (_, mg) = traced(&device);
    let mut pruner = Pruner::new(WeightNorm::l2()).selection(Selection::ratio(0.3));
    let (pruned, _) = mg.prune(&mut pruner, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pruned.safetensors");
    save_pruned(&pruned, &file).unwrap();
    let loaded = load_pruned(Net::new(&device), &file)
        .unwrap()
        .into_module()
        .unwrap();
    let small = pruned.into_module().unwrap();
    let x = input(&device);
    assert_eq!(values(loaded.forward(x.clone())), values(small.forward(x)));

    // Not a pruned-module file; a file of another architecture.
    std::fs::write(&file, b"junk").unwrap();
    assert!(matches!(
        load_pruned(Net::new(&device), &file),
        Err(ModuleError::File { .. })
    ));
    let other = Pruned {
        module: Block::new(4, &device),
        conv_groups: Vec::new(),
    };
    save_pruned(&other, &file).unwrap();
    let err = load_pruned(Net::new(&device), &file)
        .unwrap_err()
        .to_string();
    assert!(err.contains("the file has no tensor `conv1.bias`"), "{err}");
}

/// A MobileNet-style inverted residual: expand, depthwise, project.
#[derive(Module, Debug)]
struct Inverted {
    expand: Conv2d,
    bn1: BatchNorm,
    dw: Conv2d,
    bn2: BatchNorm,
    project: Conv2d,
    bn3: BatchNorm,
    pool: AdaptiveAvgPool2d,
    head: Linear,
}

impl Inverted {
    fn new(device: &Device) -> Self {
        let pw = |i, o| {
            Conv2dConfig::new([i, o], [1, 1])
                .with_bias(false)
                .init(device)
        };
        Self {
            expand: pw(4, 12),
            bn1: BatchNormConfig::new(12).init(device),
            dw: Conv2dConfig::new([12, 12], [3, 3])
                .with_groups(12)
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device),
            bn2: BatchNormConfig::new(12).init(device),
            project: pw(12, 4),
            bn3: BatchNormConfig::new(4).init(device),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            head: LinearConfig::new(4, 3).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let relu6 = |t: Tensor<4>| t.clamp(0.0, 6.0);
        let y = relu6(self.bn1.forward(self.expand.forward(x.clone())));
        let y = relu6(self.bn2.forward(self.dw.forward(y)));
        let y = self.bn3.forward(self.project.forward(y));
        self.head.forward(self.pool.forward(x + y).flatten(1, 3))
    }
}

#[test]
fn depthwise_convolutions_report_the_groups_to_set() {
    let device = Device::flex();
    let net = with_statistics(Inverted::new(&device), 2);
    let mg = ModuleGraph::trace(net, [1, 4, 6, 6], |n, x| n.forward(x), &device).unwrap();
    let mut pruner = Pruner::new(WeightNorm::l1()).selection(Selection::ratio(0.5));
    let (pruned, outcome) = mg.prune(&mut pruner, None).unwrap();
    let changes = pruned.conv_groups().to_vec();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!((changes[0].path.as_str(), changes[0].before), ("dw", 12));
    let err = pruned.clone().into_module().unwrap_err().to_string();
    assert!(err.contains("`dw.groups = "), "{err}");
    let small = pruned.into_module_with(|net, change| {
        if change.path == "dw" {
            net.dw.groups = change.groups;
        }
    });
    assert_eq!(small.dw.weight.dims()[0], changes[0].groups);
    let x = Tensor::<4>::random([2, 4, 6, 6], Distribution::Normal(0.0, 1.0), &device);
    let want = outcome.graph.forward(x.clone()).unwrap().to_vec();
    let got = values(small.forward(x));
    assert!(max_diff(&got, &want) < 1e-4, "{got:?} vs {want:?}");
}

#[derive(Module, Debug)]
struct Odd {
    fc: Linear,
}

#[test]
fn unsupported_operations_and_shared_modules_are_named() {
    let device = Device::flex();
    let odd = Odd {
        fc: LinearConfig::new(4, 4).init(&device),
    };
    let err = ModuleGraph::trace(odd.clone(), [1, 4], |m, x| m.fc.forward(x).log(), &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Float.Log") && err.contains("after module `fc`"),
        "{err}"
    );
    let err = ModuleGraph::trace(
        odd.clone(),
        [1, 4],
        |m, x| m.fc.forward(m.fc.forward(x)),
        &device,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("module `fc` is applied 2 times"), "{err}");
    let err = ModuleGraph::trace(odd, [1, 5], |m, x| m.fc.forward(x), &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("forward failed"), "{err}");
}

/// The same network written with xprune's `GraphBuilder`, with the module's weights.
fn built_by_hand(mg: &ModuleGraph<Net>, device: &Device) -> Graph {
    use xprune_graph::{Conv2dSpec, FeatureShape, GraphBuilder};
    let mut b = GraphBuilder::new(FeatureShape::spatial(3, 8, 8), device);
    let x = b.input();
    let x = b
        .conv2d("conv1", x, Conv2dSpec::new(8, 3).padding(1))
        .unwrap();
    let x = b.batch_norm("bn1", x).unwrap();
    let x = b.relu("r1", x).unwrap();
    let y = b
        .conv2d("block.conv1", x, Conv2dSpec::new(8, 3).padding(1).no_bias())
        .unwrap();
    let y = b.batch_norm("block.bn1", y).unwrap();
    let y = b.relu("r2", y).unwrap();
    let y = b
        .conv2d("block.conv2", y, Conv2dSpec::new(8, 3).padding(1).no_bias())
        .unwrap();
    let y = b.batch_norm("block.bn2", y).unwrap();
    let x = b.add("sum", &[x, y]).unwrap();
    let x = b.relu("r3", x).unwrap();
    let x = b.global_avg_pool("pool", x).unwrap();
    let x = b.flatten("flat", x).unwrap();
    let x = b.linear("fc1", x, 16).unwrap();
    let x = b.relu("r4", x).unwrap();
    let out = b.linear("fc2", x, 4).unwrap();
    let mut g = b.build(out).unwrap();
    for p in &mg.traced().params {
        let id = g.find(&p.node).unwrap();
        let source = mg.graph().find(&p.node).unwrap();
        let data = mg.graph().layers()[source]
            .params()
            .into_iter()
            .find(|t| t.role == p.role)
            .unwrap()
            .data;
        let mut layer = g.layers()[id].clone();
        layer.set_param(&p.role, data, device).unwrap();
        g = g.with_layer(id, layer).unwrap();
    }
    g
}

#[test]
fn relevance_of_a_traced_module_equals_that_of_the_graph_built_by_hand() {
    use xprune_lrp::{Attributor, Composite, Target};
    let device = Device::flex();
    let (_, mg) = traced(&device);
    let hand = built_by_hand(&mg, &device);
    let x = input(&device);
    for name in ["epsilon-plus-flat", "epsilon-alpha2-beta1", "epsilon-plus"] {
        let composite = Composite::named(name).unwrap();
        let a = Attributor::new(mg.graph(), &composite).unwrap();
        let b = Attributor::new(&hand, &composite).unwrap();
        let ra = a
            .attribute(x.clone(), Target::Class(1))
            .unwrap()
            .input
            .to_vec();
        let rb = b
            .attribute(x.clone(), Target::Class(1))
            .unwrap()
            .input
            .to_vec();
        assert!(max_diff(&ra, &rb) < 1e-6, "{name}: relevance differs");
        assert!(ra.iter().any(|v| *v != 0.0));
    }
    // Rules by module path reach the traced nodes.
    let composite = Composite::named("epsilon")
        .unwrap()
        .rule_for_node("block.conv2", xprune_lrp::Gamma::new(0.25).unwrap());
    assert!(Attributor::new(mg.graph(), &composite).is_ok());
}

#[test]
fn iterative_pruning_fine_tunes_the_users_module() {
    let device = Device::flex();
    let (_, mg) = traced(&device);
    let mut pruner = Pruner::new(WeightNorm::l1()).selection(Selection::ratio(0.5));
    let mut calls = 0;
    let (pruned, outcome) = mg
        .iterative(&mut pruner, None, 2, |pruned, step| {
            calls += 1;
            assert_eq!(step.step, calls);
            let mut net = pruned.into_module().map_err(|e| e.to_string())?;
            // The "fine-tuning": the head's weights scaled, which must reach the graph.
            net.fc2.weight = burn::module::Param::from_tensor(net.fc2.weight.val() * 0.5);
            Ok(net)
        })
        .unwrap();
    assert_eq!(calls, 2);
    let net = pruned.into_module().unwrap();
    let x = input(&device);
    let want = outcome.graph.forward(x.clone()).unwrap().to_vec();
    let got = values(net.forward(x));
    assert!(max_diff(&got, &want) < 1e-5, "{got:?} vs {want:?}");
    assert!(outcome.pruned.macs < outcome.original.macs);
}

/// Burn's activation and pooling modules, as a user strings them together.
#[derive(Module, Debug)]
struct Zoo {
    conv: Conv2d,
    prelu: burn::nn::PRelu,
    relu6: burn::nn::activation::Relu6,
    gelu: burn::nn::Gelu,
    leaky: burn::nn::LeakyRelu,
    hsig: burn::nn::HardSigmoid,
    hswish: burn::nn::activation::HardSwish,
    silu: burn::nn::activation::SiLU,
    tanh: burn::nn::Tanh,
    elu: burn::nn::Elu,
    sigmoid: burn::nn::Sigmoid,
    dropout: burn::nn::Dropout,
    max: burn::nn::pool::MaxPool2d,
    avg: burn::nn::pool::AvgPool2d,
    conv2: Conv2d,
    pool: AdaptiveAvgPool2d,
    fc: Linear,
}

impl Zoo {
    fn new(device: &Device) -> Self {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        Self {
            conv: conv(3, 8),
            prelu: burn::nn::PReluConfig::new()
                .with_num_parameters(8)
                .init(device),
            relu6: burn::nn::activation::Relu6::new(),
            gelu: burn::nn::Gelu::new(),
            leaky: burn::nn::LeakyReluConfig::new().init(),
            hsig: burn::nn::HardSigmoidConfig::new().init(),
            hswish: burn::nn::activation::HardSwish::new(),
            silu: burn::nn::activation::SiLU::new(),
            tanh: burn::nn::Tanh::new(),
            elu: burn::nn::EluConfig::new().with_alpha(0.7).init(),
            sigmoid: burn::nn::Sigmoid::new(),
            dropout: burn::nn::DropoutConfig::new(0.5).init(),
            max: burn::nn::pool::MaxPool2dConfig::new([2, 2])
                .with_strides([2, 2])
                .init(),
            avg: burn::nn::pool::AvgPool2dConfig::new([2, 2])
                .with_strides([1, 1])
                .init(),
            conv2: conv(8, 8),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(8, 3).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.prelu.forward(self.conv.forward(x));
        let x = self.gelu.forward(self.relu6.forward(x));
        let x = self.hsig.forward(self.leaky.forward(x.clone())) + self.hswish.forward(x);
        let x = self.tanh.forward(self.silu.forward(x));
        let x = self.elu.forward(x);
        // A squeeze-and-excitation gate.
        let gate = self.sigmoid.forward(self.pool.forward(x.clone()));
        let x = self.dropout.forward(x * gate);
        let x = self.avg.forward(self.max.forward(x));
        let x = self.conv2.forward(x);
        self.fc.forward(self.pool.forward(x).flatten(1, 3))
    }
}

#[test]
fn burns_activation_and_pooling_modules_trace_to_the_same_forward() {
    let device = Device::flex();
    let zoo = Zoo::new(&device);
    let mg = ModuleGraph::trace(zoo.clone(), [1, 3, 8, 8], |m, x| m.forward(x), &device)
        .unwrap_or_else(|e| panic!("{e}"));
    let x = input(&device);
    let want = values(zoo.forward(x.clone()));
    let got = mg.graph().forward(x).unwrap().to_vec();
    assert!(max_diff(&want, &got) < 1e-5, "{want:?} vs {got:?}");
    let mut pruner = Pruner::new(WeightNorm::l1()).selection(Selection::ratio(0.25));
    let (pruned, outcome) = mg.prune(&mut pruner, None).unwrap();
    let small = pruned.into_module().unwrap();
    let x = input(&device);
    let want = outcome.graph.forward(x.clone()).unwrap().to_vec();
    assert!(max_diff(&values(small.forward(x)), &want) < 1e-5);
}
