//! Conversion of each supported ONNX operator into xprune nodes (or constant values).

use super::attr::{Attrs, NodeCtx};
use super::error::{OnnxError, Result};
use super::import::{Dim, Importer, Value};
use super::tensor::{HostTensor, decode_tensor};
use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{Linear, PaddingConfig2d};
use burn::tensor::{Tensor, TensorData};
use onnx_ir::NodeProto;
use std::sync::Arc;
use xprune_graph::{FeatureShape, Initializer, Layer, NodeId, OpSpec, Padding2d};

/// The op types the importer converts, for error messages and the documentation.
pub const SUPPORTED_OPS: &str = "Conv, Gemm, MatMul (+ Add of a bias), BatchNormalization, Relu, \
MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape (as a flatten), Add, Sum, Concat, \
Dropout, Identity, Constant, and on shapes only Shape, Gather, Unsqueeze, Cast";

impl Importer {
    /// Converts one node whose inputs are resolved; returns the value of its first output.
    pub(crate) fn convert_op(
        &mut self,
        ctx: NodeCtx<'_>,
        node: &NodeProto,
        inputs: &[Option<Value>],
    ) -> Result<Value> {
        let attrs = &node.attribute;
        match node.op_type.as_str() {
            "Conv" => self.conv(
                ctx,
                Attrs::new(ctx, attrs, CONV_ATTRS)?,
                inputs,
                &node.output[0],
            ),
            "Gemm" => self.gemm(
                ctx,
                Attrs::new(ctx, attrs, GEMM_ATTRS)?,
                inputs,
                &node.output[0],
            ),
            "MatMul" => {
                Attrs::new(ctx, attrs, &[])?;
                self.matmul(ctx, inputs, &node.output[0])
            }
            "BatchNormalization" => self.batch_norm(
                ctx,
                Attrs::new(ctx, attrs, &["epsilon", "momentum", "training_mode"])?,
                inputs,
            ),
            "Relu" => {
                Attrs::new(ctx, attrs, &[])?;
                let (x, _) = self.act(ctx, inputs, 0, "X")?;
                self.simple(ctx, OpSpec::Relu, vec![x])
            }
            "MaxPool" => self.max_pool(ctx, Attrs::new(ctx, attrs, MAX_POOL_ATTRS)?, inputs),
            "AveragePool" => self.avg_pool(ctx, Attrs::new(ctx, attrs, AVG_POOL_ATTRS)?, inputs),
            "GlobalAveragePool" => {
                Attrs::new(ctx, attrs, &[])?;
                let (x, _) = self.act(ctx, inputs, 0, "X")?;
                self.simple(ctx, OpSpec::AdaptiveAvgPool2d { output: [1, 1] }, vec![x])
            }
            "Flatten" => self.flatten(ctx, Attrs::new(ctx, attrs, &["axis"])?, inputs),
            "Reshape" => self.reshape(ctx, Attrs::new(ctx, attrs, &["allowzero"])?, inputs),
            "Add" | "Sum" => {
                Attrs::new(ctx, attrs, &[])?;
                self.add(ctx, inputs)
            }
            "Concat" => self.concat(ctx, Attrs::new(ctx, attrs, &["axis"])?, inputs),
            "Dropout" => self.dropout(ctx, Attrs::new(ctx, attrs, &["ratio", "seed"])?, inputs),
            "Identity" => {
                Attrs::new(ctx, attrs, &[])?;
                match input(ctx, inputs, 0, "input")? {
                    Value::Act(x) => self.simple(ctx, OpSpec::Identity, vec![x]),
                    other => Ok(other),
                }
            }
            "Constant" => constant_node(ctx, Attrs::new(ctx, attrs, CONSTANT_ATTRS)?),
            "Shape" => self.shape(ctx, Attrs::new(ctx, attrs, &["start", "end"])?, inputs),
            "Gather" => super::shape_ops::gather(ctx, Attrs::new(ctx, attrs, &["axis"])?, inputs),
            "Unsqueeze" => super::shape_ops::unsqueeze(
                ctx,
                Attrs::new(ctx, attrs, &["axes"])?,
                inputs,
                self.opset,
            ),
            "Cast" => super::shape_ops::cast(
                ctx,
                Attrs::new(ctx, attrs, &["to", "saturate", "round_mode"])?,
                inputs,
            ),
            other => Err(OnnxError::UnsupportedOp {
                node: ctx.name.to_string(),
                op: other.to_string(),
                supported: SUPPORTED_OPS.to_string(),
            }),
        }
    }

