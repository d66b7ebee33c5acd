//! A vision transformer exported by PyTorch (`tests/fixtures/vit/vit_eager.onnx`, attention
//! written as Hugging Face's eager mode computes it; see `make_fixtures.py` there): it imports
//! into xprune's transformer kinds with onnxruntime's outputs (1e-4 relative), exports back and
//! re-imports with the same outputs; so does torchvision's `VisionTransformer`
//! (`vit_torchvision.onnx`, `nn.MultiheadAttention` as PyTorch exports it) and timm's
//! (`vit_timm.onnx`, a packed query-key-value projection), and an xprune-built ViT round-trips
//! through ONNX too.

use burn::tensor::Device;
use std::path::{Path, PathBuf};
use xprune_graph::{Activation, FeatureShape, Graph};
use xprune_io::onnx::{export_onnx_bytes, import_onnx, import_onnx_bytes};
use xprune_models::{VitConfig, vit};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/vit")
}

fn tensor(st: &safetensors::SafeTensors<'_>, name: &str) -> (Vec<usize>, Vec<f32>) {
    let view = st.tensor(name).unwrap();
    let values = view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (view.shape().to_vec(), values)
}

fn rel(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
        / scale
}

fn run(g: &Graph, dims: &[usize], x: &[f32]) -> Vec<f32> {
    let input = Activation::from_vec(x.to_vec(), dims, &Device::flex()).unwrap();
    g.forward(input).unwrap().to_vec()
}

fn count(g: &Graph, kind: &str) -> usize {
    g.nodes()
        .iter()
        .filter(|n| n.op.kind_name() == kind)
        .count()
}

/// A PyTorch-exported ViT imports into the transformer kinds with onnxruntime's outputs and
/// round-trips through xprune's export.
fn imports_with_onnxruntime_outputs_and_round_trips(name: &str) {
    let device = Device::flex();
    let g = import_onnx(fixtures().join(format!("{name}.onnx")), &device)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    for (kind, n) in [
        ("tokens", 1),
        ("class_token", 1),
        ("position_embedding", 1),
        ("attention", 2),
        ("layer_norm", 5),
        ("gelu", 2),
        ("select_token", 1),
        ("linear", 13),
    ] {
        assert_eq!(count(&g, kind), n, "{name}: {kind} nodes in\n{g}");
    }
    let bytes = std::fs::read(fixtures().join(format!("{name}.safetensors"))).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let ((xd, x), (_, y)) = (tensor(&st, "input"), tensor(&st, "output"));
    let got = run(&g, &xd, &x);
    let err = rel(&got, &y);
    assert!(err < 1e-4, "{name}: xprune vs onnxruntime: {err:e}");
    let back = import_onnx_bytes(&export_onnx_bytes(&g).unwrap(), &device).unwrap();
    assert_eq!(
        back.len(),
        g.len(),
        "{name}: the re-import has the same nodes"
    );
    assert!(
        rel(&run(&back, &xd, &x), &got) < 1e-6,
        "{name}: the re-imported model differs"
    );
}

/// Attention as Hugging Face's eager mode writes it.
#[test]
fn pytorch_vit_imports_with_onnxruntime_outputs_and_round_trips() {
    imports_with_onnxruntime_outputs_and_round_trips("vit_eager");
}

#[test]
fn torchvision_vit_imports_with_onnxruntime_outputs_and_round_trips() {
    imports_with_onnxruntime_outputs_and_round_trips("vit_torchvision");
}

/// timm's ViT: its packed query-key-value projection, block 0 through
/// `scaled_dot_product_attention`, block 1 through timm's explicit attention.
#[test]
fn timm_vit_imports_with_onnxruntime_outputs_and_round_trips() {
    imports_with_onnxruntime_outputs_and_round_trips("vit_timm");
}

#[test]
fn xprune_vit_exports_and_reimports_exactly() {
    let device = Device::flex();
    let config = VitConfig {
        patch: 4,
        dim: 16,
        depth: 2,
        heads: 4,
        mlp_dim: 24,
    };
    let g = vit(FeatureShape::spatial(3, 16, 16), 5, config, &device, 2).unwrap();
    let back = import_onnx_bytes(&export_onnx_bytes(&g).unwrap(), &device)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(count(&back, "attention"), 2);
    let x: Vec<f32> = (0..2 * 3 * 16 * 16)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let dims = [2, 3, 16, 16];
    let err = rel(&run(&back, &dims, &x), &run(&g, &dims, &x));
    assert!(err < 1e-6, "re-imported xprune ViT differs: {err:e}");
}
