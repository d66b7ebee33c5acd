//! Unit tests of the ONNX module: export/import round trips of every layer kind and of the
//! reference models, and the errors of malformed or unsupported models.

use super::export::to_model_proto;
use super::import::decode_model;
use super::*;
use burn::tensor::{Device, TensorData};
use onnx_ir::{AttributeProto, AttributeType, Message, ModelProto, NodeProto};
use std::path::Path;
use xprune_graph::kinds::{
    adaptive_avg_pool2d::AdaptiveAvgPool2dOp, batch_norm::BatchNormOp, linear::LinearOp,
};
use xprune_graph::tensor_util::data_to_f32;
use xprune_graph::{Activation, Conv2dSpec, FeatureShape, Graph, GraphBuilder, OpSpec, Padding};

fn device() -> Device {
    Device::flex()
}

/// Deterministic pseudo-random values in [-1, 1).
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

/// The graph with non-trivial batch-norm statistics (positive variances).
fn with_random_bn(graph: Graph, seed: u64) -> Graph {
    let tensors = graph.named_tensors();
    graph
        .with_tensors(
            |name| {
                let (_, data) = tensors
                    .iter()
                    .find(|(n, _)| n == name)
                    .expect("known tensor");
                let dims = data.shape().as_slice().to_vec();
                let n: usize = dims.iter().product();
                let mut v = values(n, seed ^ name.len() as u64);
                if name.ends_with("running_var") || name.ends_with("gamma") {
                    v.iter_mut().for_each(|x| *x = x.abs() + 0.5);
                } else if !(name.ends_with("running_mean") || name.ends_with("beta")) {
                    return Ok(data.clone());
                }
                Ok(TensorData::new(v, dims))
            },
            &device(),
            Path::new("test"),
        )
        .unwrap()
}

fn input_for(graph: &Graph, batch: usize, seed: u64) -> Activation {
    let dims = graph.input_shape().batch_dims(batch);
    let n = dims.iter().product();
    Activation::from_vec(values(n, seed), &dims, &device()).unwrap()
}

fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(1.0f32, |m, x| m.max(x.abs()));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
        / scale
}

/// Exports, re-imports and checks names, ops and outputs.
/// Equal JSON values, numbers within f32 precision.
fn json_close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    match (a, b) {
        (V::Number(x), V::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1e-30)
        }
        (V::Array(x), V::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_close(p, q))
        }
        (V::Object(x), V::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w)))
        }
        _ => a == b,
    }
}

fn assert_round_trip(graph: &Graph) -> Graph {
    let bytes = export_onnx_bytes(graph).unwrap();
    let back = import_onnx_bytes(&bytes, &device()).unwrap();
    assert_eq!(back.len(), graph.len());
    for (a, b) in graph.nodes().iter().zip(back.nodes()) {
        assert_eq!(a.name, b.name);
        assert_eq!(a.inputs, b.inputs, "inputs of {}", a.name);
        assert_eq!(a.shape, b.shape, "shape of {}", a.name);
        match (&a.op, &b.op) {
            // Exported as an AveragePool with window = stride = input / output.
            (OpSpec::AdaptiveAvgPool2d(AdaptiveAvgPool2dOp { output }), OpSpec::AvgPool2d(_))
                if *output != [1, 1] => {}
            (
                OpSpec::BatchNorm(BatchNormOp {
                    features,
                    epsilon,
                    momentum,
                }),
                OpSpec::BatchNorm(BatchNormOp {
                    features: f2,
                    epsilon: e2,
                    momentum: m2,
                }),
            ) => {
                assert_eq!(features, f2);
                assert!(
                    (epsilon - e2).abs() < 1e-9 && (momentum - m2).abs() < 1e-6,
                    "bn attrs of {}",
                    a.name
                );
            }
            // ONNX stores float attributes as f32
            (x, y) => assert!(
                json_close(
                    &serde_json::to_value(x).unwrap(),
                    &serde_json::to_value(y).unwrap()
                ),
                "op of {}: {x:?} != {y:?}",
                a.name
            ),
        }
    }
    let x = input_for(graph, 3, 17);
    let y1 = graph.forward(x.clone()).unwrap().to_vec();
    let y2 = back.forward(x).unwrap().to_vec();
    let diff = max_rel_diff(&y1, &y2);
    assert!(diff < 1e-5, "outputs differ by {diff}");
    back
}