    /// Input `i`, which must be an activation; returns its node and per-sample shape.
    fn act(
        &self,
        ctx: NodeCtx<'_>,
        inputs: &[Option<Value>],
        i: usize,
        what: &str,
    ) -> Result<(NodeId, FeatureShape)> {
        match input(ctx, inputs, i, what)? {
            Value::Act(id) => Ok((id, self.shapes[id])),
            _ => Err(ctx.error(format!(
                "input {i} ({what}) must be computed from the graph input, found a constant"
            ))),
        }
    }

    /// Adds a parameter-free node.
    fn simple(&mut self, ctx: NodeCtx<'_>, op: OpSpec, inputs: Vec<NodeId>) -> Result<Value> {
        let layer = Layer::from_op(&op, &mut Initializer::new(0), &self.device);
        Ok(Value::Act(self.push(ctx, layer, inputs)?))
    }

    fn conv(
        &mut self,
        ctx: NodeCtx<'_>,
        a: Attrs<'_>,
        inputs: &[Option<Value>],
        output: &str,
    ) -> Result<Value> {
        let (x, shape) = self.act(ctx, inputs, 0, "X")?;
        let FeatureShape::Spatial([c, h, w]) = shape else {
            return Err(ctx.error(format!(
                "input X must be a [N, C, H, W] map, found [N, {shape}]"
            )));
        };
        let weight = constant(ctx, inputs, 1, "W")?;
        let [m, cg, kh, kw] = weight.dims[..] else {
            return Err(ctx.error(format!(
                "weight W must have 4 dimensions [M, C/group, kH, kW] (2-D convolution), found {}",
                weight.dims_string()
            )));
        };
        if let Some(k) = a.positive_ints::<2>("kernel_shape")?
            && k != [kh, kw]
        {
            return Err(ctx.unsupported(
                "kernel_shape",
                format!("{k:?}"),
                format!("it must match the weight's kernel [{kh}, {kw}]"),
            ));
        }
        let stride = a.positive_ints::<2>("strides")?.unwrap_or([1, 1]);
        let dilation = a.positive_ints::<2>("dilations")?.unwrap_or([1, 1]);
        let group = a.int("group", 1)?;
        let groups = usize::try_from(group)
            .ok()
            .filter(|&g| g > 0 && c % g == 0 && m % g == 0 && c / g == cg)
            .ok_or_else(|| {
                ctx.unsupported(
                    "group",
                    group,
                    format!(
                        "it must divide the {c} input and {m} output channels, with C/group = {cg} \
                         (the weight's second dimension)"
                    ),
                )
            })?;
        let padding = window_padding(ctx, &a, [h, w], [kh, kw], stride, dilation)?;
        let bias = optional_constant(ctx, inputs, 2, "B")?
            .map(|b| {
                if b.dims != [m] {
                    return Err(ctx.error(format!(
                        "bias B must have shape [{m}], found {}",
                        b.dims_string()
                    )));
                }
                Ok(param1(b.to_f32(), &self.device))
            })
            .transpose()?;
        let layer = Layer::Conv2d(Conv2d {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(weight.to_f32(), [m, cg, kh, kw]),
                &self.device,
            )),
            bias,
            stride,
            kernel_size: [kh, kw],
            dilation,
            groups,
            padding: PaddingConfig2d::Explicit(padding[0], padding[1], padding[2], padding[3]),
        });
        let has_bias = inputs.get(2).is_some_and(|b| b.is_some());
        let id = self.push(ctx, layer, vec![x])?;
        if !has_bias && self.uses_of(output) == 1 {
            self.fusable.insert(id);
        }
        Ok(Value::Act(id))
    }

    fn gemm(
        &mut self,
        ctx: NodeCtx<'_>,
        a: Attrs<'_>,
        inputs: &[Option<Value>],
        output: &str,
    ) -> Result<Value> {
        let (x, shape) = self.act(ctx, inputs, 0, "A")?;
        flat_input(ctx, shape, "A")?;
        if a.int("transA", 0)? != 0 {
            return Err(ctx.unsupported("transA", a.int("transA", 0)?, "only transA = 0"));
        }
        let alpha = a.float("alpha", 1.0)?;
        if alpha != 1.0 {
            return Err(ctx.unsupported("alpha", alpha, "only alpha = 1"));
        }
        let has_c = inputs.get(2).is_some_and(|c| c.is_some());
        let beta = a.float("beta", 1.0)?;
        if has_c && beta != 1.0 {
            return Err(ctx.unsupported("beta", beta, "only beta = 1"));
        }
        let trans_b = a.int("transB", 0)?;
        let b = constant(ctx, inputs, 1, "B")?;
        let [r, k] = b.dims[..] else {
            return Err(ctx.error(format!(
                "B must be a matrix, found shape {}",
                b.dims_string()
            )));
        };
        let values = b.to_f32();
        // Burn's linear weight is [in, out].
        let (weight, in_f, out_f) = match trans_b {
            0 => (values, r, k),
            1 => (transpose(&values, r, k), k, r),
            v => return Err(ctx.unsupported("transB", v, "transB = 0 or 1")),
        };
        let bias = optional_constant(ctx, inputs, 2, "C")?
            .map(|c| linear_bias(ctx, &c, out_f))
            .transpose()?;
        self.linear(ctx, x, weight, in_f, out_f, bias, output)
    }

    fn matmul(
        &mut self,
        ctx: NodeCtx<'_>,
        inputs: &[Option<Value>],
        output: &str,
    ) -> Result<Value> {
        let (x, shape) = self.act(ctx, inputs, 0, "A")?;
        flat_input(ctx, shape, "A")?;
        let b = constant(ctx, inputs, 1, "B")?;
        let [in_f, out_f] = b.dims[..] else {
            return Err(ctx.error(format!(
                "B must be a constant matrix [in, out], found shape {}",
                b.dims_string()
            )));
        };
        self.linear(ctx, x, b.to_f32(), in_f, out_f, None, output)
    }

    /// Adds a linear node; a bias-less one read only once can take the bias of a following
    /// `Add`.
    fn linear(
        &mut self,
        ctx: NodeCtx<'_>,
        x: NodeId,
        weight: Vec<f32>,
        in_f: usize,
        out_f: usize,
        bias: Option<Vec<f32>>,
        output: &str,
    ) -> Result<Value> {
        let has_bias = bias.is_some();
        let layer = Layer::Linear(Linear {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(weight, [in_f, out_f]),
                &self.device,
            )),
            bias: bias.map(|b| param1(b, &self.device)),
        });
        let id = self.push(ctx, layer, vec![x])?;
        if !has_bias && self.uses_of(output) == 1 {
            self.fusable.insert(id);
        }
        Ok(Value::Act(id))
    }

    fn batch_norm(
        &mut self,
        ctx: NodeCtx<'_>,
        a: Attrs<'_>,
        inputs: &[Option<Value>],
    ) -> Result<Value> {
        let (x, shape) = self.act(ctx, inputs, 0, "X")?;
        let training = a.int("training_mode", 0)?;
        if training != 0 {
            return Err(ctx.unsupported("training_mode", training, "only inference mode (0)"));
        }
        let epsilon = a.float("epsilon", 1e-5)?;
        let momentum = a.float("momentum", 0.9)?;
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(ctx.unsupported("epsilon", epsilon, "a positive finite epsilon"));
        }
        if !(0.0..=1.0).contains(&momentum) {
            return Err(ctx.unsupported("momentum", momentum, "a momentum in [0, 1]"));
        }
        let c = shape.channels();
        let mut vectors = Vec::with_capacity(4);
        for (i, what) in [(1, "scale"), (2, "B"), (3, "input_mean"), (4, "input_var")] {
            let t = constant(ctx, inputs, i, what)?;
            if t.dims != [c] {
                return Err(ctx.error(format!(
                    "{what} must have shape [{c}] (the input's channels), found {}",
                    t.dims_string()
                )));
            }
            vectors.push(t.to_f32());
        }
        let var = vectors.pop().expect("four vectors");
        let mean = vectors.pop().expect("four vectors");
        let beta = vectors.pop().expect("four vectors");
        let gamma = vectors.pop().expect("four vectors");
        // ONNX: running = running * momentum + batch * (1 - momentum); Burn uses the
        // PyTorch convention where momentum weighs the batch statistic.
        let layer = Layer::BatchNorm(xprune_graph::batch_norm(
            gamma,
            beta,
            mean,
            var,
            readable_f64(epsilon),
            one_minus(momentum),
            &self.device,
        ));
        Ok(Value::Act(self.push(ctx, layer, vec![x])?))
    }

    fn max_pool(
        &mut self,
        ctx: NodeCtx<'_>,
        a: Attrs<'_>,
        inputs: &[Option<Value>],
    ) -> Result<Value> {
        let (x, shape) = self.act(ctx, inputs, 0, "X")?;
        let [h, w] = spatial_hw(ctx, shape)?;
        let kernel = a
            .positive_ints::<2>("kernel_shape")?
            .ok_or_else(|| ctx.error("attribute `kernel_shape` is required"))?;
        let stride = a.positive_ints::<2>("strides")?.unwrap_or([1, 1]);
        let dilation = a.positive_ints::<2>("dilations")?.unwrap_or([1, 1]);
        let storage = a.int("storage_order", 0)?;
        if storage != 0 {
            return Err(ctx.unsupported(
                "storage_order",
                storage,
                "only storage_order = 0 (row major)",
            ));
        }
        let ceil_mode = bool_attr(ctx, &a, "ceil_mode")?;
        let padding = window_padding(ctx, &a, [h, w], kernel, stride, dilation)?;
        let op = OpSpec::MaxPool2d {
            kernel,
            stride,
            padding,
            dilation,
            ceil_mode,
        };
        self.simple(ctx, op, vec![x])
    }

    fn avg_pool(
        &mut self,
        ctx: NodeCtx<'_>,
        a: Attrs<'_>,
        inputs: &[Option<Value>],
    ) -> Result<Value> {
        let (x, shape) = self.act(ctx, inputs, 0, "X")?;
        let [h, w] = spatial_hw(ctx, shape)?;
        let kernel = a
            .positive_ints::<2>("kernel_shape")?
            .ok_or_else(|| ctx.error("attribute `kernel_shape` is required"))?;
        let stride = a.positive_ints::<2>("strides")?.unwrap_or([1, 1]);
        if let Some(d) = a.positive_ints::<2>("dilations")?
            && d != [1, 1]
        {
            return Err(ctx.unsupported("dilations", format!("{d:?}"), "only dilations [1, 1]"));
        }
        let ceil_mode = bool_attr(ctx, &a, "ceil_mode")?;
        let count_include_pad = bool_attr(ctx, &a, "count_include_pad")?;
        let padding = window_padding(ctx, &a, [h, w], kernel, stride, [1, 1])?;
        let op = OpSpec::AvgPool2d {
            kernel,
            stride,
            padding,
            count_include_pad,
            ceil_mode,
        };
        self.simple(ctx, op, vec![x])
    }

    fn flatten(
        &mut self,
        ctx: NodeCtx<'_>,
        a: Attrs<'_>,
        inputs: &[Option<Value>],
    ) -> Result<Value> {
        let (x, shape) = self.act(ctx, inputs, 0, "input")?;
        let rank = shape.batch_dims(1).len() as i64;
        let axis = a.int("axis", 1)?;
        let normalised = if axis < 0 { axis + rank } else { axis };
        if normalised != 1 {
            return Err(ctx.unsupported(
                "axis",
                axis,
                format!(
                    "only axis = 1 (keep the batch dimension), or {} for this rank-{rank} input",
                    1 - rank
                ),
            ));
        }
        self.simple(ctx, OpSpec::Flatten, vec![x])
    }

    fn reshape(
        &mut self,
        ctx: NodeCtx<'_>,
        a: Attrs<'_>,
        inputs: &[Option<Value>],
    ) -> Result<Value> {
        let (x, shape) = self.act(ctx, inputs, 0, "data")?;
        let allow_zero = a.int("allowzero", 0)?;
        let target: Vec<Dim> = match input(ctx, inputs, 1, "shape")? {
            Value::Dims { dims, .. } => dims,
            Value::Const(t) => match t.as_i64() {
                Some(v) => v.iter().map(|&d| Dim::Known(d)).collect(),
                None => return Err(ctx.error("the target shape must be an integer tensor")),
            },
            Value::Act(_) => {
                return Err(ctx.error(
                    "the target shape is computed from activations at run time; only constant \
                     shapes or shapes built from the input's size are supported",
                ));
            }
        };
        let numel = shape.numel() as i64;
        let batch_like = |d: Dim| match d {
            Dim::Batch => true,
            Dim::Known(0) => allow_zero == 0,
            Dim::Known(v) => Some(v) == self.batch,
        };
        let rest_ok = |d: Dim| match d {
            Dim::Known(-1) => true,
            Dim::Known(0) => allow_zero == 0 && shape.channels() as i64 == numel,
            Dim::Known(v) => v == numel,
            Dim::Batch => false,
        };
        let is_flatten = match target[..] {
            [first, rest] => {
                (batch_like(first) && rest_ok(rest))
                    || (first == Dim::Known(-1) && rest != Dim::Known(-1) && rest_ok(rest))
            }
            _ => false,
        };
        if !is_flatten {
            let shown: Vec<String> = target.iter().map(|d| d.to_string()).collect();
            return Err(ctx.error(format!(
                "Reshape of [N, {shape}] to [{}] is not supported: only a flatten to [N, -1] or \
                 [N, {numel}] is",
                shown.join(", ")
            )));
        }
        self.simple(ctx, OpSpec::Flatten, vec![x])
    }

    fn add(&mut self, ctx: NodeCtx<'_>, inputs: &[Option<Value>]) -> Result<Value> {
        if inputs.len() < 2 || inputs.iter().any(|i| i.is_none()) {
            return Err(ctx.error(format!(
                "expected at least two inputs, found {}",
                inputs.len()
            )));
        }
        let acts: Vec<NodeId> = inputs
            .iter()
            .filter_map(|i| match i {
                Some(Value::Act(id)) => Some(*id),
                _ => None,
            })
            .collect();
        if acts.len() == inputs.len() {
            return self.simple(ctx, OpSpec::Add, acts);
        }
        let consts: Vec<Arc<HostTensor>> = inputs
            .iter()
            .filter_map(|i| match i {
                Some(Value::Const(t)) => Some(t.clone()),
                _ => None,
            })
            .collect();
        if ctx.op == "Add" && acts.len() == 1 && consts.len() == 1 {
            return self.fuse_bias(ctx, acts[0], &consts[0]);
        }
        Err(ctx.error(
            "only sums of activations, or the bias of a preceding MatMul/Gemm/Conv without one, \
             are supported",
        ))
    }

    /// Adds a constant bias to a bias-less linear or conv node read only by this `Add`.
    fn fuse_bias(&mut self, ctx: NodeCtx<'_>, target: NodeId, bias: &HostTensor) -> Result<Value> {
        let refuse = |why: String| {
            ctx.error(format!(
                "adding a constant is supported only as the bias of a MatMul, Gemm or Conv \
                 without a bias whose output is read only by this Add ({why})"
            ))
        };
        if !self.fusable.remove(&target) {
            return Err(refuse(format!(
                "the other input comes from node `{}`",
                self.defs[target].name
            )));
        }
        let device = self.device.clone();
        let values = bias.to_f32();
        match &mut self.defs[target].layer {
            Layer::Linear(l) => {
                let out = l.weight.dims()[1];
                l.bias = Some(param1(linear_bias(ctx, bias, out)?, &device));
            }
            Layer::Conv2d(c) => {
                let out = c.weight.dims()[0];
                let fits = bias.dims == [out, 1, 1] || bias.dims == [1, out, 1, 1];
                if !fits {
                    return Err(refuse(format!(
                        "a conv bias must have shape [{out}, 1, 1] or [1, {out}, 1, 1], found {}",
                        bias.dims_string()
                    )));
                }
                c.bias = Some(param1(values, &device));
            }
            other => return Err(refuse(format!("node is a {}", other.kind_name()))),
        }
        Ok(Value::Act(target))
    }

    fn concat(
        &mut self,
        ctx: NodeCtx<'_>,
        a: Attrs<'_>,
        inputs: &[Option<Value>],
    ) -> Result<Value> {
        let axis = a.int("axis", i64::MIN)?;
        if axis == i64::MIN {
            return Err(ctx.error("attribute `axis` is required"));
        }
        if inputs.iter().all(|i| matches!(i, Some(Value::Act(_)))) {
            let ids: Vec<NodeId> = inputs
                .iter()
                .map(|i| match i {
                    Some(Value::Act(id)) => *id,
                    _ => unreachable!("checked above"),
                })
                .collect();
            let rank = self.shapes[ids[0]].batch_dims(1).len() as i64;
            if axis != 1 && axis != 1 - rank {
                return Err(ctx.unsupported(
                    "axis",
                    axis,
                    format!(
                        "only the channel axis (1, or {} for rank-{rank} inputs)",
                        1 - rank
                    ),
                ));
            }
            if ids.len() == 1 {
                return self.simple(ctx, OpSpec::Identity, ids);
            }
            return self.simple(ctx, OpSpec::Concat, ids);
        }
        // Concatenation of shape vectors (`[N] ++ [-1]` before a Reshape).
        let mut dims = Vec::new();
        for (k, i) in inputs.iter().enumerate() {
            match i {
                Some(Value::Dims {
                    dims: d,
                    scalar: false,
                }) => dims.extend_from_slice(d),
                Some(Value::Const(t)) if t.dims.len() == 1 && t.as_i64().is_some() => {
                    dims.extend(t.as_i64().expect("checked").iter().map(|&v| Dim::Known(v)));
                }
                _ => {
                    return Err(ctx.error(format!(
                        "input {k}: Concat takes either activations or 1-D integer shape vectors"
                    )));
                }
            }
        }
        Ok(Value::Dims {
            dims,
            scalar: false,
        })
    }

    fn dropout(
        &mut self,
        ctx: NodeCtx<'_>,
        a: Attrs<'_>,
        inputs: &[Option<Value>],
    ) -> Result<Value> {
        let (x, _) = self.act(ctx, inputs, 0, "data")?;
        if self.opset >= 12 && a.get("ratio").is_some() {
            return Err(ctx.unsupported(
                "ratio",
                "an attribute",
                "from opset 12 on, ratio is input 1",
            ));
        }
        let mut ratio = a.float("ratio", 0.5)?;
        if let Some(r) = optional_constant(ctx, inputs, 1, "ratio")? {
            ratio = *r
                .to_f32()
                .first()
                .ok_or_else(|| ctx.error("ratio is empty"))?;
        }
        if let Some(t) = optional_constant(ctx, inputs, 2, "training_mode")?
            && t.to_f32().iter().any(|&v| v != 0.0)
        {
            return Err(ctx.error("training_mode = true is not supported (inference only)"));
        }
        if !(0.0..1.0).contains(&ratio) {
            return Err(ctx.error(format!("ratio {ratio} must be in [0, 1)")));
        }
        self.simple(
            ctx,
            OpSpec::Dropout {
                prob: readable_f64(ratio),
            },
            vec![x],
        )
    }

    fn shape(&mut self, ctx: NodeCtx<'_>, a: Attrs<'_>, inputs: &[Option<Value>]) -> Result<Value> {
        let (x, shape) = self.act(ctx, inputs, 0, "data")?;
        let _ = x;
        let batch = self.batch.map_or(Dim::Batch, Dim::Known);
        let mut dims = vec![batch];
        dims.extend(
            shape
                .batch_dims(1)
                .iter()
                .skip(1)
                .map(|&d| Dim::Known(d as i64)),
        );
        let rank = dims.len() as i64;
        let clamp = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
        let start = clamp(a.int("start", 0)?);
        let end = clamp(a.int("end", rank)?);
        let dims = if start < end {
            dims[start..end].to_vec()
        } else {
            Vec::new()
        };
        Ok(Value::Dims {
            dims,
            scalar: false,
        })
    }
}

