//! ONNX import: decoding a model and walking its graph into xprune nodes.
//!
//! The model is decoded with the protobuf bindings of `onnx-ir`; the graph is converted node
//! by node from the `ModelProto` (so that ONNX node names and every attribute are seen), and
//! the model is then also parsed by `onnx-ir`'s typed pipeline, whose inferred output shape
//! must agree with the converted graph (see `docs/onnx.md`).

use super::attr::{NodeCtx, convert as convert_attrs};
use super::error::{OnnxError, Result};
use super::names::NameTable;
use super::tensor::{decode_tensor, dtype, dtype_name};
use burn::tensor::Device;
use onnx_ir::{Message, ModelProto, ValueInfoProto};
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use xprune_graph::kind::{Imported, OpGraph, OpImport, OpNode, OpValue};
use xprune_graph::{FeatureShape, Graph, Input, Layer, NodeDef, NodeId};

/// The oldest default-domain opset the importer accepts.
pub const MIN_OPSET: i64 = 11;

/// The conversion state: values by ONNX name and the xprune nodes built so far.
pub(crate) struct Importer {
    pub device: Device,
    pub opset: i64,
    /// Static batch size of the graph input, when the model fixes it.
    pub batch: Option<i64>,
    pub values: HashMap<String, OpValue>,
    pub defs: Vec<NodeDef>,
    pub shapes: Vec<FeatureShape>,
}

/// The op types folded by the importer itself (on constants and shapes only).
pub use super::shape_ops::FOLDED_OPS as SHAPE_OPS;

/// The ONNX op types the importer converts, for error messages and the documentation: every
/// op a layer kind imports, the ops that only appear inside the multi-node patterns kinds
/// recognise (with the pattern), and the ops folded on constants and shapes.
pub fn supported_ops() -> String {
    let fusions = xprune_graph::fusions();
    let internal: Vec<&str> = fusions
        .iter()
        .filter(|f| f.internal)
        .map(|f| f.produces)
        .collect();
    let mut direct = xprune_graph::onnx_ops();
    direct.retain(|op| !internal.contains(op));
    let mut in_patterns: Vec<String> = Vec::new();
    for f in &fusions {
        for op in f.reads {
            if !direct.contains(op) && !in_patterns.iter().any(|p| p.starts_with(&format!("{op} ")))
            {
                in_patterns.push(format!("{op} (in {})", f.pattern));
            }
        }
    }
    format!(
        "{}; in patterns: {}; on constants and shapes only: {}",
        direct.join(", "),
        in_patterns.join(", "),
        SHAPE_OPS.join(", ")
    )
}

/// Applies every kind's fusions until none applies. Each rewrite consumes at least one node of
/// its pattern (most replace several nodes by one; the split fusion turns one `Split` into one
/// node per part, which no fusion matches again), so the budget of `n + 1` rewrites for `n`
/// nodes only guards against a faulty fusion.
fn fuse_all(g: &mut OpGraph) {
    let fusions = xprune_graph::fusions();
    let mut budget = g.nodes.len() + 1;
    loop {
        let applied: usize = fusions.iter().map(|f| (f.apply)(g)).sum();
        if applied == 0 || budget <= applied {
            break;
        }
        budget -= applied;
    }
    drop_unread(g);
}

