//! Neutral ONNX operators: the types through which kinds describe their import and export
//! without knowing the protobuf format (which lives in `xprune-io`).
//!
//! - Import: `xprune-io` decodes a model into an [`OpGraph`] (op types, value names,
//!   attributes as [`Attr`]s, constants as [`ConstTensor`]s), applies every kind's
//!   [`FuseFn`]s (multi-node patterns such as `x * sigmoid(x)`), then offers each node, with
//!   its inputs resolved to [`OpValue`]s, to the kinds that list its op type
//!   ([`KindSpec::ONNX_OPS`](super::KindSpec::ONNX_OPS)).
//! - Export: a kind writes its operators through an [`OpWriter`].

use crate::error::GraphError;
use crate::graph::NodeId;
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::tensor::Device;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// An integer.
    Int(i64),
    /// A list of integers.
    Ints(Vec<i64>),
    /// A float.
    Float(f32),
    /// A list of floats.
    Floats(Vec<f32>),
    /// A string.
    Str(String),
    /// A constant tensor.
    Tensor(Arc<ConstTensor>),
    /// An attribute type xprune does not read (graphs, sparse tensors, ...), described.
    Other(String),
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(v) => write!(f, "{v}"),
            Self::Ints(v) => write!(f, "{v:?}"),
            Self::Float(v) => write!(f, "{v}"),
            Self::Floats(v) => write!(f, "{v:?}"),
            Self::Str(v) => write!(f, "{v:?}"),
            Self::Tensor(t) => write!(f, "<tensor {}>", t.dims_string()),
            Self::Other(d) => write!(f, "<{d}>"),
        }
    }
}

/// Why an ONNX node cannot be imported (the importer adds the node's name and op type).
#[derive(Clone, Debug, PartialEq)]
pub enum ImportError {
    /// An attribute, or an attribute value, that the kind cannot represent.
    Attribute {
        /// The attribute.
        name: String,
        /// Its value as found.
        value: String,
        /// What is supported instead.
        supported: String,
    },
    /// Anything else (an input that must be a constant, a wrong shape, ...).
    Invalid(String),
}

impl From<String> for ImportError {
    fn from(m: String) -> Self {
        Self::Invalid(m)
    }
}

impl From<&str> for ImportError {
    fn from(m: &str) -> Self {
        Self::Invalid(m.to_string())
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Attribute {
                name,
                value,
                supported,
            } => write!(
                f,
                "attribute `{name}` = {value} is not supported ({supported})"
            ),
            Self::Invalid(m) => f.write_str(m),
        }
    }
}

/// An unsupported attribute value.
pub fn unsupported(
    name: &str,
    value: impl fmt::Display,
    supported: impl Into<String>,
) -> ImportError {
    ImportError::Attribute {
        name: name.to_string(),
        value: value.to_string(),
        supported: supported.into(),
    }
}

/// The attributes of one node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpAttrs {
    list: Vec<(String, Attr)>,
}

impl OpAttrs {
    /// No attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Attributes from a list (names must be unique; the importer checks it).
    pub fn from_list(list: Vec<(String, Attr)>) -> Self {
        Self { list }
    }

    /// Adds an attribute (builder style).
    pub fn with(mut self, name: &str, value: Attr) -> Self {
        self.list.retain(|(n, _)| n != name);
        self.list.push((name.to_string(), value));
        self
    }

