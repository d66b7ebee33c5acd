//! `slice`: a contiguous range of channels (`x[:, start:start + len]`, PyTorch's `chunk` and
//! `split` along channels; ONNX `Slice` on the channel axis, and `Split`, which a fusion
//! turns into one slice per part). After pruning it is the same range of the remaining
//! channels.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, unsupported};
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, ConstTensor, Counts, Dim, Fusion, Imported, Kind,
    KindSpec, LrpView, OpAttrs, OpGraph, OpImport, OpNode, OpValue, OpWriter, ParamInfo,
    Redistribute,
};
use crate::kinds::util::{all, channel_axis, is_channel_axis, one};
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::module::Module;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

/// The channels `start .. start + len`.
#[derive(Module, Debug)]
pub struct Slice {
    /// First channel.
    #[module(skip)]
    pub start: usize,
    /// Number of channels.
    #[module(skip)]
    pub len: usize,
}

/// Hyper-parameters of a channel slice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SliceOp {
    /// First channel.
    pub start: usize,
    /// Number of channels.
    pub len: usize,
}

impl KindSpec for SliceOp {
    type Layer = Slice;
    const NAME: &'static str = "slice";
    const ONNX_OPS: &'static [&'static str] = &["Slice", "SplitPart"];
    const FUSIONS: &'static [Fusion] = &[Fusion {
        pattern: "Split(x) on the channel axis into k parts",
        reads: &["Split"],
        produces: "SplitPart",
        internal: true,
        apply: split_to_parts,
    }];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        let c = inputs[0].channels();
        if self.len == 0 || self.start.checked_add(self.len).is_none_or(|end| end > c) {
            return Err(format!(
                "slice of channels {}..{} does not fit an input of {c} channels",
                self.start,
                self.start.saturating_add(self.len)
            ));
        }
        Ok(inputs[0].with_channels(self.len))
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Route(
            (self.start..self.start + self.len)
                .map(|c| (0, c))
                .collect(),
        )
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> Slice {
        Slice {
            start: self.start,
            len: self.len,
        }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        if !node.is_act(0) {
            return None;
        }
        Some(match node.op {
            "Slice" => import_slice(node),
            _ => import_part(node),
        })
    }
}