/// A graph with every layer kind and most hyper-parameters.
fn all_ops_graph() -> Graph {
    let d = device();
    let mut b = GraphBuilder::new(FeatureShape::spatial(4, 13, 13), &d).seed(3);
    let x = b.input();
    let x = b
        .conv2d(
            "conv_asym",
            x,
            Conv2dSpec::new(8, 3)
                .stride(2)
                .with_padding(Padding::Explicit([1, 0, 2, 1]))
                .no_bias(),
        )
        .unwrap();
    let x = b.batch_norm("bn", x).unwrap();
    let x = b.relu("relu", x).unwrap();
    let a = b
        .conv2d(
            "branch_dilated",
            x,
            Conv2dSpec::new(6, 3).padding(2).dilation(2),
        )
        .unwrap();
    let c = b
        .conv2d(
            "branch_depthwise",
            x,
            Conv2dSpec::new(8, 3).padding(1).groups(8),
        )
        .unwrap();
    let cat = b.concat("cat", &[a, c]).unwrap();
    let p = b.conv2d("project", cat, Conv2dSpec::new(8, 1)).unwrap();
    let s = b.add("residual", &[p, x]).unwrap();
    let s = b.identity("identity", s).unwrap();
    let m = b
        .max_pool2d_with("max_ceil", s, [3, 3], [2, 2], Padding::Uniform(1), true)
        .unwrap();
    let m = b.avg_pool2d("avg", m, 1, 1).unwrap();
    let m = b.adaptive_avg_pool2d("adaptive", m, [2, 2]).unwrap();
    let f = b.flatten("flatten", m).unwrap();
    let f = b.dropout("dropout", f, 0.3).unwrap();
    let f = b.linear("fc1", f, 12).unwrap();
    let f = b.batch_norm("bn_flat", f).unwrap();
    let f = b.linear_with_bias("fc2", f, 5, false).unwrap();
    let g = b.build(f).unwrap();
    with_random_bn(g, 5)
}

#[test]
fn every_layer_kind_round_trips() {
    let graph = all_ops_graph();
    let back = assert_round_trip(&graph);
    // The re-import of the re-export is the same model again.
    let again = import_onnx_bytes(&export_onnx_bytes(&back).unwrap(), &device()).unwrap();
    assert_eq!(again.summary(), back.summary());
}

#[test]
fn reference_models_round_trip() {
    let d = device();
    let s = FeatureShape::spatial(3, 32, 32);
    use xprune_models::*;
    assert_round_trip(&lenet5(FeatureShape::spatial(1, 28, 28), 10, &d, 1).unwrap());
    assert_round_trip(&mlp(20, &[16, 8], 4, &d, 2).unwrap());
    assert_round_trip(&with_random_bn(
        vgg(VggDepth::Vgg11, true, s, 10, 0.125, &d, 3).unwrap(),
        3,
    ));
    assert_round_trip(&with_random_bn(
        resnet_cifar(ResNetCifarDepth::ResNet20, s, 10, 0.25, &d, 4).unwrap(),
        4,
    ));
    assert_round_trip(&with_random_bn(
        resnet18(
            ResNetStem::ImageNet,
            FeatureShape::spatial(3, 40, 40),
            7,
            0.0625,
            &d,
            5,
        )
        .unwrap(),
        5,
    ));
}

#[test]
fn pruned_graph_round_trips() {
    // Remove channels 1 and 4 of `conv1` by hand (and the matching inputs of `conv2`): the
    // odd channel counts of a pruned model must export like any other.
    let d = device();
    let mut b = GraphBuilder::new(FeatureShape::spatial(3, 8, 8), &d).seed(9);
    let x = b
        .conv2d("conv1", b.input(), Conv2dSpec::new(6, 3).padding(1))
        .unwrap();
    let x = b.relu("relu", x).unwrap();
    let x = b.conv2d("conv2", x, Conv2dSpec::new(5, 3)).unwrap();
    let x = b.global_avg_pool("gap", x).unwrap();
    let x = b.flatten("flat", x).unwrap();
    let out = b.linear("fc", x, 3).unwrap();
    let g = b.build(out).unwrap();
    let keep = [0usize, 2, 3, 5];
    let tensors = g.named_tensors();
    let get = |name: &str| {
        let (_, t) = tensors.iter().find(|(n, _)| n == name).unwrap();
        (t.shape().as_slice().to_vec(), data_to_f32(t.clone()))
    };
    let (w1d, w1) = get("conv1.weight");
    let per1 = w1d[1] * w1d[2] * w1d[3];
    let w1: Vec<f32> = keep
        .iter()
        .flat_map(|&o| w1[o * per1..(o + 1) * per1].to_vec())
        .collect();
    let (_, b1) = get("conv1.bias");
    let b1: Vec<f32> = keep.iter().map(|&o| b1[o]).collect();
    let (w2d, w2) = get("conv2.weight");
    let k2 = w2d[2] * w2d[3];
    let mut w2p = Vec::new();
    for o in 0..w2d[0] {
        for &i in &keep {
            let start = (o * w2d[1] + i) * k2;
            w2p.extend_from_slice(&w2[start..start + k2]);
        }
    }
    let (input, mut defs, output) = g.to_node_defs();
    use burn::module::Param;
    use burn::tensor::Tensor;
    let xprune_graph::Layer::Conv2d(c1) = &mut defs[1].layer else {
        panic!()
    };
    c1.weight = Param::from_tensor(Tensor::from_data(TensorData::new(w1, [4, 3, 3, 3]), &d));
    c1.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(b1, [4]),
        &d,
    )));
    let xprune_graph::Layer::Conv2d(c2) = &mut defs[3].layer else {
        panic!()
    };
    c2.weight = Param::from_tensor(Tensor::from_data(TensorData::new(w2p, [5, 4, 3, 3]), &d));
    let pruned = Graph::from_nodes(input, defs, output).unwrap();
    assert_eq!(pruned.nodes()[1].shape, FeatureShape::spatial(4, 8, 8));
    assert_round_trip(&pruned);
}