    /// All attributes in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Attr)> {
        self.list.iter().map(|(n, a)| (n.as_str(), a))
    }

    /// The attribute called `name`.
    pub fn get(&self, name: &str) -> Option<&Attr> {
        self.list.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }

    /// Checks that every attribute is one of `allowed`.
    pub fn check(&self, op: &str, allowed: &[&str]) -> Result<(), ImportError> {
        for (name, value) in &self.list {
            if !allowed.contains(&name.as_str()) {
                let supported = if allowed.is_empty() {
                    format!("{op} takes no attributes")
                } else {
                    format!("{op} supports the attributes {}", allowed.join(", "))
                };
                return Err(unsupported(name, value, supported));
            }
        }
        Ok(())
    }

    /// An integer attribute, or `default` when absent.
    pub fn int(&self, name: &str, default: i64) -> Result<i64, ImportError> {
        match self.get(name) {
            None => Ok(default),
            Some(Attr::Int(v)) => Ok(*v),
            Some(other) => Err(unsupported(name, other, "it must be of type INT")),
        }
    }

    /// A float attribute, or `default` when absent.
    pub fn float(&self, name: &str, default: f32) -> Result<f32, ImportError> {
        match self.get(name) {
            None => Ok(default),
            Some(Attr::Float(v)) => Ok(*v),
            Some(other) => Err(unsupported(name, other, "it must be of type FLOAT")),
        }
    }

    /// An integer list attribute, if present.
    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, ImportError> {
        match self.get(name) {
            None => Ok(None),
            Some(Attr::Ints(v)) => Ok(Some(v.clone())),
            Some(other) => Err(unsupported(name, other, "it must be of type INTS")),
        }
    }

    /// A string attribute, if present.
    pub fn string(&self, name: &str) -> Result<Option<String>, ImportError> {
        match self.get(name) {
            None => Ok(None),
            Some(Attr::Str(v)) => Ok(Some(v.clone())),
            Some(other) => Err(unsupported(name, other, "it must be of type STRING")),
        }
    }

    /// A boolean given as an integer 0 or 1, `false` when absent.
    pub fn flag(&self, name: &str) -> Result<bool, ImportError> {
        match self.int(name, 0)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(unsupported(name, v, "0 or 1")),
        }
    }

    /// A list of `N` positive integers (`kernel_shape`, `strides`, `dilations`), if present.
    pub fn positive_ints<const N: usize>(
        &self,
        name: &str,
    ) -> Result<Option<[usize; N]>, ImportError> {
        let Some(values) = self.ints(name)? else {
            return Ok(None);
        };
        let parsed: Option<Vec<usize>> = values
            .iter()
            .map(|&v| usize::try_from(v).ok().filter(|&v| v > 0))
            .collect();
        match parsed {
            Some(v) if v.len() == N => Ok(Some(v.try_into().expect("length checked"))),
            _ => Err(unsupported(
                name,
                format!("{values:?}"),
                format!("it must hold {N} positive integers (2-D windows only)"),
            )),
        }
    }
}

/// The values of a constant tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum ConstData {
    /// Floating-point values (ONNX FLOAT, or DOUBLE narrowed to `f32`).
    F32(Vec<f32>),
    /// Integer values (ONNX INT64, INT32, or BOOL as 0/1).
    I64(Vec<i64>),
}

/// A constant tensor of a model (an initializer or a `Constant` node's value).
#[derive(Clone, Debug, PartialEq)]
pub struct ConstTensor {
    /// Dimensions (empty for a scalar).
    pub dims: Vec<usize>,
    /// Values in row-major order.
    pub data: ConstData,
}

impl ConstTensor {
    /// An `f32` tensor.
    pub fn f32(dims: Vec<usize>, values: Vec<f32>) -> Self {
        Self {
            dims,
            data: ConstData::F32(values),
        }
    }

    /// An `i64` tensor.
    pub fn i64(dims: Vec<usize>, values: Vec<i64>) -> Self {
        Self {
            dims,
            data: ConstData::I64(values),
        }
    }

    /// A float scalar.
    pub fn scalar(v: f32) -> Self {
        Self::f32(vec![], vec![v])
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match &self.data {
            ConstData::F32(v) => v.len(),
            ConstData::I64(v) => v.len(),
        }
    }

    /// Whether the tensor has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as `f32` (integers are converted).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            ConstData::F32(v) => v.clone(),
            ConstData::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The integer values, if this is an integer tensor.
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            ConstData::I64(v) => Some(v),
            ConstData::F32(_) => None,
        }
    }

    /// The single value of a tensor with one element (any rank), as `f32`.
    pub fn single(&self) -> Option<f32> {
        (self.len() == 1).then(|| self.to_f32()[0])
    }

    /// Dimensions for messages: `[2, 3]`, or `scalar`.
    pub fn dims_string(&self) -> String {
        if self.dims.is_empty() {
            "scalar".to_string()
        } else {
            format!("{:?}", self.dims)
        }
    }
}

/// One dimension of a shape computed inside a model (`Shape` -> `Gather` -> ... chains).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    /// The batch dimension, whose size is only known at run time.
    Batch,
    /// A known size (or a `Reshape` code such as `-1` or `0`).
    Known(i64),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Batch => write!(f, "N"),
            Dim::Known(v) => write!(f, "{v}"),
        }
    }
}

/// What an ONNX input of a node stands for during import.
#[derive(Clone, Debug)]
pub enum OpValue {
    /// The output of an xprune node: a batch of activations with this per-sample shape.
    Act {
        /// The node.
        node: NodeId,
        /// Its per-sample shape.
        shape: FeatureShape,
    },
    /// A constant tensor.
    Const(Arc<ConstTensor>),
    /// A small integer vector (or scalar) computed from activation shapes.
    Dims {
        /// The entries.
        dims: Vec<Dim>,
        /// Whether the value is a scalar (rank 0) rather than a vector.
        scalar: bool,
    },
    /// An optional input left out (empty name).
    Absent,
}