const CONV_ATTRS: &[&str] = &[
    "auto_pad",
    "dilations",
    "group",
    "kernel_shape",
    "pads",
    "strides",
];
const GEMM_ATTRS: &[&str] = &["alpha", "beta", "transA", "transB"];
const MAX_POOL_ATTRS: &[&str] = &[
    "auto_pad",
    "ceil_mode",
    "dilations",
    "kernel_shape",
    "pads",
    "storage_order",
    "strides",
];
const AVG_POOL_ATTRS: &[&str] = &[
    "auto_pad",
    "ceil_mode",
    "count_include_pad",
    "dilations",
    "kernel_shape",
    "pads",
    "strides",
];
const CONSTANT_ATTRS: &[&str] = &[
    "value",
    "value_float",
    "value_floats",
    "value_int",
    "value_ints",
    "sparse_value",
    "value_string",
    "value_strings",
];

/// Input `i`, which must be present.
fn input(ctx: NodeCtx<'_>, inputs: &[Option<Value>], i: usize, what: &str) -> Result<Value> {
    inputs
        .get(i)
        .cloned()
        .flatten()
        .ok_or_else(|| ctx.error(format!("input {i} ({what}) is missing")))
}

/// Input `i`, which must be a constant.
fn constant(
    ctx: NodeCtx<'_>,
    inputs: &[Option<Value>],
    i: usize,
    what: &str,
) -> Result<Arc<HostTensor>> {
    match input(ctx, inputs, i, what)? {
        Value::Const(t) => Ok(t),
        _ => Err(ctx.error(format!(
            "input {i} ({what}) must be a constant (an initializer or a Constant node), found a \
             value computed at run time"
        ))),
    }
}

