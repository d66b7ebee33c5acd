//! Recorded Burn operations written as the neutral ONNX-style graph the importer reads.
//!
//! Each operation becomes the ONNX node with the same meaning (`Conv2d` -> `Conv`, `BatchNorm`
//! -> `BatchNormalization`, `Linear` -> `Gemm` or `MatMul` + `Add`, `Reshape` -> `Reshape` with
//! the batch dimension kept, ...); tensors the capture recorded values for (parameters, running
//! statistics, constants made inside the forward) become initializers.

use super::TraceError;
use crate::onnx::{NameTable, import_op_graph};
use burn::tensor::{DType, Device, Tensor, TensorData};
use burn_capture::{CaptureBackend, CapturedGraph, TensorId};
use burn_ir::{
    ActivationOperationIr, BaseOperationIr, FloatOperationIr, ModuleOperationIr,
    NumericOperationIr, OperationIr, ScalarIr, TensorIr,
};
use std::collections::HashMap;
use std::sync::Arc;
use xprune_graph::kind::{Attr, ConstTensor, OpAttrs, OpGraph, OpNode, OpValue};
use xprune_graph::{FeatureShape, Graph};

/// The default-domain opset the written graph follows (`ReduceMean` takes its axes as an
/// input from 18 on).
const OPSET: i64 = 18;

/// The capture id of a tensor on the capture device.
pub(crate) fn tensor_id<const D: usize>(tensor: &Tensor<D>) -> Option<TensorId> {
    tensor
        .clone()
        .try_into_primitive::<CaptureBackend>()
        .ok()
        .map(|t| t.id())
}

/// The traced graph and, for every parameter tensor read by a layer, its node and role.
pub(crate) struct Built {
    pub graph: Graph,
    pub sites: HashMap<TensorId, (String, String)>,
}

/// The value name of a tensor.
fn value(t: &TensorIr) -> String {
    format!("t{}", t.id.value())
}

/// A recorded value as an importer constant.
fn constant(data: &TensorData) -> Result<ConstTensor, String> {
    let dims = data.shape().as_slice().to_vec();
    match data.dtype() {
        DType::I64 | DType::I32 | DType::I16 | DType::I8 | DType::U64 | DType::U32 => {
            let v = data
                .clone()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .map_err(|e| format!("{e:?}"))?;
            Ok(ConstTensor::i64(dims, v))
        }
        _ => {
            let v = data
                .clone()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| format!("{e:?}"))?;
            Ok(ConstTensor::f32(dims, v))
        }
    }
}

fn scalar(s: &ScalarIr) -> f64 {
    match *s {
        ScalarIr::Float(v) => v,
        ScalarIr::Int(v) => v as f64,
        ScalarIr::UInt(v) => v as f64,
        ScalarIr::Bool(v) => f64::from(u8::from(v)),
    }
}

/// A short name of a recorded operation (`Float.Exp`, `Base.Gather`).
fn op_name(op: &OperationIr) -> String {
    let debug = format!("{op:?}");
    let head = debug.split('{').next().unwrap_or_default();
    let words: Vec<&str> = head
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty() && !w.ends_with("Ir") && !is_dtype(w))
        .collect();
    words.join(".")
}

fn is_dtype(w: &str) -> bool {
    matches!(
        w,
        "F64"
            | "F32"
            | "F16"
            | "BF16"
            | "Flex32"
            | "I64"
            | "I32"
            | "I16"
            | "I8"
            | "U64"
            | "U32"
            | "U16"
            | "U8"
            | "Bool"
            | "QFloat"
    )
}

/// The neutral graph under construction.
struct Writer<'a> {
    captured: &'a CapturedGraph,
    names: &'a HashMap<TensorId, String>,
    og: OpGraph,
    table: NameTable,
    sites: HashMap<TensorId, (String, String)>,
    /// Module paths and how many operations read their parameters.
    uses: HashMap<String, usize>,
    /// Constants reshaped from another recorded value: the value they come from.
    derived: HashMap<TensorId, TensorId>,
    fresh: usize,
}