#[test]
fn exported_model_has_the_documented_header() {
    let g = all_ops_graph();
    let model = decode_model(&export_onnx_bytes(&g).unwrap()).unwrap();
    assert_eq!(model.ir_version, EXPORT_IR_VERSION);
    assert_eq!(model.opset_import.len(), 1);
    assert_eq!(model.opset_import[0].version, EXPORT_OPSET);
    let graph = model.graph.as_ref().unwrap();
    let input = &graph.input[0];
    let dims = &input
        .type_
        .as_ref()
        .unwrap()
        .tensor_type()
        .shape
        .as_ref()
        .unwrap()
        .dim;
    assert_eq!(dims[0].dim_param(), BATCH_DIM);
    assert_eq!(
        dims.iter()
            .skip(1)
            .map(|d| d.dim_value())
            .collect::<Vec<_>>(),
        [4, 13, 13]
    );
    let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(
        ops,
        [
            "Conv",
            "BatchNormalization",
            "Relu",
            "Conv",
            "Conv",
            "Concat",
            "Conv",
            "Add",
            "Identity",
            "MaxPool",
            "AveragePool",
            "AveragePool",
            "Flatten",
            "Dropout",
            "Gemm",
            "BatchNormalization",
            "Gemm"
        ]
    );
    // Burn's [in, out] linear weight is written transposed for Gemm's transB = 1.
    let fc2 = graph.node.iter().find(|n| n.name == "fc2").unwrap();
    let w = graph
        .initializer
        .iter()
        .find(|t| t.name == fc2.input[1])
        .unwrap();
    assert_eq!(w.dims, [5, 12]);
    // A momentum of 0.1 in Burn's convention is 0.9 in ONNX's.
    let bn = graph.node.iter().find(|n| n.name == "bn").unwrap();
    let m = bn.attribute.iter().find(|a| a.name == "momentum").unwrap();
    assert!((m.f - 0.9).abs() < 1e-6);
}