/// Input `i`, which may be absent but must be a constant when present.
fn optional_constant(
    ctx: NodeCtx<'_>,
    inputs: &[Option<Value>],
    i: usize,
    what: &str,
) -> Result<Option<Arc<HostTensor>>> {
    match inputs.get(i) {
        None | Some(None) => Ok(None),
        Some(Some(_)) => constant(ctx, inputs, i, what).map(Some),
    }
}

fn flat_input(ctx: NodeCtx<'_>, shape: FeatureShape, what: &str) -> Result<()> {
    match shape {
        FeatureShape::Flat(_) => Ok(()),
        s => Err(ctx.error(format!(
            "input {what} must be a matrix [N, features], found [N, {s}]; flatten it first"
        ))),
    }
}

fn spatial_hw(ctx: NodeCtx<'_>, shape: FeatureShape) -> Result<[usize; 2]> {
    match shape {
        FeatureShape::Spatial([_, h, w]) => Ok([h, w]),
        s => Err(ctx.error(format!(
            "input X must be a [N, C, H, W] map, found [N, {s}]"
        ))),
    }
}

fn bool_attr(ctx: NodeCtx<'_>, a: &Attrs<'_>, name: &str) -> Result<bool> {
    match a.int(name, 0)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(ctx.unsupported(name, v, "0 or 1")),
    }
}

