//! Golden tests against Zennit: `tests/fixtures/lrp/make_fixtures.py` built a small VGG-like
//! and a ResNet-like network in PyTorch and saved their weights, an input batch, labels and
//! Zennit's input relevance for every composite. The same networks are rebuilt here with
//! `GraphBuilder` (same node names), loaded with the saved weights, and must give the same
//! logits and relevance (within 1e-4 of the largest |R|).

mod common;

use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use common::{host, rel_err};
use safetensors::SafeTensors;
use std::path::PathBuf;
use xprune_graph::{Conv2dSpec, FeatureShape, Graph, GraphBuilder, Padding};
use xprune_lrp::{Attributor, Bound, COMPOSITE_NAMES, Composite, Target};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/lrp")
        .join(name)
}

struct Fixture {
    bytes: Vec<u8>,
    path: PathBuf,
}

impl Fixture {
    fn open(name: &str) -> Self {
        let path = fixture(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self { bytes, path }
    }

    fn tensors(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).unwrap()
    }

    fn data(&self, name: &str) -> TensorData {
        let st = self.tensors();
        let view = st
            .tensor(name)
            .unwrap_or_else(|_| panic!("{}: no tensor `{name}`", self.path.display()));
        let dtype = match view.dtype() {
            safetensors::Dtype::F32 => DType::F32,
            safetensors::Dtype::I64 => DType::I64,
            other => panic!("unexpected dtype {other:?}"),
        };
        TensorData::from_bytes_vec(view.data().to_vec(), view.shape().to_vec(), dtype)
    }

    fn f32s(&self, name: &str) -> Vec<f32> {
        self.data(name)
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap()
    }

    fn load(&self, graph: Graph, d: &Device) -> Graph {
        graph
            .with_tensors(|name| Ok(self.data(name)), d, &self.path)
            .unwrap()
    }
}

fn vgg_like(d: &Device) -> Graph {
    let mut b = GraphBuilder::new(FeatureShape::spatial(3, 16, 16), d);
    let x = b
        .conv2d("conv1", 0, Conv2dSpec::new(8, 3).padding(1))
        .unwrap();
    let x = b.batch_norm("bn1", x).unwrap();
    let x = b.relu("relu1", x).unwrap();
    let x = b.max_pool2d("pool1", x, 2, 2).unwrap();
    let x = b
        .conv2d("conv2", x, Conv2dSpec::new(16, 3).padding(1))
        .unwrap();
    let x = b.batch_norm("bn2", x).unwrap();
    let x = b.relu("relu2", x).unwrap();
    let x = b.max_pool2d("pool2", x, 2, 2).unwrap();
    let x = b
        .conv2d(
            "conv3",
            x,
            Conv2dSpec::new(16, 3).padding(2).dilation(2).groups(4),
        )
        .unwrap();
    let x = b.batch_norm("bn3", x).unwrap();
    let x = b.relu("relu3", x).unwrap();
    let x = b.avg_pool2d("pool3", x, 2, 2).unwrap();
    let x = b.flatten("flatten", x).unwrap();
    let x = b.linear("fc1", x, 32).unwrap();
    let x = b.relu("relu4", x).unwrap();
    let x = b.dropout("drop", x, 0.5).unwrap();
    let x = b.linear("fc2", x, 10).unwrap();
    b.build(x).unwrap()
}

