//! ONNX import: decoding a model and walking its graph into xprune nodes.
//!
//! The model is decoded with the protobuf bindings of `onnx-ir`; the graph is converted node
//! by node from the `ModelProto` (so that ONNX node names and every attribute are seen), and
//! the model is then also parsed by `onnx-ir`'s typed pipeline, whose inferred output shape
//! must agree with the converted graph (see `docs/onnx.md`).

use super::attr::NodeCtx;
use super::error::{OnnxError, Result};
use super::names::NameTable;
use super::tensor::{HostTensor, decode_tensor, dtype, dtype_name};
use burn::tensor::Device;
use onnx_ir::{Message, ModelProto, NodeProto, ValueInfoProto};
use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use xprune_graph::{FeatureShape, Graph, Layer, NodeDef, NodeId};

/// The oldest default-domain opset the importer accepts.
pub const MIN_OPSET: i64 = 11;

/// One dimension of a shape computed inside the model (`Shape` -> `Gather` -> ... chains).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dim {
    /// The batch dimension, whose size is only known at run time.
    Batch,
    /// A known size (or a `Reshape` code such as `-1` or `0`).
    Known(i64),
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Batch => write!(f, "N"),
            Dim::Known(v) => write!(f, "{v}"),
        }
    }
}

/// What an ONNX value name stands for during the conversion.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    /// The output of an xprune node (a batch of activations).
    Act(NodeId),
    /// A constant tensor (an initializer, a `Constant` node, or folded from them).
    Const(Arc<HostTensor>),
    /// A small integer vector (or scalar) computed from activation shapes.
    Dims {
        /// The entries.
        dims: Vec<Dim>,
        /// Whether the value is a scalar (rank 0) rather than a vector.
        scalar: bool,
    },
}

/// The conversion state: values by ONNX name and the xprune nodes built so far.
pub(crate) struct Importer {
    pub device: Device,
    pub opset: i64,
    /// Static batch size of the graph input, when the model fixes it.
    pub batch: Option<i64>,
    pub values: HashMap<String, Value>,
    /// How many times each value is read (by nodes and as a graph output).
    pub uses: HashMap<String, usize>,
    pub defs: Vec<NodeDef>,
    pub shapes: Vec<FeatureShape>,
    /// Bias-less linear and conv nodes whose only reader may add a constant bias to them.
    pub fusable: HashSet<NodeId>,
}

/// Imports an ONNX file as a [`Graph`] on `device`.
///
/// Errors name the file, and the node, op and attribute concerned.
pub fn import_onnx(path: impl AsRef<Path>, device: &Device) -> Result<Graph> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    import_onnx_bytes(&bytes, device).map_err(|e| e.in_file(path))
}

/// Imports an ONNX model held in memory as a [`Graph`] on `device`.
pub fn import_onnx_bytes(bytes: &[u8], device: &Device) -> Result<Graph> {
    let model = decode_model(bytes)?;
    let graph = convert(&model, device)?;
    validate_with_onnx_ir(bytes, &graph)?;
    Ok(graph)
}

/// Decodes the protobuf message, turning any failure (or panic) into an error.
pub(crate) fn decode_model(bytes: &[u8]) -> Result<ModelProto> {
    if bytes.is_empty() {
        return Err(OnnxError::Decode("the data is empty".into()));
    }
    check_framing(bytes).map_err(OnnxError::Decode)?;
    match catch_unwind(|| ModelProto::parse_from_bytes(bytes)) {
        Ok(Ok(model)) => Ok(model),
        Ok(Err(e)) => Err(OnnxError::Decode(e.to_string())),
        Err(panic) => Err(OnnxError::Decode(format!(
            "the protobuf decoder failed: {}",
            panic_message(panic.as_ref())
        ))),
    }
}