/// The explicit padding `[top, left, bottom, right]` of a conv or pool from `auto_pad` and
/// `pads`.
fn window_padding(
    ctx: NodeCtx<'_>,
    a: &Attrs<'_>,
    hw: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
) -> Result<Padding2d> {
    let auto_pad = a
        .string("auto_pad")?
        .unwrap_or_else(|| "NOTSET".to_string());
    let pads = a.ints("pads")?;
    let explicit_pads = || -> Result<Padding2d> {
        let Some(p) = &pads else { return Ok([0; 4]) };
        let parsed: Option<Vec<usize>> = p.iter().map(|&v| usize::try_from(v).ok()).collect();
        match parsed {
            Some(v) if v.len() == 4 => Ok([v[0], v[1], v[2], v[3]]),
            _ => Err(ctx.unsupported(
                "pads",
                format!("{p:?}"),
                "4 non-negative values [top, left, bottom, right]",
            )),
        }
    };
    match auto_pad.as_str() {
        "NOTSET" | "" => explicit_pads(),
        "VALID" | "SAME_UPPER" | "SAME_LOWER" => {
            if explicit_pads()? != [0; 4] {
                return Err(ctx.unsupported(
                    "pads",
                    format!("{:?}", pads.unwrap_or_default()),
                    format!("pads cannot be combined with auto_pad = {auto_pad}"),
                ));
            }
            if auto_pad == "VALID" {
                return Ok([0; 4]);
            }
            let mut out = [0; 4];
            for d in 0..2 {
                let o = hw[d].div_ceil(stride[d]);
                let span = dilation[d] * (kernel[d] - 1) + 1;
                let total = ((o.max(1) - 1) * stride[d] + span).saturating_sub(hw[d]);
                let (small, large) = (total / 2, total - total / 2);
                let (begin, end) = if auto_pad == "SAME_UPPER" {
                    (small, large)
                } else {
                    (large, small)
                };
                out[d] = begin;
                out[d + 2] = end;
            }
            Ok(out)
        }
        other => Err(ctx.unsupported(
            "auto_pad",
            format!("{other:?}"),
            "NOTSET, VALID, SAME_UPPER or SAME_LOWER",
        )),
    }
}