fn resnet_like(d: &Device) -> Graph {
    let mut b = GraphBuilder::new(FeatureShape::spatial(3, 16, 16), d);
    let x = b
        .conv2d("stem", 0, Conv2dSpec::new(8, 3).padding(1))
        .unwrap();
    let x = b.batch_norm("stem_bn", x).unwrap();
    let x = b.relu("relu", x).unwrap();
    // layer1: identity shortcut
    let h = b
        .conv2d(
            "layer1.conv_a",
            x,
            Conv2dSpec::new(8, 3).padding(1).no_bias(),
        )
        .unwrap();
    let h = b.batch_norm("layer1.bn_a", h).unwrap();
    let h = b.relu("layer1.relu_a", h).unwrap();
    let h = b
        .conv2d(
            "layer1.conv_b",
            h,
            Conv2dSpec::new(8, 3).padding(1).no_bias(),
        )
        .unwrap();
    let h = b.batch_norm("layer1.bn_b", h).unwrap();
    let s = b.add("layer1.add", &[x, h]).unwrap();
    let x = b.relu("layer1.relu", s).unwrap();
    // layer2: stride 2, asymmetric padding (bottom/right), projection shortcut
    let pad = Padding::Explicit([0, 0, 1, 1]);
    let h = b
        .conv2d(
            "layer2.conv_a",
            x,
            Conv2dSpec::new(16, 3).stride(2).with_padding(pad).no_bias(),
        )
        .unwrap();
    let h = b.batch_norm("layer2.bn_a", h).unwrap();
    let h = b.relu("layer2.relu_a", h).unwrap();
    let h = b
        .conv2d(
            "layer2.conv_b",
            h,
            Conv2dSpec::new(16, 3).padding(1).no_bias(),
        )
        .unwrap();
    let h = b.batch_norm("layer2.bn_b", h).unwrap();
    let sc = b
        .conv2d(
            "layer2.shortcut",
            x,
            Conv2dSpec::new(16, 1).stride(2).no_bias(),
        )
        .unwrap();
    let sc = b.batch_norm("layer2.shortcut_bn", sc).unwrap();
    let s = b.add("layer2.add", &[sc, h]).unwrap();
    let x = b.relu("layer2.relu", s).unwrap();
    let x = b.global_avg_pool("pool", x).unwrap();
    let x = b.flatten("flatten", x).unwrap();
    let x = b.linear("fc", x, 10).unwrap();
    b.build(x).unwrap()
}

fn composite(name: &str, f: &Fixture) -> Composite {
    if name == "epsilon-gamma-box" {
        Composite::epsilon_gamma_box_bounds(
            Bound::PerChannel(f.f32s("low")),
            Bound::PerChannel(f.f32s("high")),
        )
        .unwrap()
    } else {
        Composite::named(name).unwrap()
    }
}

fn golden(file: &str, build: fn(&Device) -> Graph) {
    let d = Device::flex();
    let f = Fixture::open(file);
    let graph = f.load(build(&d), &d);
    let x: Tensor<4> = Tensor::from_data(f.data("input"), &d);
    let labels: Tensor<1, Int> = Tensor::from_data(f.data("labels"), &d);
    let logits = host(&graph.logits(x.clone()).unwrap());
    let want: Vec<f64> = f.f32s("logits").iter().map(|v| *v as f64).collect();
    let err = rel_err(&logits, &want);
    assert!(
        err < 1e-5,
        "{file}: logits differ from PyTorch's (relative {err:e})"
    );
    // Zennit's composites (attnlrp and cp-lrp differ from epsilon only on attention, which
    // these networks do not have; checked equal to it below).
    let zennit = COMPOSITE_NAMES
        .iter()
        .filter(|n| !["attnlrp", "cp-lrp"].contains(n));
    for name in zennit {
        let c = composite(name, &f);
        let attributor = Attributor::new(&graph, &c).unwrap();
        let a = attributor
            .attribute(x.clone(), Target::Labels(labels.clone()))
            .unwrap();
        let got: Vec<f64> = a.input.to_vec().iter().map(|v| *v as f64).collect();
        let want: Vec<f64> = f
            .f32s(&format!("relevance.{name}"))
            .iter()
            .map(|v| *v as f64)
            .collect();
        let err = rel_err(&got, &want);
        println!("{file} {name}: relative error {err:.2e}");
        assert!(
            err < 1e-4,
            "{file}, composite {name}: max |R - R_zennit| / max |R_zennit| = {err:e}"
        );
        assert!(
            want.iter().any(|v| v.abs() > 1e-5),
            "{file}, {name}: the reference is all zeros"
        );
    }
    let relevance = |c: &Composite| {
        Attributor::new(&graph, c)
            .unwrap()
            .attribute(x.clone(), Target::Labels(labels.clone()))
            .unwrap()
            .input
            .to_vec()
    };
    let epsilon = relevance(&Composite::named("epsilon").unwrap());
    for name in ["attnlrp", "cp-lrp"] {
        assert_eq!(
            relevance(&Composite::named(name).unwrap()),
            epsilon,
            "{file}: {name} is epsilon on a network without attention"
        );
    }
}

#[test]
fn vgg_like_matches_zennit() {
    golden("vgg_like.safetensors", vgg_like);
}

#[test]
fn resnet_like_matches_zennit() {
    golden("resnet_like.safetensors", resnet_like);
}
