//! ONNX fixtures exported by PyTorch (and built with onnx.helper) under
//! `tests/fixtures/onnx/`: the imported graphs must reproduce onnxruntime's outputs, re-export
//! and re-import to the same outputs, and the malformed models must give errors.
//!
//! Set `XPRUNE_ONNX_EXPORT_DIR` to also write the re-exported models there, then check them
//! with onnxruntime: `python3 tests/fixtures/onnx/make_fixtures.py --check-exported <dir>`.

use burn::tensor::Device;
use safetensors::SafeTensors;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use xprune_graph::kinds::{
    batch_norm::BatchNormOp, conv2d::Conv2dOp, dropout::DropoutOp, linear::LinearOp,
};
use xprune_graph::{Activation, Graph, OpSpec};
use xprune_io::onnx::{OnnxError, export_onnx_bytes, import_onnx, import_onnx_bytes};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/onnx")
}

fn device() -> Device {
    Device::flex()
}

/// `(dims, values)` of an f32 tensor of a fixture's safetensors file.
fn tensor(st: &SafeTensors<'_>, name: &str) -> (Vec<usize>, Vec<f32>) {
    let view = st.tensor(name).unwrap();
    let values = view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (view.shape().to_vec(), values)
}

fn max_rel_diff(expected: &[f32], found: &[f32]) -> f32 {
    assert_eq!(expected.len(), found.len());
    let scale = expected
        .iter()
        .fold(0.0f32, |m, x| m.max(x.abs()))
        .max(1e-12);
    expected
        .iter()
        .zip(found)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
        / scale
}

fn run(graph: &Graph, dims: &[usize], x: &[f32]) -> Vec<f32> {
    let input = Activation::from_vec(x.to_vec(), dims, &device()).unwrap();
    graph.forward(input).unwrap().to_vec()
}

fn manifest() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Number of xprune nodes of each kind.
fn kinds(graph: &Graph) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for n in graph.nodes() {
        *out.entry(n.op.kind_name()).or_default() += 1;
    }
    out
}

fn check_fixture(name: &str, entry: &serde_json::Value) {
    let path = fixtures().join(format!("{name}.onnx"));
    let graph = import_onnx(&path, &device()).unwrap_or_else(|e| panic!("{e}"));

    // The structure: one xprune node per ONNX layer op.
    let ops = &entry["ops"];
    let count = |op: &str| ops[op].as_u64().unwrap_or(0) as usize;
    let k = kinds(&graph);
    let kind = |name: &str| k.get(name).copied().unwrap_or(0);
    assert_eq!(kind("conv2d"), count("Conv"), "{name}: convolutions");
    assert_eq!(
        kind("linear"),
        count("Gemm") + count("MatMul"),
        "{name}: linear layers"
    );
    assert_eq!(
        kind("batch_norm"),
        count("BatchNormalization"),
        "{name}: batch norms"
    );
    assert_eq!(kind("relu"), count("Relu"), "{name}: relus");
    assert_eq!(kind("max_pool2d"), count("MaxPool"), "{name}: max pools");
    assert_eq!(
        kind("avg_pool2d"),
        count("AveragePool"),
        "{name}: average pools"
    );
    assert_eq!(
        kind("adaptive_avg_pool2d"),
        count("GlobalAveragePool"),
        "{name}: global pools"
    );
    assert_eq!(
        kind("flatten"),
        count("Flatten") + count("Reshape"),
        "{name}: flattens"
    );
    assert_eq!(kind("dropout"), count("Dropout"), "{name}: dropouts");
    assert_eq!(kind("identity"), count("Identity"), "{name}: identities");
    let adds = count("Add") + count("Sum") - count("MatMul");
    assert_eq!(kind("add"), adds, "{name}: sums of activations");

    // The outputs of onnxruntime.
    let bytes = std::fs::read(fixtures().join(format!("{name}.safetensors"))).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (dims, x) = tensor(&st, "input");
    let (out_dims, expected) = tensor(&st, "output");
    assert_eq!(
        graph.output_shape().batch_dims(dims[0]),
        out_dims,
        "{name}: output shape"
    );
    let y = run(&graph, &dims, &x);
    let diff = max_rel_diff(&expected, &y);
    println!("{name}: imported, max |xprune - onnxruntime| / max |output| = {diff:.2e}");
    assert!(
        diff < 1e-4,
        "{name}: imported graph differs from onnxruntime by {diff}"
    );

    // Export, re-import: same structure and outputs.
    let exported = export_onnx_bytes(&graph).unwrap();
    if let Ok(dir) = std::env::var("XPRUNE_ONNX_EXPORT_DIR") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(Path::new(&dir).join(format!("{name}.onnx")), &exported).unwrap();
    }
    let back = import_onnx_bytes(&exported, &device()).unwrap();
    assert_eq!(
        back.summary(),
        graph.summary(),
        "{name}: re-imported structure"
    );
    let y2 = run(&back, &dims, &x);
    let diff2 = max_rel_diff(&y, &y2);
    assert!(
        diff2 < 1e-6,
        "{name}: re-imported export differs by {diff2}"
    );
}