/// One ONNX node offered to a kind for import, with its inputs resolved.
#[derive(Debug)]
pub struct OpImport<'a> {
    /// The op type.
    pub op: &'a str,
    /// The xprune node name it gets.
    pub name: &'a str,
    /// The model's default-domain opset.
    pub opset: i64,
    /// The model's static batch size, when it fixes one.
    pub batch: Option<i64>,
    /// The attributes.
    pub attrs: &'a OpAttrs,
    /// The inputs, in ONNX order.
    pub inputs: &'a [OpValue],
    /// The device new layers are created on.
    pub device: &'a Device,
}

impl OpImport<'_> {
    /// Input `i`, which must be present.
    pub fn input(&self, i: usize, what: &str) -> Result<&OpValue, ImportError> {
        match self.inputs.get(i) {
            None | Some(OpValue::Absent) => Err(format!("input {i} ({what}) is missing").into()),
            Some(v) => Ok(v),
        }
    }

    /// Input `i`, which must be an activation: its node and per-sample shape.
    pub fn act(&self, i: usize, what: &str) -> Result<(NodeId, FeatureShape), ImportError> {
        match self.input(i, what)? {
            OpValue::Act { node, shape } => Ok((*node, *shape)),
            _ => Err(format!(
                "input {i} ({what}) must be computed from the graph input, found a constant"
            )
            .into()),
        }
    }

    /// Whether input `i` is an activation.
    pub fn is_act(&self, i: usize) -> bool {
        matches!(self.inputs.get(i), Some(OpValue::Act { .. }))
    }

    /// Whether input `i` is a constant.
    pub fn is_const(&self, i: usize) -> bool {
        matches!(self.inputs.get(i), Some(OpValue::Const(_)))
    }

    /// Whether input `i` is present.
    pub fn has(&self, i: usize) -> bool {
        !matches!(self.inputs.get(i), None | Some(OpValue::Absent))
    }

    /// Input `i`, which must be a constant.
    pub fn constant(&self, i: usize, what: &str) -> Result<Arc<ConstTensor>, ImportError> {
        match self.input(i, what)? {
            OpValue::Const(t) => Ok(t.clone()),
            _ => Err(format!(
                "input {i} ({what}) must be a constant (an initializer or a Constant node), \
                 found a value computed at run time"
            )
            .into()),
        }
    }

    /// Input `i`, which may be absent but must be a constant when present.
    pub fn optional_constant(
        &self,
        i: usize,
        what: &str,
    ) -> Result<Option<Arc<ConstTensor>>, ImportError> {
        if self.has(i) {
            self.constant(i, what).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The number of present inputs.
    pub fn present(&self) -> usize {
        self.inputs
            .iter()
            .filter(|v| !matches!(v, OpValue::Absent))
            .count()
    }

    /// Checks the attributes against `allowed`.
    pub fn check_attrs(&self, allowed: &[&str]) -> Result<(), ImportError> {
        self.attrs.check(self.op, allowed)
    }
}

/// The result of importing one ONNX node (a short-lived value: the layer is not boxed).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Imported {
    /// A new xprune node.
    Node {
        /// Its layer.
        layer: Layer,
        /// Its inputs (earlier xprune nodes).
        inputs: Vec<NodeId>,
    },
    /// The node computes nothing (a `Sum` of one input): its output is this existing node's.
    Alias(NodeId),
    /// The node's output is a constant (no built-in kind returns this today; the importer
    /// treats it as a folded value).
    Const(Arc<ConstTensor>),
}

/// One node of a neutral ONNX graph.
#[derive(Clone, Debug, PartialEq)]
pub struct OpNode {
    /// The node's name in the model (may be empty).
    pub name: String,
    /// The op type (default domain; other domains as `domain::op`).
    pub op: String,
    /// Input value names (empty for an absent optional input).
    pub inputs: Vec<String>,
    /// Output value names.
    pub outputs: Vec<String>,
    /// Attributes.
    pub attrs: OpAttrs,
}

