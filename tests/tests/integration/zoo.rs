//! The CNN zoo: eleven architectures built from torchvision's own model definitions (reduced
//! width, 64x64 inputs, random weights), exported by PyTorch to ONNX (opset 17) by
//! `tests/fixtures/zoo/make_zoo.py`, with onnxruntime's outputs on three inputs.
//!
//! Every model must import with outputs equal to onnxruntime's (1e-4 relative), explain with
//! every composite, group, prune at 30% with every criterion with the pruned model equal to
//! the masked one, and export back to ONNX (re-imported exactly, and at ratio 0 with the
//! original outputs). Set `XPRUNE_ZOO_EXPORT_DIR` to write the exported models there and
//! check them with onnxruntime: `python3 tests/fixtures/zoo/make_zoo.py --check-exported DIR`.

use std::path::{Path, PathBuf};
use xprune::burn::tensor::Device;
use xprune::io::onnx::import_onnx;
use xprune::{Activation, Graph};

pub fn zoo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/zoo")
}

pub const MODELS: [&str; 11] = [
    "resnet18",
    "resnet50",
    "densenet121",
    "squeezenet1_1",
    "googlenet",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "shufflenet_v2_x1_0",
    "regnet_y_400mf",
    "convnext_tiny",
];

/// `(input, output)` of a model's fixture as host data with their dimensions.
pub fn reference(name: &str) -> ((Vec<usize>, Vec<f32>), (Vec<usize>, Vec<f32>)) {
    let bytes = std::fs::read(zoo_dir().join(format!("{name}.safetensors"))).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let get = |n: &str| {
        let v = st.tensor(n).unwrap();
        let values = v
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        (v.shape().to_vec(), values)
    };
    (get("input"), get("output"))
}

fn run(graph: &Graph, dims: &[usize], x: &[f32], device: &Device) -> Vec<f32> {
    let input = Activation::from_vec(x.to_vec(), dims, device).unwrap();
    graph.forward(input).unwrap().to_vec()
}

#[test]
fn every_architecture_imports_with_onnxruntime_outputs() {
    let device = Device::flex();
    let mut failures = Vec::new();
    for name in MODELS {
        let graph = match import_onnx(zoo_dir().join(format!("{name}.onnx")), &device) {
            Ok(g) => g,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let ((xd, x), (_, y)) = reference(name);
        let got = run(&graph, &xd, &x, &device);
        let rel = xprune_tests::rel_diff(&got, &y);
        println!("{name}: {} nodes, relative difference {rel:.2e}", graph.len());
        if rel > 1e-4 {
            failures.push(format!("{name}: outputs differ by {rel:e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