/// Removes the nodes whose outputs nothing reads (no node and no graph output), repeatedly: the
/// shape computations a fusion made unnecessary (a class token's expand target) would otherwise
/// still be converted, and may use ops only such computations use.
fn drop_unread(g: &mut OpGraph) {
    loop {
        let mut read: std::collections::HashSet<&str> =
            g.outputs.iter().map(String::as_str).collect();
        for n in &g.nodes {
            read.extend(n.inputs.iter().map(String::as_str));
        }
        let unread: Vec<usize> = (0..g.nodes.len())
            .filter(|&k| {
                g.nodes[k]
                    .outputs
                    .iter()
                    .all(|o| !read.contains(o.as_str()))
            })
            .collect();
        if unread.is_empty() {
            return;
        }
        for k in unread.into_iter().rev() {
            g.nodes.remove(k);
        }
    }
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

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
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
        values.insert(init.name.clone(), OpValue::Const(Arc::new(t)));
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

    let mut names = NameTable::new();
    let input_name = names.assign(&input.name, "input", 0);
    values.insert(
        input.name.clone(),
        OpValue::Act {
            node: 0,
            shape: input_shape,
        },
    );

    // The neutral graph, with xprune names, on which kinds' fusions run.
    let mut og = OpGraph {
        nodes: Vec::with_capacity(g.node.len()),
        consts: HashMap::new(),
        outputs: g.output.iter().map(|o| o.name.clone()).collect(),
    };
    for (k, v) in &values {
        if let OpValue::Const(t) = v {
            og.consts.insert(k.clone(), t.clone());
        }
    }
    // Every value is defined once (SSA): the graph input, the initializers, node outputs.
    let mut defined: std::collections::HashSet<&str> = values.keys().map(String::as_str).collect();
    for (index, node) in g.node.iter().enumerate() {
        let name = names.assign(&node.name, &node.op_type, index);
        let op = if node.domain.is_empty() || node.domain == "ai.onnx" {
            node.op_type.clone()
        } else {
            format!("{}::{}", node.domain, node.op_type)
        };
        let ctx = NodeCtx {
            name: &name,
            op: &node.op_type,
        };
        let attrs = convert_attrs(ctx, &node.attribute)?;
        if node.output.first().is_none_or(|o| o.is_empty()) {
            return Err(ctx.error("the node has no output"));
        }
        for o in node.output.iter().filter(|o| !o.is_empty()) {
            if !defined.insert(o.as_str()) {
                return Err(ctx.error(format!(
                    "output `{o}` is already defined (by the graph input, an initializer or an \
                     earlier node); every value must be defined once"
                )));
            }
        }
        og.nodes.push(OpNode {
            name,
            op,
            inputs: node.input.to_vec(),
            outputs: node.output.to_vec(),
            attrs,
        });
    }
    let (imp, out_id) = import_op_graph(og, values, input_name, input_shape, batch, opset, device)?;

    // Shapes the model declares must agree with the ones xprune computed.
    for vi in g.value_info.iter().chain(g.output.iter()) {
        if let Some(OpValue::Act { node, .. }) = imp.values.get(&vi.name) {
            check_declared_shape(vi, imp.shapes[*node])?;
        }
    }

    Ok(Graph::from_nodes(input_shape, imp.defs, out_id)?)
}