/// The known integers of input `i` (a constant or a shape vector of known sizes).
fn ints(node: &OpImport<'_>, i: usize, what: &str) -> Result<Option<Vec<i64>>, ImportError> {
    match node.inputs.get(i) {
        None | Some(OpValue::Absent) => Ok(None),
        Some(OpValue::Const(t)) => t
            .as_i64()
            .map(|v| Some(v.to_vec()))
            .ok_or_else(|| format!("{what} must be integers").into()),
        Some(OpValue::Dims { dims, .. }) => dims
            .iter()
            .map(|d| match d {
                Dim::Known(v) => Ok(*v),
                Dim::Batch => Err(ImportError::from(format!(
                    "{what} depends on the batch size"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(OpValue::Act { .. }) => Err(format!("{what} must be constant").into()),
    }
}

fn slice_node(
    x: usize,
    start: usize,
    len: usize,
    shape: FeatureShape,
) -> Result<Imported, ImportError> {
    let op = SliceOp { start, len };
    op.infer(&[shape]).map_err(ImportError::from)?;
    Ok(Imported::Node {
        layer: Layer::Slice(Slice { start, len }),
        inputs: vec![x],
    })
}

fn import_slice(node: &OpImport<'_>) -> Result<Imported, ImportError> {
    let (x, shape) = node.act(0, "data")?;
    let (starts, ends, axes, steps) = if node.opset >= 10 {
        node.check_attrs(&[])?;
        (
            ints(node, 1, "starts")?.ok_or("starts is missing")?,
            ints(node, 2, "ends")?.ok_or("ends is missing")?,
            ints(node, 3, "axes")?,
            ints(node, 4, "steps")?,
        )
    } else {
        node.check_attrs(&["starts", "ends", "axes"])?;
        (
            node.attrs.ints("starts")?.ok_or("starts is missing")?,
            node.attrs.ints("ends")?.ok_or("ends is missing")?,
            node.attrs.ints("axes")?,
            None,
        )
    };
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    if starts.len() != 1 || ends.len() != 1 || axes.len() != 1 {
        return Err(
            format!("only slices along one axis are supported, found axes {axes:?}").into(),
        );
    }
    if !is_channel_axis(axes[0], shape) {
        return Err(unsupported(
            "axes",
            format!("{axes:?}"),
            format!("only the channel axis ({})", channel_axis(shape)),
        ));
    }
    if let Some(s) = steps
        && s != [1]
    {
        return Err(unsupported("steps", format!("{s:?}"), "only steps [1]"));
    }
    let c = shape.channels() as i64;
    let clamp = |v: i64| (if v < 0 { v + c } else { v }).clamp(0, c);
    let (start, end) = (clamp(starts[0]), clamp(ends[0]));
    if end <= start {
        return Err(format!("the slice {start}..{end} of {c} channels is empty").into());
    }
    slice_node(x, start as usize, (end - start) as usize, shape)
}

fn import_part(node: &OpImport<'_>) -> Result<Imported, ImportError> {
    let (x, shape) = node.act(0, "input")?;
    let axis = node.attrs.int("axis", 0)?;
    if !is_channel_axis(axis, shape) {
        return Err(unsupported(
            "axis",
            axis,
            format!("only the channel axis ({})", channel_axis(shape)),
        ));
    }
    let part = node.attrs.int("part", 0)? as usize;
    let parts = node.attrs.int("parts", 1)?.max(1) as usize;
    let c = shape.channels();
    let sizes: Vec<usize> = match ints(node, 1, "split")? {
        Some(s) => s
            .iter()
            .map(|&v| usize::try_from(v).map_err(|_| ImportError::from("negative split size")))
            .collect::<Result<_, _>>()?,
        None => {
            // equal parts, the last one smaller (ONNX's rule)
            let each = c.div_ceil(parts);
            (0..parts)
                .map(|k| each.min(c.saturating_sub(k * each)))
                .collect()
        }
    };
    if sizes.len() != parts || sizes.iter().sum::<usize>() != c {
        return Err(
            format!("split sizes {sizes:?} do not cut {c} channels into {parts} parts").into(),
        );
    }
    let start: usize = sizes[..part].iter().sum();
    slice_node(x, start, sizes[part], shape)
}

/// `Split(x)` into `k` outputs becomes `k` single-output `SplitPart` nodes (the parts' sizes
/// are read when the input's shape is known).
fn split_to_parts(g: &mut OpGraph) -> usize {
    let mut fused = 0;
    let mut k = 0;
    while k < g.nodes.len() {
        let n = &g.nodes[k];
        // (a split of a constant is left alone: nothing computes it at run time)
        if n.op != "Split" || n.input(0).is_some_and(|x| g.constant(x).is_some()) {
            k += 1;
            continue;
        }
        let axis = match n.attrs.get("axis") {
            Some(Attr::Int(a)) => *a,
            _ => 0,
        };
        let outputs = n.outputs.clone();
        let parts = outputs.len();
        // The sizes: the `split` input (opset 13+) or attribute (before).
        let mut inputs = vec![n.inputs.first().cloned().unwrap_or_default()];
        let mut extra: Option<(String, ConstTensor)> = None;
        if let Some(s) = n.inputs.get(1).filter(|s| !s.is_empty()) {
            inputs.push(s.clone());
        } else if let Some(Attr::Ints(s)) = n.attrs.get("split") {
            let name = format!("{}::split", n.name);
            extra = Some((name.clone(), ConstTensor::i64(vec![s.len()], s.clone())));
            inputs.push(name);
        }
        let name = n.name.clone();
        // Part names `<split>:<i>`, unique among the graph's node names.
        let taken: std::collections::HashSet<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
        let names: Vec<String> = (0..parts)
            .map(|i| {
                if i == 0 {
                    return name.clone();
                }
                let mut candidate = format!("{name}:{i}");
                let mut extra_suffix = 2;
                while taken.contains(candidate.as_str()) {
                    candidate = format!("{name}:{i}_{extra_suffix}");
                    extra_suffix += 1;
                }
                candidate
            })
            .collect();
        drop(taken);
        if let Some((key, t)) = extra {
            g.consts.insert(key, std::sync::Arc::new(t));
        }
        let nodes: Vec<OpNode> = outputs
            .iter()
            .enumerate()
            .map(|(i, o)| OpNode {
                name: names[i].clone(),
                op: "SplitPart".into(),
                inputs: inputs.clone(),
                outputs: vec![o.clone()],
                attrs: OpAttrs::new()
                    .with("axis", Attr::Int(axis))
                    .with("part", Attr::Int(i as i64))
                    .with("parts", Attr::Int(parts as i64)),
            })
            .collect();
        let count = nodes.len();
        g.nodes.splice(k..=k, nodes);
        k += count;
        fused += 1;
    }
    fused
}

impl Kind for Slice {
    type Spec = SliceOp;

    fn spec(&self) -> SliceOp {
        SliceOp {
            start: self.start,
            len: self.len,
        }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        Ok(one(inputs, "slice")?.narrow_channels(self.start, self.len))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("slice", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        let removed = cut.removed_inputs.first().copied().unwrap_or(&[]);
        let before = removed.iter().filter(|&&i| i < self.start).count();
        let within = removed
            .iter()
            .filter(|&&i| i >= self.start && i < self.start + self.len)
            .count();
        if within >= self.len {
            return Err("a slice cannot lose all its channels".into());
        }
        Ok(Layer::Slice(Slice {
            start: self.start - before,
            len: self.len - within,
        }))
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Redistribute(self)
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        all(inputs)
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let axis = channel_axis(w.input_shape(0));
        let starts = w.constant("starts", ConstTensor::i64(vec![1], vec![self.start as i64]));
        let ends = w.constant(
            "ends",
            ConstTensor::i64(vec![1], vec![(self.start + self.len) as i64]),
        );
        let axes = w.constant("axes", ConstTensor::i64(vec![1], vec![axis]));
        let x = w.input(0);
        w.op("Slice", vec![x, starts, ends, axes], vec![]);
        Ok(())
    }
}

impl Redistribute for Slice {
    fn redistribute(
        &self,
        inputs: &[&Activation],
        _output: &Activation,
        relevance: Activation,
    ) -> Result<Vec<Option<Activation>>, String> {
        let x = inputs[0];
        let c = x.channels();
        let mut parts = Vec::new();
        if self.start > 0 {
            parts.push(x.clone().narrow_channels(0, self.start).zeros_like());
        }
        parts.push(relevance);
        let end = self.start + self.len;
        if end < c {
            parts.push(x.clone().narrow_channels(end, c - end).zeros_like());
        }
        Ok(vec![Some(
            Activation::cat_channels(parts).ok_or("relevance has another layout")?,
        )])
    }
}

impl GraphBuilder {
    /// Adds the channels `start .. start + len` of `input`.
    pub fn slice(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        start: usize,
        len: usize,
    ) -> crate::Result<NodeId> {
        self.add_op(name, SliceOp { start, len }, &[input])
    }
}