/// Walks the top-level protobuf fields and checks that each one fits in the data.
///
/// The protobuf decoder accepts an embedded message whose declared length runs past the end
/// of the data, so a file cut inside the graph could decode as a smaller model; the length of
/// every top-level field is checked here instead.
fn check_framing(bytes: &[u8]) -> std::result::Result<(), String> {
    fn varint(bytes: &[u8], pos: &mut usize) -> std::result::Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = bytes.get(*pos) else {
                return Err(format!("the data ends inside a varint at byte {}", *pos));
            };
            *pos += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!(
            "a varint longer than 10 bytes ends at byte {}",
            *pos
        ))
    }
    let mut pos = 0usize;
    while pos < bytes.len() {
        let start = pos;
        let tag = varint(bytes, &mut pos)?;
        let field = tag >> 3;
        let size = match tag & 7 {
            0 => {
                varint(bytes, &mut pos)?;
                0
            }
            1 => 8,
            2 => varint(bytes, &mut pos)?,
            5 => 4,
            w => {
                return Err(format!(
                    "unexpected wire type {w} of field {field} at byte {start}"
                ));
            }
        };
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| pos.checked_add(s))
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| {
                format!(
                    "field {field} at byte {start} needs {size} bytes, only {} remain (the file \
                     is truncated or corrupt)",
                    bytes.len() - pos
                )
            })?;
        pos = end;
    }
    Ok(())
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// The default-domain opset the model imports.
fn default_opset(model: &ModelProto) -> Result<i64> {
    let version = model
        .opset_import
        .iter()
        .filter(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .max()
        .ok_or_else(|| {
            OnnxError::Invalid("the model imports no opset for the default ONNX domain".into())
        })?;
    if version < MIN_OPSET {
        return Err(OnnxError::Opset {
            found: version,
            supported: format!(
                "opsets {MIN_OPSET} and newer are supported; export the model again with a newer \
                 opset (e.g. torch.onnx.export(..., opset_version=13))"
            ),
        });
    }
    Ok(version)
}

/// Converts a decoded model into a graph.
pub(crate) fn convert(model: &ModelProto, device: &Device) -> Result<Graph> {
    let Some(g) = model.graph.as_ref() else {
        return Err(OnnxError::Invalid("the model has no graph".into()));
    };
    let opset = default_opset(model)?;

    let mut values = HashMap::new();
    for init in &g.initializer {
        if init.name.is_empty() {
            return Err(OnnxError::Invalid("an initializer has no name".into()));
        }
        let t = decode_tensor(init)
            .map_err(|m| OnnxError::Invalid(format!("initializer `{}`: {m}", init.name)))?;
        values.insert(init.name.clone(), Value::Const(Arc::new(t)));
    }

    // The one graph input that is not an initializer (IR < 4 lists initializers as inputs).
    let inputs: Vec<&ValueInfoProto> = g
        .input
        .iter()
        .filter(|i| !values.contains_key(&i.name))
        .collect();
    let input = match inputs.as_slice() {
        [one] => *one,
        [] => return Err(OnnxError::Invalid("the graph has no input".into())),
        many => {
            let names: Vec<&str> = many.iter().map(|i| i.name.as_str()).collect();
            return Err(OnnxError::Invalid(format!(
                "the graph has {} inputs ({}); xprune graphs have exactly one",
                many.len(),
                names.join(", ")
            )));
        }
    };
    let (input_shape, batch) = input_shape(input)?;

    let mut uses: HashMap<String, usize> = HashMap::new();
    for node in &g.node {
        for i in node.input.iter().filter(|i| !i.is_empty()) {
            *uses.entry(i.clone()).or_default() += 1;
        }
    }
    for o in &g.output {
        *uses.entry(o.name.clone()).or_default() += 1;
    }

    let mut names = NameTable::new();
    let input_name = names.assign(&input.name, "input", 0);
    values.insert(input.name.clone(), Value::Act(0));
    let mut imp = Importer {
        device: device.clone(),
        opset,
        batch,
        values,
        uses,
        defs: vec![NodeDef::new(
            input_name,
            Layer::Input(xprune_graph::Input),
            Vec::new(),
        )],
        shapes: vec![input_shape],
        fusable: HashSet::new(),
    };

    for (index, node) in g.node.iter().enumerate() {
        let name = names.assign(&node.name, &node.op_type, index);
        imp.node(node, &name)?;
    }

    let output = match g.output.as_slice() {
        [one] => one,
        [] => return Err(OnnxError::Invalid("the graph has no output".into())),
        many => {
            let names: Vec<&str> = many.iter().map(|o| o.name.as_str()).collect();
            return Err(OnnxError::Invalid(format!(
                "the graph has {} outputs ({}); xprune graphs have exactly one",
                many.len(),
                names.join(", ")
            )));
        }
    };
    let out_id = match imp.values.get(&output.name) {
        Some(Value::Act(id)) => *id,
        Some(_) => {
            return Err(OnnxError::Invalid(format!(
                "the graph output `{}` is a constant, not computed from the input",
                output.name
            )));
        }
        None => {
            return Err(OnnxError::Invalid(format!(
                "the graph output `{}` is not produced by any node",
                output.name
            )));
        }
    };

    // Shapes the model declares must agree with the ones xprune computed.
    for vi in g.value_info.iter().chain(g.output.iter()) {
        if let Some(Value::Act(id)) = imp.values.get(&vi.name) {
            check_declared_shape(vi, imp.shapes[*id])?;
        }
    }

    Ok(Graph::from_nodes(input_shape, imp.defs, out_id)?)
}

/// Static dims of a tensor value info: `None` for a symbolic or unknown dim. `Err` when the
/// value is not a tensor or has no shape.
fn declared_dims(vi: &ValueInfoProto) -> std::result::Result<(i32, Vec<Option<i64>>), String> {
    let Some(ty) = vi.type_.as_ref() else {
        return Err("it has no type".into());
    };
    if !ty.has_tensor_type() {
        return Err("it is not a tensor".into());
    }
    let tensor = ty.tensor_type();
    let Some(shape) = tensor.shape.as_ref() else {
        return Err("its shape is not given".into());
    };
    let dims = shape
        .dim
        .iter()
        .map(|d| {
            if d.has_dim_value() {
                Some(d.dim_value())
            } else {
                None
            }
        })
        .collect();
    Ok((tensor.elem_type, dims))
}

/// The per-sample shape and the static batch size (if any) of the graph input.
fn input_shape(vi: &ValueInfoProto) -> Result<(FeatureShape, Option<i64>)> {
    let bad = |m: String| OnnxError::Invalid(format!("graph input `{}`: {m}", vi.name));
    let (elem, dims) = declared_dims(vi).map_err(bad)?;
    if elem != dtype::FLOAT {
        return Err(bad(format!(
            "element type {} is not supported (xprune models take FLOAT inputs)",
            dtype_name(elem)
        )));
    }
    let shown: Vec<String> = dims
        .iter()
        .map(|d| d.map_or("?".to_string(), |v| v.to_string()))
        .collect();
    let shown = format!("[{}]", shown.join(", "));
    let sample: Option<Vec<usize>> = dims
        .iter()
        .skip(1)
        .map(|d| d.and_then(|v| usize::try_from(v).ok()).filter(|&v| v > 0))
        .collect();
    let shape = match (dims.len(), sample) {
        (2, Some(s)) => FeatureShape::flat(s[0]),
        (4, Some(s)) => FeatureShape::spatial(s[0], s[1], s[2]),
        (2 | 4, None) => {
            return Err(bad(format!(
                "shape {shown} must have static positive sizes after the batch dimension"
            )));
        }
        _ => {
            return Err(bad(format!(
                "shape {shown} is not supported (supported: [N, features] or [N, C, H, W])"
            )));
        }
    };
    let batch = dims[0].filter(|&b| b > 0);
    Ok((shape, batch))
}

/// Checks a shape declared in the model (`value_info` or graph output) against xprune's.
fn check_declared_shape(vi: &ValueInfoProto, shape: FeatureShape) -> Result<()> {
    let Ok((_, dims)) = declared_dims(vi) else {
        return Ok(());
    };
    if dims.is_empty() {
        return Ok(());
    }
    let ours = shape.batch_dims(1);
    let agrees = dims.len() == ours.len()
        && dims
            .iter()
            .zip(&ours)
            .skip(1)
            .all(|(d, &o)| d.is_none_or(|d| d == o as i64));
    if agrees {
        Ok(())
    } else {
        Err(OnnxError::Invalid(format!(
            "the model declares value `{}` with shape {:?}, xprune computes [N, {shape}] \
             (an op's semantics differ between the model and xprune)",
            vi.name, dims
        )))
    }
}

/// Parses the model a second time with `onnx-ir`'s typed pipeline and checks that the output
/// shape it infers (when static) matches the converted graph.
///
/// A refusal or panic of onnx-ir is not an error: xprune's own conversion has already checked
/// every node, attribute and shape of the ops it supports, and onnx-ir 0.22.0 refuses some
/// valid models (it requires opset 19 for `AveragePool`'s `ceil_mode`, which ONNX has had
/// since opset 10).
fn validate_with_onnx_ir(bytes: &[u8], graph: &Graph) -> Result<()> {
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        onnx_ir::OnnxGraphBuilder::new().parse_bytes(bytes)
    }));
    let Ok(Ok(ir)) = parsed else {
        return Ok(());
    };
    let Some(out) = ir.outputs.first() else {
        return Ok(());
    };
    if let onnx_ir::ArgType::Tensor(t) = &out.ty {
        let ours = graph.output_shape().batch_dims(1);
        if t.rank != ours.len() {
            return Err(OnnxError::Invalid(format!(
                "onnx-ir infers a rank-{} output, xprune a rank-{} one ({:?})",
                t.rank,
                ours.len(),
                ours
            )));
        }
        if let Some(static_shape) = &t.static_shape {
            let agrees = static_shape
                .iter()
                .zip(&ours)
                .skip(1)
                .all(|(d, &o)| d.is_none_or(|d| d == o));
            if !agrees {
                return Err(OnnxError::Invalid(format!(
                    "onnx-ir infers the output shape {static_shape:?}, xprune [N, {}]",
                    graph.output_shape()
                )));
            }
        }
    }
    Ok(())
}