/// Imports a neutral graph whose one input is node 0 (`input_name`, already in `values` as an
/// activation): runs every kind's fusions, converts each node, and resolves the graph's one
/// output. Shared by the ONNX importer and the tracer of Burn modules
/// ([`crate::trace`]), so that both read models through the same kinds' imports.
pub(crate) fn import_op_graph(
    mut og: OpGraph,
    mut values: HashMap<String, OpValue>,
    input_name: String,
    input_shape: FeatureShape,
    batch: Option<i64>,
    opset: i64,
    device: &Device,
) -> Result<(Importer, NodeId)> {
    // The fusions check what they read; a panic in one would be a bug, reported as an error
    // rather than taking the caller's process down.
    catch_unwind(AssertUnwindSafe(|| fuse_all(&mut og))).map_err(|panic| {
        OnnxError::Invalid(format!(
            "internal error while recognising multi-node patterns: {}",
            panic_message(panic.as_ref())
        ))
    })?;
    for (k, t) in &og.consts {
        values
            .entry(k.clone())
            .or_insert_with(|| OpValue::Const(t.clone()));
    }

    let mut imp = Importer {
        device: device.clone(),
        opset,
        batch,
        values,
        defs: vec![NodeDef::new(
            input_name,
            Layer::Input(Input::new(input_shape)),
            Vec::new(),
        )],
        shapes: vec![input_shape],
    };
    for node in &og.nodes {
        imp.node(node, &og)?;
    }

    let output = match og.outputs.as_slice() {
        [one] => one,
        [] => return Err(OnnxError::Invalid("the graph has no output".into())),
        many => {
            return Err(OnnxError::Invalid(format!(
                "the graph has {} outputs ({}); xprune graphs have exactly one",
                many.len(),
                many.join(", ")
            )));
        }
    };
    let out_id = match imp.values.get(output) {
        Some(OpValue::Act { node, .. }) => *node,
        Some(_) => {
            return Err(OnnxError::Invalid(format!(
                "the graph output `{output}` is a constant, not computed from the input"
            )));
        }
        None => {
            return Err(OnnxError::Invalid(format!(
                "the graph output `{output}` is not produced by any node"
            )));
        }
    };
    Ok((imp, out_id))
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
    /// Converts one node of the neutral graph.
    fn node(&mut self, node: &OpNode, og: &OpGraph) -> Result<()> {
        let ctx = NodeCtx {
            name: &node.name,
            op: &node.op,
        };
        if node.op.contains("::") {
            return Err(OnnxError::UnsupportedOp {
                node: node.name.clone(),
                op: node.op.clone(),
                supported: format!("{} (default ONNX domain only)", supported_ops()),
            });
        }
        let mut inputs = Vec::with_capacity(node.inputs.len());
        for i in &node.inputs {
            if i.is_empty() {
                inputs.push(OpValue::Absent);
                continue;
            }
            match self.values.get(i) {
                Some(v) => inputs.push(v.clone()),
                None => {
                    return Err(ctx.error(format!(
                        "input `{i}` is not defined before this node (not a graph input, an \
                         initializer or an earlier node's output)"
                    )));
                }
            }
        }
        if node.outputs.is_empty() || node.outputs[0].is_empty() {
            return Err(ctx.error("the node has no output"));
        }
        for (k, o) in node.outputs.iter().enumerate().skip(1) {
            if !o.is_empty() && og.uses(o) > 0 {
                return Err(ctx.error(format!(
                    "output {k} (`{o}`) is used; only the first output of {} is supported",
                    node.op
                )));
            }
        }
        let value = match super::shape_ops::fold(ctx, &node.attrs, &inputs, self.opset, self.batch)?
        {
            Some(v) => v,
            None => self.import(ctx, node, &inputs)?,
        };
        self.values.insert(node.outputs[0].clone(), value);
        Ok(())
    }

    /// Offers a node to the kinds.
    fn import(&mut self, ctx: NodeCtx<'_>, node: &OpNode, inputs: &[OpValue]) -> Result<OpValue> {
        let request = OpImport {
            op: &node.op,
            name: &node.name,
            opset: self.opset,
            batch: self.batch,
            attrs: &node.attrs,
            inputs,
            device: &self.device,
        };
        match xprune_graph::import_node(&request) {
            None => Err(OnnxError::UnsupportedOp {
                node: node.name.clone(),
                op: node.op.clone(),
                supported: supported_ops(),
            }),
            Some(Err(e)) => Err(ctx.import_error(e)),
            Some(Ok(Imported::Const(t))) => Ok(OpValue::Const(t)),
            Some(Ok(Imported::Alias(id))) => Ok(OpValue::Act {
                node: id,
                shape: self.shapes[id],
            }),
            Some(Ok(Imported::Node { layer, inputs })) => {
                let id = self.push(ctx, layer, inputs)?;
                Ok(OpValue::Act {
                    node: id,
                    shape: self.shapes[id],
                })
            }
        }
    }

    /// Adds an xprune node, checking its input shapes; errors name the ONNX node.
    fn push(&mut self, ctx: NodeCtx<'_>, mut layer: Layer, inputs: Vec<NodeId>) -> Result<NodeId> {
        let input_shapes: Vec<FeatureShape> = inputs.iter().map(|&i| self.shapes[i]).collect();
        layer.normalize(&input_shapes);
        let shape = layer
            .spec()
            .infer_shape(&input_shapes)
            .map_err(|m| ctx.error(m))?;
        self.defs.push(NodeDef::new(ctx.name, layer, inputs));
        self.shapes.push(shape);
        Ok(self.defs.len() - 1)
    }
}
