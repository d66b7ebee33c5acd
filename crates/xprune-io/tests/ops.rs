//! ONNX operators of the layer kinds beyond the classic CNN ones, as PyTorch exports them
//! (`tests/fixtures/ops/`, written by `make_ops.py`): every model imports with onnxruntime's
//! outputs (1e-4 relative), holds the expected kinds, and re-exports and re-imports with the
//! same outputs. Set `XPRUNE_OPS_EXPORT_DIR` to write the re-exported models there and check
//! them with onnxruntime: `python3 tests/fixtures/ops/make_ops.py --check-exported DIR`.

use burn::tensor::Device;
use std::path::{Path, PathBuf};
use xprune_graph::{Activation, Graph};
use xprune_io::onnx::{export_onnx_bytes, import_onnx, import_onnx_bytes};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/ops")
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
    let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
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

/// The kinds each fixture must produce (besides convolutions, batch norms and the head).
const EXPECTED: &[(&str, &[&str])] = &[
    ("leaky_prelu_tanh", &["leaky_relu", "prelu", "tanh"]),
    ("elu", &["elu"]),
    ("clip_hardtanh", &["hardtanh", "relu6"]),
    ("clip_hardtanh_opset11", &["hardtanh", "relu6"]),
    ("hardswish_pattern", &["hard_swish", "hard_sigmoid"]),
    ("gelu_opset20", &["gelu"]),
    ("softmax_head", &["softmax"]),
    ("global_max_pool", &["global_max_pool"]),
    ("global_max_pool_as_maxpool", &["max_pool2d"]),
    ("pad_upsample", &["pad", "upsample"]),
    ("pad_upsample_folded", &["pad", "upsample"]),
    ("conv_transpose", &["conv_transpose2d"]),
    ("split_gather", &["slice", "channel_permute", "concat"]),
    ("split_equal_opset18", &["slice", "channel_permute"]),
    ("split_num_outputs_opset18", &["slice", "channel_permute"]),
    ("mean_tokens_free", &["mean"]),
    ("reduce_mean_opset18", &["mean"]),
    (
        "layer_scale_channels_last",
        &["permute", "layer_norm", "linear", "gelu", "scale"],
    ),
];

#[test]
fn every_operator_fixture_matches_onnxruntime_and_round_trips() {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("manifest.json")).unwrap())
            .unwrap();
    let names: Vec<&String> = manifest.as_object().unwrap().keys().collect();
    assert_eq!(
        names.len(),
        EXPECTED.len(),
        "every fixture has its expectations"
    );
    let export = std::env::var_os("XPRUNE_OPS_EXPORT_DIR").map(PathBuf::from);
    let device = Device::flex();
    for &(name, kinds) in EXPECTED {
        let g = import_onnx(fixtures().join(format!("{name}.onnx")), &device)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let bytes = std::fs::read(fixtures().join(format!("{name}.safetensors"))).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let ((xd, x), (_, y)) = (tensor(&st, "input"), tensor(&st, "output"));
        let got = run(&g, &xd, &x);
        let d = rel(&got, &y);
        println!("{name}: {} nodes, relative difference {d:.1e}", g.len());
        assert!(d < 1e-4, "{name}: differs from onnxruntime by {d:e}");
        let present: Vec<&str> = g.nodes().iter().map(|n| n.op.kind_name()).collect();
        for k in kinds {
            assert!(present.contains(k), "{name}: no `{k}` in {present:?}");
        }
        let out = export_onnx_bytes(&g).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(dir) = &export {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(format!("{name}.onnx")), &out).unwrap();
        }
        let back = import_onnx_bytes(&out, &device).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            back.len(),
            g.len(),
            "{name}: node count after the round trip"
        );
        let again = run(&back, &xd, &x);
        assert!(rel(&again, &got) < 1e-6, "{name}: the re-import differs");
    }
}