impl OpNode {
    /// The name of input `i`, or `None` when the node has no such input or it is absent (an
    /// empty name). Fusions read inputs through this, so that malformed nodes are skipped
    /// (and reported by the importer) rather than indexed out of range.
    pub fn input(&self, i: usize) -> Option<&str> {
        self.inputs
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The name of output `i`, or `None` when the node has no such output or it is unnamed.
    pub fn output(&self, i: usize) -> Option<&str> {
        self.outputs
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// A neutral ONNX graph: nodes in order, constants by value name, and the graph's outputs. The
/// rewrites of kinds ([`FuseFn`]) operate on it before import.
#[derive(Clone, Debug, Default)]
pub struct OpGraph {
    /// Nodes in topological order.
    pub nodes: Vec<OpNode>,
    /// Constant values (initializers) by name.
    pub consts: HashMap<String, Arc<ConstTensor>>,
    /// Names of the graph outputs.
    pub outputs: Vec<String>,
}

/// A rewrite of a neutral ONNX graph: replaces the multi-node patterns of a kind by single
/// nodes that the kind imports; returns how many were rewritten.
pub type FuseFn = fn(&mut OpGraph) -> usize;

/// A multi-node ONNX pattern that a kind imports as one node (see [`KindSpec::FUSIONS`]):
/// what it reads, what it produces, and the rewrite.
///
/// [`KindSpec::FUSIONS`]: super::KindSpec::FUSIONS
#[derive(Clone, Copy, Debug)]
pub struct Fusion {
    /// The pattern, for documentation and messages (`Mul(x, Sigmoid(x))`).
    pub pattern: &'static str,
    /// The ONNX op types the pattern consists of.
    pub reads: &'static [&'static str],
    /// The op type of the node that replaces it: an ONNX op, or a name of xprune's own when
    /// ONNX has none (`SiLU`); in both cases one of the kind's [`KindSpec::ONNX_OPS`].
    ///
    /// [`KindSpec::ONNX_OPS`]: super::KindSpec::ONNX_OPS
    pub produces: &'static str,
    /// Whether [`Fusion::produces`] is a name of xprune's own rather than an ONNX op (such
    /// names are not listed as supported ONNX ops).
    pub internal: bool,
    /// The rewrite.
    pub apply: FuseFn,
}

impl OpGraph {
    /// The index of the node producing `value`.
    pub fn producer(&self, value: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.outputs.iter().any(|o| o == value))
    }

    /// The indices of the nodes reading `value`.
    pub fn consumers(&self, value: &str) -> Vec<usize> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.inputs.iter().any(|i| i == value))
            .map(|(k, _)| k)
            .collect()
    }

    /// How many times `value` is read (by nodes and as a graph output).
    pub fn uses(&self, value: &str) -> usize {
        let by_nodes: usize = self
            .nodes
            .iter()
            .map(|n| n.inputs.iter().filter(|i| *i == value).count())
            .sum();
        by_nodes + self.outputs.iter().filter(|o| *o == value).count()
    }

    /// The constant called `value`: an initializer or the output of a `Constant` node (a
    /// `value` tensor, `value_float(s)` or `value_int(s)`).
    pub fn constant(&self, value: &str) -> Option<Arc<ConstTensor>> {
        if let Some(t) = self.consts.get(value) {
            return Some(t.clone());
        }
        let n = &self.nodes[self.producer(value)?];
        if n.op != "Constant" {
            return None;
        }
        match n.attrs.get("value") {
            Some(Attr::Tensor(t)) => Some(t.clone()),
            _ => {
                let attr = |name| n.attrs.get(name);
                match (
                    attr("value_float"),
                    attr("value_floats"),
                    attr("value_int"),
                    attr("value_ints"),
                ) {
                    (Some(Attr::Float(v)), ..) => Some(Arc::new(ConstTensor::scalar(*v))),
                    (_, Some(Attr::Floats(v)), ..) => {
                        Some(Arc::new(ConstTensor::f32(vec![v.len()], v.clone())))
                    }
                    (_, _, Some(Attr::Int(v)), _) => {
                        Some(Arc::new(ConstTensor::i64(vec![], vec![*v])))
                    }
                    (_, _, _, Some(Attr::Ints(v))) => {
                        Some(Arc::new(ConstTensor::i64(vec![v.len()], v.clone())))
                    }
                    _ => None,
                }
            }
        }
    }

    /// The single value of a one-element constant called `value`.
    pub fn scalar(&self, value: &str) -> Option<f32> {
        self.constant(value)?.single()
    }

    /// Whether the output of node `k` is read once, by a node (not as a graph output).
    pub fn single_use(&self, k: usize) -> bool {
        self.nodes[k].outputs.len() == 1 && {
            let o = &self.nodes[k].outputs[0];
            self.uses(o) == 1 && !self.outputs.contains(o)
        }
    }

    /// Replaces the nodes at `remove` (sorted or not) with `node`, placed where the last of
    /// them was (so that its inputs are defined before it).
    pub fn replace(&mut self, remove: &[usize], node: OpNode) {
        self.replace_with_nodes(remove, vec![node]);
    }

    /// Replaces the nodes at `remove` (sorted or not, repeats allowed) with `nodes`, in their
    /// order, placed where the last of the removed nodes was.
    pub fn replace_with_nodes(&mut self, remove: &[usize], nodes: Vec<OpNode>) {
        let at = *remove.iter().max().expect("at least one node is replaced");
        let mut rest: Vec<usize> = remove.iter().copied().filter(|&k| k != at).collect();
        rest.sort_unstable_by(|a, b| b.cmp(a));
        rest.dedup();
        self.nodes.splice(at..=at, nodes);
        // (every other removed node comes before `at`, so the splice leaves its index)
        for k in rest {
            self.nodes.remove(k);
        }
    }
}

