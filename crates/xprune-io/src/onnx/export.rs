//! ONNX export: any [`Graph`] (pruned or not) as an ONNX model (opset 13 or newer, IR
//! version 8), each layer written by its kind through the neutral [`OpWriter`].

use super::error::{OnnxError, Result};
use super::tensor::{dtype, encode_f32};
use onnx_ir::{
    AttributeProto, AttributeType, GraphProto, Message, ModelProto, NodeProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use protobuf::MessageField;
use std::collections::HashSet;
use std::path::Path;
use xprune_graph::kind::{Attr, ConstData, ConstTensor, OpWriter};
use xprune_graph::{FeatureShape, Graph, Layer, NodeId};

/// The default-domain opset of exported models (layers that need a newer one raise it).
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

/// Encodes `graph` as an ONNX model: opset 13, or the newest opset one of its layers needs
/// (14 for `HardSwish`, 17 for `LayerNormalization`, 18 for `ReduceMean` with its axes as an
/// input, 20 for the tanh form of `Gelu`), IR version 8, one `float` input of shape
/// `[N, ...]` with a symbolic batch dimension `N`, weights as initializers, ONNX node names
/// equal to the xprune node names and every value typed (`value_info`).
///
/// Every layer writes itself through its kind ([`Layer::export`]): convolutions as `Conv`,
/// linear layers as `Gemm` (`transB = 1`) on vectors and `MatMul` + `Add` otherwise, and so
/// on (see `docs/onnx.md`). A layer that ONNX cannot express (an adaptive average pool with
/// windows of different sizes) is an error naming the node.
pub fn export_onnx_bytes(graph: &Graph) -> Result<Vec<u8>> {
    let model = to_model_proto(graph)?;
    model.write_to_bytes().map_err(|e| OnnxError::Export {
        node: graph.name(graph.output()).to_string(),
        message: format!("protobuf encoding failed: {e}"),
    })
}

/// One node being written: its operators are collected and the last one's output is renamed
/// to the node's name.
struct NodeWriter<'a> {
    graph: &'a Graph,
    id: NodeId,
    taken: &'a mut HashSet<String>,
    initializers: Vec<TensorProto>,
    ops: Vec<NodeProto>,
    opset: i64,
    /// The operator that carries the node's name (the last one when `None`).
    named: Option<usize>,
}

impl OpWriter for NodeWriter<'_> {
    fn node_name(&self) -> &str {
        self.graph.name(self.id)
    }

    fn input_count(&self) -> usize {
        self.graph.nodes()[self.id].inputs.len()
    }

    fn input(&self, i: usize) -> String {
        let info = &self.graph.nodes()[self.id];
        info.inputs
            .get(i)
            .map(|&k| self.graph.name(k).to_string())
            .unwrap_or_default()
    }

    fn input_shape(&self, i: usize) -> FeatureShape {
        let info = &self.graph.nodes()[self.id];
        info.inputs
            .get(i)
            .map_or(info.shape, |&k| self.graph.nodes()[k].shape)
    }

    fn output_shape(&self) -> FeatureShape {
        self.graph.nodes()[self.id].shape
    }

    fn constant(&mut self, role: &str, t: ConstTensor) -> String {
        let name = unique(self.taken, &format!("{}.{role}", self.node_name()));
        self.initializers.push(encode(&name, &t));
        name
    }

    fn op(
        &mut self,
        op_type: &str,
        inputs: Vec<String>,
        attrs: Vec<(&'static str, Attr)>,
    ) -> String {
        let base = format!("{}/{}", self.node_name(), self.ops.len());
        let out = unique(self.taken, &base);
        let mut node = NodeProto::new();
        node.op_type = op_type.to_string();
        node.input.extend(inputs);
        node.output.push(out.clone());
        for (name, value) in attrs {
            node.attribute.push(attribute(name, value));
        }
        self.ops.push(node);
        out
    }

    fn require_opset(&mut self, opset: i64) {
        self.opset = self.opset.max(opset);
    }

    fn name_last_op(&mut self) {
        self.named = self.ops.len().checked_sub(1);
    }
}

/// Builds the ONNX `ModelProto` of a graph.
pub(crate) fn to_model_proto(graph: &Graph) -> Result<ModelProto> {
    let mut g = GraphProto::new();
    g.name = "xprune".to_string();
    let nodes = graph.nodes();
    // Value names are the node names; other names are made unique against them.
    let mut taken: HashSet<String> = nodes.iter().map(|n| n.name.clone()).collect();
    g.input.push(value_info(&nodes[0].name, nodes[0].shape));
    let mut opset = EXPORT_OPSET;
    for (id, (info, layer)) in nodes.iter().zip(graph.layers()).enumerate().skip(1) {
        if matches!(layer, Layer::Input(_)) {
            return Err(OnnxError::Export {
                node: info.name.clone(),
                message: "only node 0 can be the input".into(),
            });
        }
        let mut w = NodeWriter {
            graph,
            id,
            taken: &mut taken,
            initializers: Vec::new(),
            ops: Vec::new(),
            opset: EXPORT_OPSET,
            named: None,
        };
        layer.export(&mut w).map_err(|message| OnnxError::Export {
            node: info.name.clone(),
            message,
        })?;
        let NodeWriter {
            initializers,
            mut ops,
            opset: needed,
            named,
            ..
        } = w;
        opset = opset.max(needed);
        let Some(last) = ops.last_mut() else {
            return Err(OnnxError::Export {
                node: info.name.clone(),
                message: format!("the {} layer wrote no operator", layer.kind_name()),
            });
        };
        last.output[0] = info.name.clone();
        let main = named.unwrap_or(ops.len() - 1);
        for (k, op) in ops.iter_mut().enumerate() {
            op.name = if k == main {
                info.name.clone()
            } else {
                format!("{}/{k}", info.name)
            };
        }
        g.initializer.extend(initializers);
        g.node.extend(ops);
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
    let o = model.opset_import.last_mut().expect("just pushed");
    o.domain = String::new();
    o.version = opset;
    model.graph = MessageField::some(g);
    Ok(model)
}

fn encode(name: &str, t: &ConstTensor) -> TensorProto {
    match &t.data {
        ConstData::F32(v) => encode_f32(name, &t.dims, v),
        ConstData::I64(v) => {
            let mut p = TensorProto::new();
            p.name = name.to_string();
            p.data_type = dtype::INT64;
            p.dims = t.dims.iter().map(|&d| d as i64).collect();
            let mut raw = Vec::with_capacity(v.len() * 8);
            for x in v {
                raw.extend_from_slice(&x.to_le_bytes());
            }
            p.raw_data = raw.into();
            p
        }
    }
}

fn attribute(name: &str, value: Attr) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    match value {
        Attr::Int(v) => {
            a.type_ = AttributeType::INT.into();
            a.i = v;
        }
        Attr::Ints(v) => {
            a.type_ = AttributeType::INTS.into();
            a.ints = v;
        }
        Attr::Float(v) => {
            a.type_ = AttributeType::FLOAT.into();
            a.f = v;
        }
        Attr::Floats(v) => {
            a.type_ = AttributeType::FLOATS.into();
            a.floats = v;
        }
        Attr::Str(v) => {
            a.type_ = AttributeType::STRING.into();
            a.s = v.into_bytes().into();
        }
        Attr::Tensor(t) => {
            a.type_ = AttributeType::TENSOR.into();
            a.t = MessageField::some(encode("", &t));
        }
        Attr::Other(d) => {
            a.type_ = AttributeType::STRING.into();
            a.s = d.into_bytes().into();
        }
    }
    a
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