/// A linear bias of `out` values from a constant of shape `[out]`, `[1, out]` or a scalar.
fn linear_bias(ctx: NodeCtx<'_>, t: &HostTensor, out: usize) -> Result<Vec<f32>> {
    let values = t.to_f32();
    if t.dims == [out] || t.dims == [1, out] {
        Ok(values)
    } else if values.len() == 1 && t.dims.iter().all(|&d| d == 1) {
        Ok(vec![values[0]; out])
    } else {
        Err(ctx.error(format!(
            "the bias must have shape [{out}] or [1, {out}] (or be a scalar), found {}",
            t.dims_string()
        )))
    }
}

fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

fn param1(values: Vec<f32>, device: &burn::tensor::Device) -> Param<Tensor<1>> {
    let n = values.len();
    Param::from_tensor(Tensor::from_data(TensorData::new(values, [n]), device))
}

/// An `f32` attribute as the `f64` with the shortest decimal form (`1e-5`, not
/// `9.99999974737875e-6`).
pub(crate) fn readable_f64(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(v as f64)
}

/// `1 - m` for an `f32` momentum, rounded to 9 decimals (`0.9` gives `0.1`, not
/// `0.09999999999999998`).
fn one_minus(m: f32) -> f64 {
    ((1.0 - readable_f64(m)) * 1e9).round() / 1e9
}

