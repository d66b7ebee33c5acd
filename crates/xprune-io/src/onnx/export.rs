//! ONNX export: any [`Graph`] (pruned or not) as an ONNX model (opset 13, IR version 8).

use super::error::{OnnxError, Result};
use super::tensor::{dtype, encode_f32};
use onnx_ir::{
    AttributeProto, AttributeType, GraphProto, Message, ModelProto, NodeProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};
use protobuf::MessageField;
use std::collections::HashSet;
use std::path::Path;
use xprune_graph::tensor_util::data_to_f32;
use xprune_graph::{FeatureShape, Graph, Layer, OpSpec};

/// The default-domain opset of exported models.
pub const EXPORT_OPSET: i64 = 13;
/// The ONNX IR version of exported models.
pub const EXPORT_IR_VERSION: i64 = 8;
/// The name of the symbolic batch dimension of exported inputs and outputs.
pub const BATCH_DIM: &str = "N";

/// Writes `graph` as an ONNX model to `path` (see [`export_onnx_bytes`]).
pub fn export_onnx(graph: &Graph, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes = export_onnx_bytes(graph).map_err(|e| e.in_file(path))?;
    std::fs::write(path, bytes).map_err(|source| OnnxError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Encodes `graph` as an ONNX model: opset 13, IR version 8, one `float` input of shape
/// `[N, ...]` with a symbolic batch dimension `N`, weights as initializers, ONNX node names
/// equal to the xprune node names and every value typed (`value_info`).
///
/// Layers map to `Conv`, `Gemm` (`transB = 1`), `BatchNormalization`, `Relu`, `MaxPool`,
/// `AveragePool`, `GlobalAveragePool`, `Flatten`, `Add`/`Sum`, `Concat`, `Dropout` and
/// `Identity`. An adaptive average pool to a size other than `1 x 1` is written as an
/// `AveragePool` when the input size is a multiple of the output size, and is an error
/// otherwise.
pub fn export_onnx_bytes(graph: &Graph) -> Result<Vec<u8>> {
    let model = to_model_proto(graph)?;
    model.write_to_bytes().map_err(|e| OnnxError::Export {
        node: graph.name(graph.output()).to_string(),
        message: format!("protobuf encoding failed: {e}"),
    })
}

/// Builds the ONNX `ModelProto` of a graph.
pub(crate) fn to_model_proto(graph: &Graph) -> Result<ModelProto> {
    let mut g = GraphProto::new();
    g.name = "xprune".to_string();
    let nodes = graph.nodes();
    // Value names are the node names; initializer names are made unique against them.
    let mut taken: HashSet<String> = nodes.iter().map(|n| n.name.clone()).collect();
    g.input.push(value_info(&nodes[0].name, nodes[0].shape));
    for (id, (info, layer)) in nodes.iter().zip(graph.layers()).enumerate().skip(1) {
        let inputs: Vec<String> = info.inputs.iter().map(|&i| nodes[i].name.clone()).collect();
        let input_shape = nodes[info.inputs[0]].shape;
        let mut node = NodeProto::new();
        node.name = info.name.clone();
        node.output.push(info.name.clone());
        node.input.extend(inputs);
        let mut init = |role: &str, dims: &[usize], values: &[f32], node: &mut NodeProto| {
            let name = unique(&mut taken, &format!("{}.{role}", info.name));
            g.initializer.push(encode_f32(&name, dims, values));
            node.input.push(name);
        };
        match (&info.op, layer) {
            (OpSpec::Input { .. }, _) => {
                return Err(OnnxError::Export {
                    node: info.name.clone(),
                    message: "only node 0 can be the input".into(),
                });
            }
            (
                OpSpec::Conv2d {
                    kernel,
                    stride,
                    padding,
                    dilation,
                    groups,
                    ..
                },
                Layer::Conv2d(conv),
            ) => {
                node.op_type = "Conv".into();
                let w = conv.weight.val();
                init("weight", &w.dims(), &data_to_f32(w.to_data()), &mut node);
                if let Some(b) = &conv.bias {
                    let b = b.val();
                    init("bias", &b.dims(), &data_to_f32(b.to_data()), &mut node);
                }
                node.attribute.push(ints("kernel_shape", kernel));
                node.attribute.push(ints("strides", stride));
                node.attribute.push(ints("pads", padding));
                node.attribute.push(ints("dilations", dilation));
                node.attribute.push(int("group", *groups as i64));
            }
            (OpSpec::Linear { .. }, Layer::Linear(linear)) => {
                node.op_type = "Gemm".into();
                let [in_f, out_f] = linear.weight.dims();
                let w = data_to_f32(linear.weight.val().to_data());
                // Burn stores [in, out]; Gemm with transB = 1 takes [out, in].
                let mut wt = vec![0.0; w.len()];
                for i in 0..in_f {
                    for o in 0..out_f {
                        wt[o * in_f + i] = w[i * out_f + o];
                    }
                }
                init("weight", &[out_f, in_f], &wt, &mut node);
                if let Some(b) = &linear.bias {
                    init("bias", &[out_f], &data_to_f32(b.val().to_data()), &mut node);
                }
                node.attribute.push(float("alpha", 1.0));
                node.attribute.push(float("beta", 1.0));
                node.attribute.push(int("transB", 1));
            }
            (
                OpSpec::BatchNorm {
                    epsilon, momentum, ..
                },
                Layer::BatchNorm(bn),
            ) => {
                node.op_type = "BatchNormalization".into();
                let c = bn.gamma.dims()[0];
                init(
                    "gamma",
                    &[c],
                    &data_to_f32(bn.gamma.val().to_data()),
                    &mut node,
                );
                init(
                    "beta",
                    &[c],
                    &data_to_f32(bn.beta.val().to_data()),
                    &mut node,
                );
                let mean = data_to_f32(bn.running_mean.value().to_data());
                init("running_mean", &[c], &mean, &mut node);
                let var = data_to_f32(bn.running_var.value().to_data());
                init("running_var", &[c], &var, &mut node);
                node.attribute.push(float("epsilon", *epsilon as f32));
                // ONNX momentum weighs the running statistic, Burn's the batch statistic.
                node.attribute
                    .push(float("momentum", (1.0 - *momentum) as f32));
            }
            (OpSpec::Relu, _) => node.op_type = "Relu".into(),
            (
                OpSpec::MaxPool2d {
                    kernel,
                    stride,
                    padding,
                    dilation,
                    ceil_mode,
                },
                _,
            ) => {
                node.op_type = "MaxPool".into();
                node.attribute.push(ints("kernel_shape", kernel));
                node.attribute.push(ints("strides", stride));
                node.attribute.push(ints("pads", padding));
                node.attribute.push(ints("dilations", dilation));
                node.attribute.push(int("ceil_mode", *ceil_mode as i64));
            }
            (
                OpSpec::AvgPool2d {
                    kernel,
                    stride,
                    padding,
                    count_include_pad,
                    ceil_mode,
                },
                _,
            ) => {
                node.op_type = "AveragePool".into();
                node.attribute.push(ints("kernel_shape", kernel));
                node.attribute.push(ints("strides", stride));
                node.attribute.push(ints("pads", padding));
                node.attribute
                    .push(int("count_include_pad", *count_include_pad as i64));
                node.attribute.push(int("ceil_mode", *ceil_mode as i64));
            }
            (OpSpec::AdaptiveAvgPool2d { output }, _) => {
                let FeatureShape::Spatial([_, h, w]) = input_shape else {
                    return Err(OnnxError::Export {
                        node: info.name.clone(),
                        message: format!("adaptive average pool of a flat input [{input_shape}]"),
                    });
                };
                if *output == [1, 1] {
                    node.op_type = "GlobalAveragePool".into();
                } else if h % output[0] == 0 && w % output[1] == 0 {
                    let kernel = [h / output[0], w / output[1]];
                    node.op_type = "AveragePool".into();
                    node.attribute.push(ints("kernel_shape", &kernel));
                    node.attribute.push(ints("strides", &kernel));
                } else {
                    return Err(OnnxError::Export {
                        node: info.name.clone(),
                        message: format!(
                            "adaptive average pool from {h}x{w} to {}x{} has windows of \
                             different sizes, which ONNX cannot express",
                            output[0], output[1]
                        ),
                    });
                }
            }
            (OpSpec::Flatten, _) => {
                node.op_type = "Flatten".into();
                node.attribute.push(int("axis", 1));
            }
            (OpSpec::Add, _) => {
                node.op_type = if info.inputs.len() == 2 { "Add" } else { "Sum" }.into();
            }
            (OpSpec::Concat, _) => {
                node.op_type = "Concat".into();
                node.attribute.push(int("axis", 1));
            }
            (OpSpec::Dropout { prob }, _) => {
                node.op_type = "Dropout".into();
                init("ratio", &[], &[*prob as f32], &mut node);
            }
            (OpSpec::Identity, _) => node.op_type = "Identity".into(),
            (op, layer) => {
                return Err(OnnxError::Export {
                    node: info.name.clone(),
                    message: format!(
                        "op {} does not match its layer {}",
                        op.kind_name(),
                        layer.kind_name()
                    ),
                });
            }
        }
        g.node.push(node);
        if id != graph.output() {
            g.value_info.push(value_info(&info.name, info.shape));
        }
    }
    g.output
        .push(value_info(graph.name(graph.output()), graph.output_shape()));

    let mut model = ModelProto::new();
    model.ir_version = EXPORT_IR_VERSION;
    model.producer_name = "xprune".into();
    model.producer_version = env!("CARGO_PKG_VERSION").into();
    model.opset_import.push(Default::default());
    let opset = model.opset_import.last_mut().expect("just pushed");
    opset.domain = String::new();
    opset.version = EXPORT_OPSET;
    model.graph = MessageField::some(g);
    Ok(model)
}

/// `candidate`, or `candidate_2`, `candidate_3`, ... if taken; marks the result taken.
fn unique(taken: &mut HashSet<String>, candidate: &str) -> String {
    let mut name = candidate.to_string();
    let mut k = 2;
    while taken.contains(&name) {
        name = format!("{candidate}_{k}");
        k += 1;
    }
    taken.insert(name.clone());
    name
}

/// A float tensor value info of shape `[N, ...]`.
fn value_info(name: &str, shape: FeatureShape) -> ValueInfoProto {
    let mut dims = TensorShapeProto::new();
    dims.dim.push(Default::default());
    dims.dim[0].set_dim_param(BATCH_DIM.to_string());
    for d in shape.batch_dims(1).into_iter().skip(1) {
        dims.dim.push(Default::default());
        dims.dim
            .last_mut()
            .expect("just pushed")
            .set_dim_value(d as i64);
    }
    let mut ty = TypeProto::new();
    let tensor = ty.mut_tensor_type();
    tensor.elem_type = dtype::FLOAT;
    tensor.shape = MessageField::some(dims);
    let mut vi = ValueInfoProto::new();
    vi.name = name.to_string();
    vi.type_ = MessageField::some(ty);
    vi
}

fn int(name: &str, v: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INT.into();
    a.i = v;
    a
}

fn float(name: &str, v: f32) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::FLOAT.into();
    a.f = v;
    a
}

fn ints(name: &str, v: &[usize]) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INTS.into();
    a.ints = v.iter().map(|&x| x as i64).collect();
    a
}