#[test]
fn export_to_a_file_and_import_from_it() {
    let g = all_ops_graph();
    let dir = std::env::temp_dir().join(format!("xprune-onnx-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("all_ops.onnx");
    export_onnx(&g, &path).unwrap();
    let back = import_onnx(&path, &device()).unwrap();
    assert_eq!(
        back.summary(),
        import_onnx_bytes(&export_onnx_bytes(&g).unwrap(), &device())
            .unwrap()
            .summary()
    );
    let missing = dir.join("missing.onnx");
    let err = import_onnx(&missing, &device()).unwrap_err();
    assert!(matches!(err, OnnxError::Io { .. }), "{err}");
    assert!(err.to_string().contains("missing.onnx"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ----------------------------------------------------------------------------- errors

fn small_model() -> ModelProto {
    let d = device();
    let mut b = GraphBuilder::new(FeatureShape::spatial(2, 6, 6), &d).seed(1);
    let x = b
        .conv2d("conv", b.input(), Conv2dSpec::new(3, 3).padding(1))
        .unwrap();
    let x = b.relu("act", x).unwrap();
    let x = b.max_pool2d("pool", x, 2, 2).unwrap();
    let x = b.flatten("flat", x).unwrap();
    let out = b.linear("fc", x, 2).unwrap();
    to_model_proto(&b.build(out).unwrap()).unwrap()
}

fn import(model: &ModelProto) -> Result<Graph> {
    import_onnx_bytes(&model.write_to_bytes().unwrap(), &device())
}

fn node_mut<'a>(model: &'a mut ModelProto, name: &str) -> &'a mut NodeProto {
    model
        .graph
        .as_mut()
        .unwrap()
        .node
        .iter_mut()
        .find(|n| n.name == name)
        .unwrap()
}

#[test]
fn small_model_imports() {
    let g = import(&small_model()).unwrap();
    assert_eq!(g.len(), 6);
    assert_eq!(g.name(0), "input");
}

#[test]
fn corrupt_bytes_are_errors_not_panics() {
    let bytes = small_model().write_to_bytes().unwrap();
    let err = import_onnx_bytes(&[], &device()).unwrap_err();
    assert!(matches!(err, OnnxError::Decode(_)), "{err}");
    // A file cut inside the graph is reported as truncated.
    let err = import_onnx_bytes(&bytes[..bytes.len() - 100], &device()).unwrap_err();
    assert!(
        matches!(err, OnnxError::Decode(_)) && err.to_string().contains("truncated"),
        "{err}"
    );
    // Every truncation is an error (decoding or an incomplete model), never a panic.
    for len in (1..bytes.len()).step_by(7) {
        assert!(
            import_onnx_bytes(&bytes[..len], &device()).is_err(),
            "prefix {len}"
        );
    }
    // Random bytes and flipped bytes.
    for seed in 0..20u64 {
        let noise: Vec<u8> = values(300, seed)
            .iter()
            .map(|v| (v.to_bits() >> 7) as u8)
            .collect();
        assert!(import_onnx_bytes(&noise, &device()).is_err());
        let mut flipped = bytes.clone();
        let k = (seed as usize * 131) % flipped.len();
        flipped[k] ^= 0xA5;
        let _ = import_onnx_bytes(&flipped, &device());
    }
}

#[test]
fn unsupported_op_names_node_op_and_supported_ops() {
    let mut m = small_model();
    node_mut(&mut m, "act").op_type = "NonMaxSuppression".into();
    let err = import(&m).unwrap_err();
    assert!(matches!(err, OnnxError::UnsupportedOp { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("`act`")
            && msg.contains("NonMaxSuppression")
            && msg.contains("Conv")
            && msg.contains("Gemm"),
        "{msg}"
    );

    let mut m = small_model();
    node_mut(&mut m, "act").domain = "com.example".into();
    let msg = import(&m).unwrap_err().to_string();
    assert!(msg.contains("com.example::Relu"), "{msg}");
}

fn attr_int(name: &str, v: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INT.into();
    a.i = v;
    a
}

fn attr_str(name: &str, v: &str) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::STRING.into();
    a.s = v.as_bytes().to_vec().into();
    a
}

#[test]
fn unsupported_attributes_name_the_attribute_and_what_is_supported() {
    let mut m = small_model();
    node_mut(&mut m, "conv").attribute.push(attr_int("foo", 1));
    let err = import(&m).unwrap_err();
    assert!(
        matches!(err, OnnxError::UnsupportedAttribute { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("`conv`") && msg.contains("`foo`") && msg.contains("kernel_shape"),
        "{msg}"
    );

    let mut m = small_model();
    node_mut(&mut m, "conv")
        .attribute
        .retain(|a| a.name != "pads");
    node_mut(&mut m, "conv")
        .attribute
        .push(attr_str("auto_pad", "SAME_MIDDLE"));
    let msg = import(&m).unwrap_err().to_string();
    assert!(
        msg.contains("auto_pad") && msg.contains("SAME_UPPER"),
        "{msg}"
    );

    let mut m = small_model();
    node_mut(&mut m, "conv")
        .attribute
        .push(attr_str("auto_pad", "VALID"));
    let msg = import(&m).unwrap_err().to_string();
    assert!(msg.contains("cannot be combined"), "{msg}");

    let mut m = small_model();
    node_mut(&mut m, "pool")
        .attribute
        .push(attr_int("storage_order", 1));
    let msg = import(&m).unwrap_err().to_string();
    assert!(msg.contains("storage_order"), "{msg}");

    let mut m = small_model();
    node_mut(&mut m, "fc").attribute.push(attr_int("transA", 1));
    let msg = import(&m).unwrap_err().to_string();
    assert!(
        msg.contains("transA") && msg.contains("only transA = 0"),
        "{msg}"
    );

    // An attribute of the wrong type.
    let mut m = small_model();
    let conv = node_mut(&mut m, "conv");
    conv.attribute.retain(|a| a.name != "group");
    conv.attribute.push(attr_str("group", "1"));
    let msg = import(&m).unwrap_err().to_string();
    assert!(msg.contains("group") && msg.contains("INT"), "{msg}");

    let mut m = small_model();
    node_mut(&mut m, "flat").attribute[0].i = 2;
    let msg = import(&m).unwrap_err().to_string();
    assert!(
        msg.contains("axis") && msg.contains("only axis = 1"),
        "{msg}"
    );
}

#[test]
fn structural_problems_are_errors() {
    // An old opset.
    let mut m = small_model();
    m.opset_import[0].version = 9;
    let err = import(&m).unwrap_err();
    assert!(matches!(err, OnnxError::Opset { found: 9, .. }), "{err}");

    // A weight that is not an initializer.
    let mut m = small_model();
    m.graph
        .as_mut()
        .unwrap()
        .initializer
        .retain(|t| t.name != "conv.weight");
    let msg = import(&m).unwrap_err().to_string();
    assert!(
        msg.contains("`conv`") && msg.contains("conv.weight") && msg.contains("not defined"),
        "{msg}"
    );

    // Two graph inputs.
    let mut m = small_model();
    let g = m.graph.as_mut().unwrap();
    let mut second = g.input[0].clone();
    second.name = "other".into();
    g.input.push(second);
    let msg = import(&m).unwrap_err().to_string();
    assert!(msg.contains("2 inputs") && msg.contains("other"), "{msg}");

    // A declared shape that disagrees with the computed one.
    let mut m = small_model();
    let g = m.graph.as_mut().unwrap();
    let vi = g.value_info.iter_mut().find(|v| v.name == "pool").unwrap();
    let dims = &mut vi
        .type_
        .as_mut()
        .unwrap()
        .mut_tensor_type()
        .shape
        .as_mut()
        .unwrap()
        .dim;
    dims[2].set_dim_value(4);
    let msg = import(&m).unwrap_err().to_string();
    assert!(msg.contains("`pool`") && msg.contains("declares"), "{msg}");

    // A used second output (MaxPool indices).
    let mut m = small_model();
    node_mut(&mut m, "pool").output.push("indices".into());
    node_mut(&mut m, "flat").input[0] = "indices".into();
    let msg = import(&m).unwrap_err().to_string();
    assert!(msg.contains("`pool`") && msg.contains("indices"), "{msg}");

    // No graph at all.
    let mut m = small_model();
    m.graph = protobuf::MessageField::none();
    let msg = import(&m).unwrap_err().to_string();
    assert!(msg.contains("no graph"), "{msg}");

    // A constant added to an activation that is not a bias-less MatMul/Gemm/Conv.
    let mut m = small_model();
    let g = m.graph.as_mut().unwrap();
    let mut add = NodeProto::new();
    add.name = "shift".into();
    add.op_type = "Add".into();
    add.input = vec!["fc".into(), "fc.bias".into()];
    add.output = vec!["shifted".into()];
    g.node.push(add);
    g.output[0].name = "shifted".into();
    let msg = import(&m).unwrap_err().to_string();
    assert!(msg.contains("`shift`") && msg.contains("bias"), "{msg}");
}

#[test]
fn matmul_and_late_bias_add_fuse_into_one_linear() {
    // Rewrite `fc` (Gemm) as MatMul with an [in, out] weight followed by an Add of the bias.
    let mut m = small_model();
    let g = m.graph.as_mut().unwrap();
    let w = g
        .initializer
        .iter_mut()
        .find(|t| t.name == "fc.weight")
        .unwrap();
    let (out_f, in_f) = (w.dims[0] as usize, w.dims[1] as usize);
    let host = super::tensor::decode_tensor(w).unwrap().to_f32();
    let mut t = vec![0.0; host.len()];
    for o in 0..out_f {
        for i in 0..in_f {
            t[i * out_f + o] = host[o * in_f + i];
        }
    }
    *w = super::tensor::encode_f32("fc.weight", &[in_f, out_f], &t);
    let fc = g.node.iter_mut().find(|n| n.name == "fc").unwrap();
    fc.op_type = "MatMul".into();
    fc.attribute.clear();
    fc.input.truncate(2);
    fc.output[0] = "mm".into();
    let mut add = NodeProto::new();
    add.name = "bias".into();
    add.op_type = "Add".into();
    add.input = vec!["fc.bias".into(), "mm".into()];
    add.output = vec!["fc".into()];
    g.node.push(add);
    let original = import(&small_model()).unwrap();
    let fused = import(&m).unwrap();
    assert_eq!(fused.len(), original.len());
    assert!(matches!(
        fused.nodes()[5].op,
        OpSpec::Linear(LinearOp { bias: true, .. })
    ));
    let x = input_for(&original, 2, 3);
    let d = max_rel_diff(
        &original.forward(x.clone()).unwrap().to_vec(),
        &fused.forward(x).unwrap().to_vec(),
    );
    assert!(d < 1e-6, "{d}");
}

#[test]
fn adaptive_pool_with_uneven_windows_cannot_be_exported() {
    let d = device();
    let mut b = GraphBuilder::new(FeatureShape::spatial(2, 5, 4), &d);
    let x = b.adaptive_avg_pool2d("uneven", b.input(), [2, 2]).unwrap();
    let g = b.build(x).unwrap();
    let err = export_onnx_bytes(&g).unwrap_err();
    assert!(matches!(err, OnnxError::Export { .. }), "{err}");
    assert!(
        err.to_string().contains("`uneven`") && err.to_string().contains("5x4"),
        "{err}"
    );
}

#[test]
fn family_networks_round_trip() {
    let d = device();
    let s = FeatureShape::spatial(3, 32, 32);
    use xprune_models::*;
    for g in [
        mobilenet_v3_like(s, 10, 0.5, &d, 1).unwrap(),
        efficientnet_like(s, 10, 0.5, &d, 2).unwrap(),
        shufflenet_like(s, 10, 0.5, &d, 3).unwrap(),
        regnet_like(s, 10, 1.0, &d, 4).unwrap(),
        convnext_like(s, 10, 1.0, &d, 5).unwrap(),
        misc_net(s, 10, 1.0, &d, 6).unwrap(),
    ] {
        assert_round_trip(&with_random_bn(g, 7));
    }
}

/// Schema-invalid nodes inside the multi-node patterns the fusions look for (a `Sigmoid`,
/// `Erf`, `Split`, `Reshape` or `LayerNormalization` without inputs, a `Mul` with one input, a
/// node without outputs, ...) are import errors that name the problem, never panics and never
/// internal errors.
#[test]
fn malformed_nodes_in_fused_patterns_are_errors_not_panics() {
    let d = device();
    let s = FeatureShape::spatial(3, 16, 16);
    let mut models: Vec<(String, ModelProto)> = Vec::new();
    use xprune_models::*;
    for (name, g) in [
        (
            "efficientnet_like",
            efficientnet_like(s, 10, 0.5, &d, 2).unwrap(),
        ),
        (
            "shufflenet_like",
            shufflenet_like(s, 10, 0.5, &d, 3).unwrap(),
        ),
        ("convnext_like", convnext_like(s, 10, 1.0, &d, 5).unwrap()),
    ] {
        models.push((name.to_string(), to_model_proto(&g).unwrap()));
    }
    let ops = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/ops");
    for f in [
        "hardswish_pattern",
        "split_gather",
        "layer_scale_channels_last",
    ] {
        let bytes = std::fs::read(ops.join(format!("{f}.onnx"))).unwrap();
        models.push((f.to_string(), decode_model(&bytes).unwrap()));
    }
    let pattern_ops = [
        "Sigmoid",
        "HardSigmoid",
        "Mul",
        "Div",
        "Erf",
        "Add",
        "LayerNormalization",
        "Transpose",
        "Reshape",
        "Split",
        "Conv",
        "MatMul",
        "Gemm",
    ];
    let mut checked = 0;
    for (name, model) in &models {
        assert!(import(model).is_ok(), "{name} imports unchanged");
        let nodes = &model.graph.as_ref().unwrap().node;
        let mut seen_ops = std::collections::HashSet::new();
        for (k, node) in nodes.iter().enumerate() {
            // the first two nodes of each op type are enough to reach every pattern's checks
            let count = seen_ops
                .iter()
                .filter(|(op, _)| op == &node.op_type)
                .count();
            if !pattern_ops.contains(&node.op_type.as_str()) || count >= 2 {
                continue;
            }
            seen_ops.insert((node.op_type.clone(), k));
            type Mutation = fn(&mut NodeProto);
            let variants: [(&str, Mutation); 4] = [
                ("no inputs", |n| n.input.clear()),
                ("one input", |n| n.input.truncate(1)),
                ("empty first input", |n| {
                    if let Some(i) = n.input.first_mut() {
                        i.clear()
                    }
                }),
                ("no outputs", |n| n.output.clear()),
            ];
            for (what, mutate) in variants {
                let mut m = model.clone();
                mutate(&mut m.graph.as_mut().unwrap().node[k]);
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| import(&m)));
                let outcome = result.unwrap_or_else(|_| {
                    panic!(
                        "{name}: node {k} ({}) with {what}: import panicked",
                        node.op_type
                    )
                });
                if let Err(e) = outcome {
                    let msg = e.to_string();
                    assert!(
                        !msg.contains("internal error"),
                        "{name}: node {k} ({}) with {what}: {msg}",
                        node.op_type
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked} variants");
}

/// The model of `graph` as ONNX, with `edit` applied to it.
fn edited(graph: &Graph, edit: impl FnOnce(&mut onnx_ir::GraphProto)) -> ModelProto {
    let mut m = to_model_proto(graph).unwrap();
    edit(m.graph.as_mut().unwrap());
    m
}

fn node_of<'a>(g: &'a mut onnx_ir::GraphProto, op: &str, nth: usize) -> &'a mut NodeProto {
    g.node
        .iter_mut()
        .filter(|n| n.op_type == op)
        .nth(nth)
        .unwrap()
}

fn init_of<'a>(g: &'a mut onnx_ir::GraphProto, name: &str) -> &'a mut onnx_ir::TensorProto {
    g.initializer.iter_mut().find(|t| t.name == name).unwrap()
}

fn set_attr(n: &mut NodeProto, a: AttributeProto) {
    n.attribute.retain(|x| x.name != a.name);
    n.attribute.push(a);
}

fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INTS.into();
    a.ints = v.to_vec();
    a
}

/// Asserts that the import fails with a message containing every needle.
fn refused(m: &ModelProto, needles: &[&str]) {
    let msg = match import(m) {
        Ok(_) => panic!("imported, expected an error containing {needles:?}"),
        Err(e) => e.to_string(),
    };
    for n in needles {
        assert!(msg.contains(n), "`{msg}` does not contain `{n}`");
    }
}

/// Each of these ONNX forms means something else than what xprune would build, so each is an
/// error naming the problem (found by an audit of the importer against the ONNX operator
/// specifications).
#[test]
fn onnx_forms_with_other_semantics_are_refused() {
    let d = device();
    let spatial = FeatureShape::spatial(4, 6, 6);

    // A layer norm between transposes over another axis than the channels.
    let mut b = GraphBuilder::new(spatial, &d).seed(1);
    let x = b.layer_norm("ln", b.input()).unwrap();
    let x = b.global_avg_pool("gap", x).unwrap();
    let x = b.flatten("flat", x).unwrap();
    let out = b.linear("fc", x, 2).unwrap();
    let g = b.build(out).unwrap();
    assert!(import(&to_model_proto(&g).unwrap()).is_ok());
    let m = edited(&g, |g| {
        set_attr(node_of(g, "LayerNormalization", 0), attr_int("axis", 2))
    });
    refused(&m, &["axis", "2"]);

    // A channel shuffle whose last reshape does not restore the map.
    let mut b = GraphBuilder::new(spatial, &d).seed(1);
    let x = b.channel_shuffle("shuffle", b.input(), 2).unwrap();
    let x = b.global_avg_pool("gap", x).unwrap();
    let x = b.flatten("flat", x).unwrap();
    let out = b.linear("fc", x, 2).unwrap();
    let g = b.build(out).unwrap();
    assert!(import(&to_model_proto(&g).unwrap()).is_ok());
    let m = edited(&g, |g| {
        let target = node_of(g, "Reshape", 1).input[1].clone();
        let t = init_of(g, &target);
        t.dims = vec![2];
        t.raw_data = [0i64, 144].iter().flat_map(|v| v.to_le_bytes()).collect();
    });
    refused(&m, &["reshape back", "[N, 4, 6, 6]"]);

    // A PReLU slope that broadcasts along the height, not the channels.
    let mut b = GraphBuilder::new(spatial, &d).seed(1);
    let x = b.prelu("act", b.input(), true).unwrap();
    let x = b.global_avg_pool("gap", x).unwrap();
    let x = b.flatten("flat", x).unwrap();
    let out = b.linear("fc", x, 2).unwrap();
    let g = b.build(out).unwrap();
    assert!(import(&to_model_proto(&g).unwrap()).is_ok());
    let m = edited(&g, |g| {
        let slope = node_of(g, "PRelu", 0).input[1].clone();
        init_of(g, &slope).dims = vec![4, 1];
    });
    refused(&m, &["[4, 1]", "per channel"]);

    // A Gemm bias of higher rank than the output.
    let m = edited(&g, |g| {
        let bias = node_of(g, "Gemm", 0).input[2].clone();
        init_of(g, &bias).dims = vec![1, 1, 2];
    });
    refused(&m, &["bias", "[1, 1, 2]"]);

    // Transposed convolutions with a non-positive group or a kernel_shape that is not the
    // weight's; a resize over reordered axes; a dropout ratio of two values.
    let mut b = GraphBuilder::new(spatial, &d).seed(1);
    let x = b
        .conv_transpose2d("up", b.input(), 4, 3, 2, 1, 1, 1)
        .unwrap();
    let x = b.upsample("resize", x, [2, 2]).unwrap();
    let x = b.dropout("drop", x, 0.25).unwrap();
    let x = b.global_avg_pool("gap", x).unwrap();
    let x = b.flatten("flat", x).unwrap();
    let out = b.linear("fc", x, 2).unwrap();
    let g = b.build(out).unwrap();
    assert!(import(&to_model_proto(&g).unwrap()).is_ok());
    let m = edited(&g, |g| {
        set_attr(node_of(g, "ConvTranspose", 0), attr_int("group", 0))
    });
    refused(&m, &["group", "0"]);
    let m = edited(&g, |g| {
        set_attr(
            node_of(g, "ConvTranspose", 0),
            attr_ints("kernel_shape", &[5, 5]),
        )
    });
    refused(&m, &["kernel_shape", "[5, 5]", "[3, 3]"]);
    let m = edited(&g, |g| {
        set_attr(node_of(g, "Resize", 0), attr_ints("axes", &[3, 2]))
    });
    refused(&m, &["axes", "[3, 2]"]);
    let m = edited(&g, |g| {
        let ratio = node_of(g, "Dropout", 0).input[1].clone();
        let t = init_of(g, &ratio);
        t.dims = vec![2];
        t.raw_data = [0.25f32, 0.5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
    });
    refused(&m, &["ratio", "[2]"]);

    // A value defined twice.
    let mut m = small_model();
    let first = m.graph.as_ref().unwrap().node[0].output[0].clone();
    node_mut(&mut m, "act").output[0] = first.clone();
    refused(&m, &["already defined", &first]);
}

/// Constant folding follows ONNX: numpy broadcasting of float constants, `allowzero` in
/// `Reshape`, and the axes of `Squeeze`.
#[test]
fn constant_folding_broadcasts_honours_allowzero_and_checks_squeeze_axes() {
    use super::attr::NodeCtx;
    use super::shape_ops::fold;
    use std::sync::Arc;
    use xprune_graph::kind::{Attr, ConstTensor, OpAttrs, OpValue};
    let c = |dims: Vec<usize>, v: Vec<f32>| OpValue::Const(Arc::new(ConstTensor::f32(dims, v)));
    let ints = |v: Vec<i64>| OpValue::Const(Arc::new(ConstTensor::i64(vec![v.len()], v)));
    let run = |op: &str, attrs: &OpAttrs, inputs: &[OpValue], opset: i64| {
        fold(NodeCtx { name: "n", op }, attrs, inputs, opset, None)
    };
    let value = |r: Result<Option<OpValue>>| match r.unwrap().unwrap() {
        OpValue::Const(t) => (t.dims.clone(), t.to_f32()),
        other => panic!("{other:?}"),
    };
    let none = OpAttrs::new();
    // [3, 1] + [1, 3] is [3, 3].
    let (dims, v) = value(run(
        "Add",
        &none,
        &[
            c(vec![3, 1], vec![0.0, 10.0, 20.0]),
            c(vec![1, 3], vec![1.0, 2.0, 3.0]),
        ],
        13,
    ));
    assert_eq!(dims, [3, 3]);
    assert_eq!(v, [1.0, 2.0, 3.0, 11.0, 12.0, 13.0, 21.0, 22.0, 23.0]);
    // A scalar times [1, 1] is [1, 1]; [2, 3] and [3, 2] do not broadcast.
    assert_eq!(
        value(run(
            "Mul",
            &none,
            &[c(vec![], vec![2.0]), c(vec![1, 1], vec![4.0])],
            13
        ))
        .0,
        [1, 1]
    );
    assert!(
        run(
            "Sub",
            &none,
            &[c(vec![2, 3], vec![0.0; 6]), c(vec![3, 2], vec![0.0; 6])],
            13
        )
        .is_err()
    );

    // Reshape [2, 0] of a [2, 3] constant: copies the 3, or with allowzero is 0 (then 6
    // values do not fit).
    let data = c(vec![2, 3], vec![0.0; 6]);
    assert_eq!(
        value(run("Reshape", &none, &[data.clone(), ints(vec![2, 0])], 13)).0,
        [2, 3]
    );
    let allowzero = OpAttrs::new().with("allowzero", Attr::Int(1));
    assert!(run("Reshape", &allowzero, &[data, ints(vec![2, 0])], 13).is_err());

    // Squeeze of a one-entry vector: axes [0] or none, not [1].
    let one = ints(vec![7]);
    assert!(run("Squeeze", &none, std::slice::from_ref(&one), 13).is_ok());
    assert!(run("Squeeze", &none, &[one.clone(), ints(vec![0])], 13).is_ok());
    let err = run("Squeeze", &none, &[one, ints(vec![1])], 13)
        .unwrap_err()
        .to_string();
    assert!(err.contains("axes [1]"), "{err}");

    // Slice steps at the limits of i64 (one element either way), not an overflow.
    let v = c(vec![4], vec![1.0, 2.0, 3.0, 4.0]);
    for (start, end, step, want) in [(0, 4, i64::MAX, 1.0), (3, -5, i64::MIN, 4.0)] {
        let inputs = [
            v.clone(),
            ints(vec![start]),
            ints(vec![end]),
            ints(vec![0]),
            ints(vec![step]),
        ];
        assert_eq!(
            value(run("Slice", &none, &inputs, 13)).1,
            [want],
            "step {step}"
        );
    }

    // Every op listed as folded is folded (or refused for its inputs), never passed on.
    for op in SHAPE_OPS {
        assert!(!matches!(run(op, &none, &[], 13), Ok(None)), "{op}");
    }
}

/// The mean over positions of channels-last maps and token sequences exports and imports
/// back (ReduceMean over axes [1, 2] with the axes as an input, opset 18).
#[test]
fn mean_of_channels_last_maps_round_trips() {
    let d = device();
    let mut b = GraphBuilder::new(FeatureShape::spatial(4, 5, 5), &d).seed(2);
    let x = b
        .conv2d("conv", b.input(), Conv2dSpec::new(6, 3).padding(1))
        .unwrap();
    let x = b.permute("to_last", x, true).unwrap();
    let x = b.mean("mean", x).unwrap();
    let out = b.linear("fc", x, 3).unwrap();
    let g = b.build(out).unwrap();
    let m = to_model_proto(&g).unwrap();
    assert_eq!(m.opset_import[0].version, 18);
    assert_round_trip(&g);
}