#[test]
fn every_fixture_matches_onnxruntime_and_round_trips() {
    let manifest = manifest();
    let entries = manifest.as_object().unwrap();
    assert!(
        entries.len() >= 7,
        "manifest lists {} models",
        entries.len()
    );
    let opsets: Vec<u64> = entries
        .values()
        .map(|e| e["opset"].as_u64().unwrap())
        .collect();
    assert!(opsets.contains(&11) && opsets.iter().any(|&o| o >= 13));
    for (name, entry) in entries {
        check_fixture(name, entry);
    }
}

#[test]
fn onnx_node_names_are_kept() {
    let g = import_onnx(fixtures().join("resnet18_cifar_opset13.onnx"), &device()).unwrap();
    let conv = g.find("/layer1/layer1.0/conv1/Conv").unwrap();
    assert!(matches!(g.nodes()[conv].op, OpSpec::Conv2d(_)));
    let shortcut = g.find("/layer2/layer2.0/shortcut/shortcut.0/Conv").unwrap();
    assert!(matches!(
        g.nodes()[shortcut].op,
        OpSpec::Conv2d(Conv2dOp {
            kernel: [1, 1],
            stride: [2, 2],
            ..
        })
    ));
    assert_eq!(g.name(0), "input");
    assert_eq!(g.name(g.output()), "/fc/Gemm");

    let g = import_onnx(fixtures().join("handmade_opset11.onnx"), &device()).unwrap();
    // SAME_UPPER with stride 2 on 16x16 and a 3x3 kernel pads 0 before and 1 after.
    let conv = g.find("conv_same_upper").unwrap();
    assert!(matches!(
        g.nodes()[conv].op,
        OpSpec::Conv2d(Conv2dOp {
            padding: [0, 0, 1, 1],
            ..
        })
    ));
    // SAME_LOWER with a 2x2 kernel pads 1 before and 0 after.
    let conv = g.find("conv_same_lower").unwrap();
    assert!(matches!(
        g.nodes()[conv].op,
        OpSpec::Conv2d(Conv2dOp {
            padding: [1, 1, 0, 0],
            ..
        })
    ));
    // MatMul + (later) Add is one linear layer with a bias, named after the MatMul.
    let mm = g.find("matmul").unwrap();
    assert!(matches!(
        g.nodes()[mm].op,
        OpSpec::Linear(LinearOp { bias: true, .. })
    ));
    assert!(g.find("matmul_bias").is_err());
    let bn = g.find("bn_vector").unwrap();
    let OpSpec::BatchNorm(BatchNormOp {
        epsilon, momentum, ..
    }) = g.nodes()[bn].op
    else {
        panic!()
    };
    assert_eq!((epsilon, momentum), (1e-3, 0.2));
    let drop = g.find("dropout").unwrap();
    assert_eq!(
        g.nodes()[drop].op,
        OpSpec::Dropout(DropoutOp { prob: 0.25 })
    );

    let g = import_onnx(fixtures().join("depthwise_block_opset13.onnx"), &device()).unwrap();
    let dw = g.find("/dw/Conv").unwrap();
    assert!(matches!(
        g.nodes()[dw].op,
        OpSpec::Conv2d(Conv2dOp { groups: 8, .. })
    ));
    // padding="same" with a 4x4 kernel: PyTorch exports SAME_UPPER, i.e. pads 1 and 2.
    let same = g.find("/same/Conv").unwrap();
    assert!(matches!(
        g.nodes()[same].op,
        OpSpec::Conv2d(Conv2dOp {
            padding: [1, 1, 2, 2],
            ..
        })
    ));
}

fn import_err(file: &str) -> OnnxError {
    let path = fixtures().join(file);
    match import_onnx(&path, &device()) {
        Ok(_) => panic!("{file} imported"),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(file), "the error names the file: {msg}");
            e
        }
    }
}

#[test]
fn malformed_and_unsupported_fixtures_are_errors() {
    let e = import_err("bad_truncated.onnx");
    assert!(
        matches!(e.root(), OnnxError::Decode(_) | OnnxError::Invalid(_)),
        "{e}"
    );

    let e = import_err("bad_random.onnx");
    assert!(
        matches!(e.root(), OnnxError::Decode(_) | OnnxError::Invalid(_)),
        "{e}"
    );

    let e = import_err("bad_sin_head.onnx");
    assert!(matches!(e.root(), OnnxError::UnsupportedOp { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("/Sin") && msg.contains("op `Sin`") && msg.contains("Relu"),
        "{msg}"
    );

    let e = import_err("bad_gemm_alpha.onnx");
    assert!(
        matches!(e.root(), OnnxError::UnsupportedAttribute { .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("scaled_gemm") && msg.contains("alpha") && msg.contains("0.5"),
        "{msg}"
    );

    let e = import_err("bad_channel_reshape.onnx");
    let msg = e.to_string();
    assert!(msg.contains("Reshape") && msg.contains("flatten"), "{msg}");
}