impl Writer<'_> {
    /// The value name of an operand, registering recorded values as initializers.
    fn read(&mut self, t: &TensorIr) -> Result<String, String> {
        let name = value(t);
        if !self.og.consts.contains_key(&name)
            && self.is_constant(t)
            && let Some(data) = self.captured.values.get(&t.id)
        {
            self.og
                .consts
                .insert(name.clone(), Arc::new(constant(data)?));
        }
        Ok(name)
    }

    /// The recorded value `t` is, or is reshaped from.
    fn source(&self, t: &TensorIr) -> TensorId {
        let mut id = t.id;
        while let Some(&from) = self.derived.get(&id) {
            id = from;
        }
        id
    }

    /// Whether `t` is a constant (a recorded value or a reshape of one).
    fn is_constant(&self, t: &TensorIr) -> bool {
        self.og.consts.contains_key(&value(t))
            || (self.captured.values.contains_key(&t.id)
                && !self.captured.graph.inputs.contains(&t.id))
    }

    /// Records `t` as the bias of the layer whose parameter it is (a bias added after a
    /// `MatMul`), without counting a use of the layer.
    fn bias_site(&mut self, t: &TensorIr, other: &TensorIr) {
        let source = self.source(t);
        if let Some(full) = self.names.get(&source) {
            let module = match full.rsplit_once('.') {
                Some((m, _)) => m.to_string(),
                // A bias of the traced module itself: the node computing the other operand.
                None => self
                    .og
                    .nodes
                    .iter()
                    .find(|n| n.outputs.contains(&value(other)))
                    .map(|n| n.name.clone())
                    .unwrap_or_default(),
            };
            self.sites.insert(source, (module, "bias".to_string()));
        }
    }

    /// A new initializer.
    fn initializer(&mut self, t: ConstTensor) -> String {
        self.fresh += 1;
        let name = format!("c{}", self.fresh);
        self.og.consts.insert(name.clone(), Arc::new(t));
        name
    }

    /// The module path of a layer from one of its parameters (`block.conv.weight` ->
    /// `block.conv`), recording the parameter's role.
    fn layer_of(&mut self, params: &[(&TensorIr, &str)]) -> Option<String> {
        let mut path = None;
        for (t, role) in params {
            // A parameter may reach the layer reshaped (PReLU's slopes as [1, C, 1, 1]).
            let source = self.source(t);
            let Some(full) = self.names.get(&source) else {
                continue;
            };
            let module = match full.rsplit_once('.') {
                Some((m, _)) => m.to_string(),
                None => String::new(),
            };
            self.sites
                .insert(source, (module.clone(), role.to_string()));
            path.get_or_insert(module);
        }
        if let Some(p) = path.as_ref().filter(|p| !p.is_empty()) {
            *self.uses.entry(p.clone()).or_default() += 1;
        }
        path
    }

    fn push(
        &mut self,
        name: Option<String>,
        op: &str,
        inputs: Vec<String>,
        out: &TensorIr,
        attrs: OpAttrs,
    ) {
        self.push_value(name, op, inputs, value(out), attrs);
    }

    /// [`Writer::push`] with the output value named explicitly (an intermediate value).
    fn push_value(
        &mut self,
        name: Option<String>,
        op: &str,
        inputs: Vec<String>,
        output: String,
        attrs: OpAttrs,
    ) {
        let index = self.og.nodes.len();
        let top_level = name.as_deref() == Some("");
        let name = self.table.assign(name.as_deref().unwrap_or(""), op, index);
        if top_level {
            // Parameters of the traced module itself (a bare `Linear`): the node gets the
            // op's name, and so do the sites recorded for it.
            for site in self.sites.values_mut() {
                if site.0.is_empty() {
                    site.0 = name.clone();
                }
            }
        }
        self.og.nodes.push(OpNode {
            name,
            op: op.to_string(),
            inputs,
            outputs: vec![output],
            attrs,
        });
    }

    /// A layer's inputs: the activation `x`, then its parameters (the present ones, in
    /// order), whose module path names the node.
    fn layer(
        &mut self,
        x: &TensorIr,
        params: &[(Option<&TensorIr>, &str)],
    ) -> Result<(Option<String>, Vec<String>), String> {
        let present: Vec<(&TensorIr, &str)> = params
            .iter()
            .filter_map(|(t, role)| t.map(|t| (t, *role)))
            .collect();
        let name = self.layer_of(&present);
        let mut inputs = vec![self.read(x)?];
        for (t, _) in &present {
            inputs.push(self.read(t)?);
        }
        Ok((name, inputs))
    }

    /// Writes one operation; `Ok(false)` when the graph has no counterpart for it.
    fn op(&mut self, op: &OperationIr) -> Result<bool, String> {
        use ModuleOperationIr as M;
        let ints = |v: &[usize]| Attr::Ints(v.iter().map(|&x| x as i64).collect());
        match op {
            // Parameters and constants: recorded values, read as initializers where used.
            OperationIr::Init(_) | OperationIr::Drop(_) => {}
            OperationIr::Module(M::Conv2d(c)) => {
                let (name, inputs) = self.layer(
                    &c.x,
                    &[(Some(&c.weight), "weight"), (c.bias.as_ref(), "bias")],
                )?;
                let o = &c.options;
                let kernel = &c.weight.shape.as_slice()[2..];
                let attrs = OpAttrs::new()
                    .with("kernel_shape", ints(kernel))
                    .with("strides", ints(&o.stride))
                    .with(
                        "pads",
                        ints(&[
                            o.padding[0].0,
                            o.padding[1].0,
                            o.padding[0].1,
                            o.padding[1].1,
                        ]),
                    )
                    .with("dilations", ints(&o.dilation))
                    .with("group", Attr::Int(o.groups as i64));
                self.push(name, "Conv", inputs, &c.out, attrs);
            }
            OperationIr::Module(M::BatchNorm(b)) => {
                let (name, inputs) = self.layer(
                    &b.x,
                    &[
                        (Some(&b.gamma), "gamma"),
                        (Some(&b.beta), "beta"),
                        (Some(&b.mean), "running_mean"),
                        (Some(&b.variance), "running_var"),
                    ],
                )?;
                let attrs = OpAttrs::new().with("epsilon", Attr::Float(scalar(&b.epsilon) as f32));
                self.push(name, "BatchNormalization", inputs, &b.out, attrs);
            }
            OperationIr::Module(M::LayerNorm(l)) => {
                let (name, inputs) = self.layer(
                    &l.input,
                    &[(Some(&l.gamma), "gamma"), (l.beta.as_ref(), "beta")],
                )?;
                let attrs = OpAttrs::new()
                    .with("axis", Attr::Int(-1))
                    .with("epsilon", Attr::Float(scalar(&l.epsilon) as f32));
                self.push(name, "LayerNormalization", inputs, &l.out, attrs);
            }
            OperationIr::Module(M::Linear(l)) => {
                // Burn 0.22 records `Linear` as `matmul` + `add` (below); a backend that
                // records the layer gets the same nodes.
                let (name, mut inputs) = self.layer(
                    &l.x,
                    &[(Some(&l.weight), "weight"), (l.bias.as_ref(), "bias")],
                )?;
                if l.x.shape.num_dims() == 2 || l.bias.is_none() {
                    let op = if l.bias.is_some() { "Gemm" } else { "MatMul" };
                    self.push(name, op, inputs, &l.out, OpAttrs::new());
                } else {
                    // `MatMul`, then the bias `Add` the linear kind's fusion takes in.
                    let bias = inputs.pop().unwrap_or_default();
                    self.fresh += 1;
                    let product = format!("m{}", self.fresh);
                    self.push_value(name, "MatMul", inputs, product.clone(), OpAttrs::new());
                    self.push(None, "Add", vec![product, bias], &l.out, OpAttrs::new());
                }
            }
            OperationIr::Module(M::MaxPool2d(p)) => {
                let attrs = OpAttrs::new()
                    .with("kernel_shape", ints(&p.kernel_size))
                    .with("strides", ints(&p.stride))
                    .with(
                        "pads",
                        ints(&[p.padding[0], p.padding[1], p.padding[0], p.padding[1]]),
                    )
                    .with("dilations", ints(&p.dilation))
                    .with("ceil_mode", Attr::Int(i64::from(p.ceil_mode)));
                let x = self.read(&p.x)?;
                self.push(None, "MaxPool", vec![x], &p.out, attrs);
            }
            OperationIr::Module(M::AvgPool2d(p)) => {
                let attrs = OpAttrs::new()
                    .with("kernel_shape", ints(&p.kernel_size))
                    .with("strides", ints(&p.stride))
                    .with(
                        "pads",
                        ints(&[p.padding[0], p.padding[1], p.padding[0], p.padding[1]]),
                    )
                    .with(
                        "count_include_pad",
                        Attr::Int(i64::from(p.count_include_pad)),
                    )
                    .with("ceil_mode", Attr::Int(i64::from(p.ceil_mode)));
                let x = self.read(&p.x)?;
                self.push(None, "AveragePool", vec![x], &p.out, attrs);
            }
            OperationIr::Module(M::AdaptiveAvgPool2d(p)) => {
                if p.output_size != [1, 1] {
                    return Err(format!(
                        "an adaptive average pool to {:?}; only [1, 1] (global average pooling) \
                         is supported",
                        p.output_size
                    ));
                }
                let x = self.read(&p.x)?;
                self.push(None, "GlobalAveragePool", vec![x], &p.out, OpAttrs::new());
            }
            OperationIr::Activation(a) => match a {
                ActivationOperationIr::Relu(u) => self.unary("Relu", u.input.clone(), &u.out)?,
                ActivationOperationIr::Sigmoid(u) => {
                    self.unary("Sigmoid", u.input.clone(), &u.out)?
                }
                ActivationOperationIr::Gelu(u) => self.unary("Gelu", u.input.clone(), &u.out)?,
                ActivationOperationIr::LeakyRelu(s) => {
                    let x = self.read(&s.lhs)?;
                    let attrs = OpAttrs::new().with("alpha", Attr::Float(scalar(&s.rhs) as f32));
                    self.push(None, "LeakyRelu", vec![x], &s.out, attrs);
                }
                ActivationOperationIr::HardSigmoid(h) => {
                    let x = self.read(&h.tensor)?;
                    let attrs = OpAttrs::new()
                        .with("alpha", Attr::Float(scalar(&h.alpha) as f32))
                        .with("beta", Attr::Float(scalar(&h.beta) as f32));
                    self.push(None, "HardSigmoid", vec![x], &h.out, attrs);
                }
                ActivationOperationIr::PRelu(b) => {
                    let (name, inputs) = self.layer(&b.lhs, &[(Some(&b.rhs), "alpha")])?;
                    self.push(name, "PRelu", inputs, &b.out, OpAttrs::new());
                }
                ActivationOperationIr::Softmax(d) => {
                    let x = self.read(&d.input)?;
                    let attrs = OpAttrs::new().with("axis", Attr::Int(d.axis as i64));
                    self.push(None, "Softmax", vec![x], &d.out, attrs);
                }
                _ => return Ok(false),
            },
            OperationIr::Float(_, f) => match f {
                FloatOperationIr::Matmul(m) => {
                    let (name, inputs) = self.layer(&m.lhs, &[(Some(&m.rhs), "weight")])?;
                    self.push(name, "MatMul", inputs, &m.out, OpAttrs::new());
                }
                FloatOperationIr::Tanh(u) => self.unary("Tanh", u.input.clone(), &u.out)?,
                FloatOperationIr::Erf(u) => self.unary("Erf", u.input.clone(), &u.out)?,
                FloatOperationIr::Exp(u) => self.unary("Exp", u.input.clone(), &u.out)?,
                _ => return Ok(false),
            },
            OperationIr::NumericFloat(_, n) => match n {
                NumericOperationIr::Add(b) => {
                    for (t, other) in [(&b.lhs, &b.rhs), (&b.rhs, &b.lhs)] {
                        if self.is_constant(t) {
                            self.bias_site(t, other);
                        }
                    }
                    self.binary("Add", b.lhs.clone(), b.rhs.clone(), &b.out)?
                }
                NumericOperationIr::Sub(b) => {
                    self.binary("Sub", b.lhs.clone(), b.rhs.clone(), &b.out)?
                }
                NumericOperationIr::Mul(b) => {
                    self.binary("Mul", b.lhs.clone(), b.rhs.clone(), &b.out)?
                }
                NumericOperationIr::Div(b) => {
                    self.binary("Div", b.lhs.clone(), b.rhs.clone(), &b.out)?
                }
                NumericOperationIr::AddScalar(s) => self.with_scalar("Add", s)?,
                NumericOperationIr::SubScalar(s) => self.with_scalar("Sub", s)?,
                NumericOperationIr::MulScalar(s) => self.with_scalar("Mul", s)?,
                NumericOperationIr::DivScalar(s) => self.with_scalar("Div", s)?,
                NumericOperationIr::LowerEqualElem(s) => self.with_scalar("LessOrEqual", s)?,
                NumericOperationIr::Clamp(c) => {
                    let x = self.read(&c.tensor)?;
                    let lo = self.initializer(ConstTensor::scalar(scalar(&c.min) as f32));
                    let hi = self.initializer(ConstTensor::scalar(scalar(&c.max) as f32));
                    self.push(None, "Clip", vec![x, lo, hi], &c.out, OpAttrs::new());
                }
                NumericOperationIr::MeanDim(r) => {
                    let x = self.read(&r.input)?;
                    let axes = self.initializer(ConstTensor::i64(vec![1], vec![r.axis as i64]));
                    let attrs = OpAttrs::new().with("keepdims", Attr::Int(1));
                    self.push(None, "ReduceMean", vec![x, axes], &r.out, attrs);
                }
                _ => return Ok(false),
            },
            OperationIr::BaseFloat(b) => match b {
                BaseOperationIr::Reshape(r) if self.is_constant(&r.input) => {
                    let name = self.read(&r.input)?;
                    let mut t = (*self.og.consts[&name]).clone();
                    t.dims = r.out.shape.as_slice().to_vec();
                    self.og.consts.insert(value(&r.out), Arc::new(t));
                    self.derived.insert(r.out.id, r.input.id);
                }
                BaseOperationIr::Reshape(r) => {
                    let (from, to) = (r.input.shape.as_slice(), r.out.shape.as_slice());
                    if from.first() != to.first() {
                        return Err(format!(
                            "a reshape from {from:?} to {to:?} changes the batch dimension"
                        ));
                    }
                    let mut target: Vec<i64> = to.iter().map(|&d| d as i64).collect();
                    target[0] = 0;
                    let x = self.read(&r.input)?;
                    let shape = self.initializer(ConstTensor::i64(vec![target.len()], target));
                    self.push(None, "Reshape", vec![x, shape], &r.out, OpAttrs::new());
                }
                BaseOperationIr::MaskWhere(m) => {
                    let inputs = vec![
                        self.read(&m.mask)?,
                        self.read(&m.value)?,
                        self.read(&m.tensor)?,
                    ];
                    self.push(None, "Where", inputs, &m.out, OpAttrs::new());
                }
                BaseOperationIr::SwapDims(s) => {
                    let mut perm: Vec<i64> = (0..s.input.shape.num_dims() as i64).collect();
                    perm.swap(s.dim1, s.dim2);
                    let x = self.read(&s.input)?;
                    self.push(
                        None,
                        "Transpose",
                        vec![x],
                        &s.out,
                        OpAttrs::new().with("perm", Attr::Ints(perm)),
                    );
                }
                BaseOperationIr::Permute(p) => {
                    let x = self.read(&p.input)?;
                    self.push(
                        None,
                        "Transpose",
                        vec![x],
                        &p.out,
                        OpAttrs::new().with("perm", ints(&p.axes)),
                    );
                }
                BaseOperationIr::Cat(c) => {
                    let inputs = c
                        .tensors
                        .iter()
                        .map(|t| self.read(t))
                        .collect::<Result<Vec<_>, _>>()?;
                    self.push(
                        None,
                        "Concat",
                        inputs,
                        &c.out,
                        OpAttrs::new().with("axis", Attr::Int(c.dim as i64)),
                    );
                }
                BaseOperationIr::Slice(s) => {
                    let dims = s.tensor.shape.as_slice();
                    let (mut starts, mut ends, mut axes, mut steps) =
                        (vec![], vec![], vec![], vec![]);
                    for (axis, r) in s.ranges.iter().enumerate() {
                        let end = r.end.map_or(dims[axis] as i64, |e| e as i64);
                        if r.start == 0 && end == dims[axis] as i64 && r.step == 1 {
                            continue;
                        }
                        starts.push(r.start as i64);
                        ends.push(end);
                        axes.push(axis as i64);
                        steps.push(r.step as i64);
                    }
                    let x = self.read(&s.tensor)?;
                    let n = starts.len();
                    let inputs = vec![
                        x,
                        self.initializer(ConstTensor::i64(vec![n], starts)),
                        self.initializer(ConstTensor::i64(vec![n], ends)),
                        self.initializer(ConstTensor::i64(vec![n], axes)),
                        self.initializer(ConstTensor::i64(vec![n], steps)),
                    ];
                    self.push(None, "Slice", inputs, &s.out, OpAttrs::new());
                }
                _ => return Ok(false),
            },
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn unary(&mut self, op: &str, x: TensorIr, out: &TensorIr) -> Result<(), String> {
        let x = self.read(&x)?;
        self.push(None, op, vec![x], out, OpAttrs::new());
        Ok(())
    }

    fn binary(&mut self, op: &str, a: TensorIr, b: TensorIr, out: &TensorIr) -> Result<(), String> {
        let a = self.read(&a)?;
        let b = self.read(&b)?;
        self.push(None, op, vec![a, b], out, OpAttrs::new());
        Ok(())
    }

    fn with_scalar(&mut self, op: &str, s: &burn_ir::ScalarOpIr) -> Result<(), String> {
        let x = self.read(&s.lhs)?;
        let c = self.initializer(ConstTensor::scalar(scalar(&s.rhs) as f32));
        self.push(None, op, vec![x, c], &s.out, OpAttrs::new());
        Ok(())
    }
}

/// Where an operation sits: the layer (module path) it belongs to, or the layers around it.
fn context(ops: &[OperationIr], at: usize, names: &HashMap<TensorId, String>) -> String {
    let module = |op: &OperationIr| {
        op.nodes().into_iter().find_map(|t| {
            names
                .get(&t.id)
                .map(|p| p.rsplit_once('.').map_or(p.clone(), |(m, _)| m.to_string()))
        })
    };
    if let Some(m) = module(&ops[at]) {
        return format!("in module `{m}`");
    }
    let before = ops[..at].iter().rev().find_map(module);
    let after = ops[at + 1..].iter().find_map(module);
    match (before, after) {
        (Some(b), Some(a)) => format!("between modules `{b}` and `{a}`"),
        (Some(b), None) => format!("after module `{b}`"),
        (None, Some(a)) => format!("before module `{a}`"),
        (None, None) => "in a forward without modules".into(),
    }
}

/// Imports the captured operations as a graph on `device`.
pub(crate) fn build(
    captured: &CapturedGraph,
    names: &HashMap<TensorId, String>,
    input_shape: FeatureShape,
    device: &Device,
) -> Result<Built, TraceError> {
    let (input, output) = match (
        captured.graph.inputs.as_slice(),
        captured.graph.outputs.as_slice(),
    ) {
        ([i], [o]) => (*i, *o),
        _ => {
            return Err(TraceError::Capture(
                "the capture has no single input and output".into(),
            ));
        }
    };
    let mut w = Writer {
        captured,
        names,
        og: OpGraph {
            nodes: Vec::new(),
            consts: HashMap::new(),
            outputs: vec![format!("t{}", output.value())],
        },
        table: NameTable::new(),
        sites: HashMap::new(),
        uses: HashMap::new(),
        derived: HashMap::new(),
        fresh: 0,
    };
    let input_name = w.table.assign("input", "Input", 0);
    let ops = &captured.graph.operations;
    for (at, op) in ops.iter().enumerate() {
        let unsupported = |why: String| TraceError::Unsupported {
            op: op_name(op),
            context: context(ops, at, names),
            why,
        };
        match w.op(op) {
            Ok(true) => {}
            Ok(false) => {
                return Err(unsupported(
                    "xprune's graph has no layer kind for it (see docs/architecture.md for the \
                     kinds, and how to add one)"
                        .into(),
                ));
            }
            Err(why) => return Err(unsupported(why)),
        }
    }
    if let Some((path, times)) = w.uses.iter().find(|(_, n)| **n > 1) {
        return Err(TraceError::SharedModule {
            path: path.clone(),
            times: *times,
        });
    }
    let mut values = HashMap::new();
    values.insert(
        format!("t{}", input.value()),
        OpValue::Act {
            node: 0,
            shape: input_shape,
        },
    );
    for (k, t) in &w.og.consts {
        values.insert(k.clone(), OpValue::Const(t.clone()));
    }
    let sites = w.sites;
    let (imp, out) = import_op_graph(w.og, values, input_name, input_shape, None, OPSET, device)?;
    let graph =
        Graph::from_nodes(input_shape, imp.defs, out).map_err(crate::onnx::OnnxError::from)?;
    Ok(Built { graph, sites })
}