impl Importer {
    /// Converts one ONNX node.
    fn node(&mut self, node: &NodeProto, name: &str) -> Result<()> {
        let ctx = NodeCtx {
            name,
            op: &node.op_type,
        };
        if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            return Err(OnnxError::UnsupportedOp {
                node: name.to_string(),
                op: format!("{}::{}", node.domain, node.op_type),
                supported: format!("{} (default ONNX domain only)", super::ops::SUPPORTED_OPS),
            });
        }
        let mut inputs = Vec::with_capacity(node.input.len());
        for i in &node.input {
            if i.is_empty() {
                inputs.push(None);
                continue;
            }
            match self.values.get(i) {
                Some(v) => inputs.push(Some(v.clone())),
                None => {
                    return Err(ctx.error(format!(
                        "input `{i}` is not defined before this node (not a graph input, an \
                         initializer or an earlier node's output)"
                    )));
                }
            }
        }
        if node.output.is_empty() || node.output[0].is_empty() {
            return Err(ctx.error("the node has no output"));
        }
        for (k, o) in node.output.iter().enumerate().skip(1) {
            if !o.is_empty() && self.uses.get(o).copied().unwrap_or(0) > 0 {
                return Err(ctx.error(format!(
                    "output {k} (`{o}`) is used; only the first output of {} is supported",
                    node.op_type
                )));
            }
        }
        let value = self.convert_op(ctx, node, &inputs)?;
        self.values.insert(node.output[0].clone(), value);
        Ok(())
    }

    /// How many times a value is read.
    pub fn uses_of(&self, value: &str) -> usize {
        self.uses.get(value).copied().unwrap_or(0)
    }

    /// Adds an xprune node, checking its input shapes; errors name the ONNX node.
    pub fn push(&mut self, ctx: NodeCtx<'_>, layer: Layer, inputs: Vec<NodeId>) -> Result<NodeId> {
        let input_shapes: Vec<FeatureShape> = inputs.iter().map(|&i| self.shapes[i]).collect();
        let op = layer.op_spec(input_shapes.first().copied());
        let shape = op.infer_shape(&input_shapes).map_err(|m| ctx.error(m))?;
        self.defs.push(NodeDef::new(ctx.name, layer, inputs));
        self.shapes.push(shape);
        Ok(self.defs.len() - 1)
    }
}