/// Writes one xprune node as ONNX operators (implemented by `xprune-io`).
///
/// The output of the last operator written becomes the node's output value (named after the
/// node); intermediate values get unique names.
pub trait OpWriter {
    /// The node's name.
    fn node_name(&self) -> &str;

    /// The number of the node's inputs.
    fn input_count(&self) -> usize;

    /// The value name of the node's input `i`.
    fn input(&self, i: usize) -> String;

    /// The per-sample shape of input `i`.
    fn input_shape(&self, i: usize) -> FeatureShape;

    /// The per-sample shape of the node's output.
    fn output_shape(&self) -> FeatureShape;

    /// Adds an initializer named `<node>.<role>` and returns its value name.
    fn constant(&mut self, role: &str, t: ConstTensor) -> String;

    /// Adds an operator reading `inputs` and returns the name of its output.
    fn op(
        &mut self,
        op_type: &str,
        inputs: Vec<String>,
        attrs: Vec<(&'static str, Attr)>,
    ) -> String;

    /// Declares that the operators written need at least this default-domain opset.
    fn require_opset(&mut self, opset: i64);

    /// Gives the operator written last the node's name (by default the node's last operator
    /// has it): a linear layer's `MatMul` rather than the `Add` of its bias, so that the
    /// importer, which names a fused `MatMul` + `Add` after the `MatMul`, gives it back.
    fn name_last_op(&mut self);
}

/// The op type of `Shape(Reshape(data, target))` computed without the reshape (`start` and
/// `end` as `Shape`'s): a fusion that removes a value read by `Shape` nodes rewrites them to
/// it, with a data and target of the same shape; the importer folds it like `Shape`.
pub const RESHAPED_SHAPE: &str = "ReshapedShape";

/// The op type of `Shape(Transpose(data, perm))` computed without the transpose (`perm` as
/// `Transpose`'s, `start` and `end` as `Shape`'s): written by fusions that remove a transposed
/// value read by `Shape` nodes; the importer folds it like `Shape`.
pub const PERMUTED_SHAPE: &str = "PermutedShape";

/// The target shape of a `Reshape` (its shape input): the entries of a shape computed from
/// activations, or of an integer constant; an error for anything else.
pub fn reshape_target(v: &OpValue) -> Result<Vec<Dim>, ImportError> {
    match v {
        OpValue::Dims { dims, .. } => Ok(dims.clone()),
        OpValue::Const(t) => Ok(t
            .as_i64()
            .ok_or("a reshape's target shape must be integers")?
            .iter()
            .map(|&v| Dim::Known(v))
            .collect()),
        _ => Err("a reshape's target shape must be known".into()),
    }
}

/// Whether the first entry of a reshape target keeps the batch axis: the batch itself, `0`
/// (copy), `-1` (infer) or the model's static batch size.
pub fn keeps_batch(d: Option<&Dim>, batch: Option<i64>) -> bool {
    match d {
        Some(Dim::Batch) | Some(Dim::Known(0)) | Some(Dim::Known(-1)) => true,
        Some(Dim::Known(v)) => batch == Some(*v),
        None => false,
    }
}

/// The known sizes of a reshape target after its first (batch) entry; `None` when one is not
/// known.
pub fn known_after_batch(dims: &[Dim]) -> Option<Vec<i64>> {
    dims.iter()
        .skip(1)
        .map(|d| match d {
            Dim::Known(v) => Some(*v),
            Dim::Batch => None,
        })
        .collect()
}

/// An ONNX integer-list attribute from sizes.
pub fn ints<const N: usize>(v: [usize; N]) -> Attr {
    Attr::Ints(v.iter().map(|&x| x as i64).collect())
}

/// `Graph`-level errors raised while importing, for the `?` operator in kind code.
impl From<GraphError> for ImportError {
    fn from(e: GraphError) -> Self {
        Self::Invalid(e.to_string())
    }
}