/// A `Constant` node's value.
fn constant_value(ctx: NodeCtx<'_>, a: &Attrs<'_>) -> Result<HostTensor> {
    if let Some(attr) = a.get("value") {
        let t = attr
            .t
            .as_ref()
            .ok_or_else(|| ctx.error("attribute `value` holds no tensor"))?;
        return decode_tensor(t).map_err(|m| ctx.error(format!("attribute `value`: {m}")));
    }
    if a.get("value_float").is_some() {
        return Ok(HostTensor::f32(vec![], vec![a.float("value_float", 0.0)?]));
    }
    if let Some(attr) = a.get("value_floats") {
        let v = attr.floats.clone();
        return Ok(HostTensor::f32(vec![v.len()], v));
    }
    if a.get("value_int").is_some() {
        return Ok(HostTensor::i64(vec![], vec![a.int("value_int", 0)?]));
    }
    if let Some(v) = a.ints("value_ints")? {
        return Ok(HostTensor::i64(vec![v.len()], v));
    }
    for name in ["sparse_value", "value_string", "value_strings"] {
        if let Some(attr) = a.get(name) {
            return Err(ctx.unsupported(
                name,
                super::attr::describe(attr),
                "dense numeric constants (value, value_float(s), value_int(s))",
            ));
        }
    }
    Err(ctx.error("the Constant node has no value attribute"))
}

fn constant_node(ctx: NodeCtx<'_>, a: Attrs<'_>) -> Result<Value> {
    Ok(Value::Const(Arc::new(constant_value(ctx, &a)?)))
}
