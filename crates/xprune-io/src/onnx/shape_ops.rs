//! Folding of the small computations exporters emit on constants and on the input's size
//! (`Shape` -> `Gather` -> `Unsqueeze` -> `Concat` building a `Reshape` target, `Div` and
//! `Mul` computing a split size, `Cast`s), so that the kinds see plain constants.
//!
//! A node is folded when none of its inputs is an activation (and always for `Shape` and
//! `Constant`); otherwise it goes to the kinds.

use super::attr::NodeCtx;
use super::error::Result;
use super::tensor::dtype;
use std::sync::Arc;
use xprune_graph::kind::{Attr, ConstData, ConstTensor, Dim, OpAttrs, OpValue};

/// Entries of a shape vector or integer constant, and whether it is a scalar.
fn int_entries(ctx: NodeCtx<'_>, v: &OpValue, what: &str) -> Result<(Vec<Dim>, bool)> {
    match v {
        OpValue::Dims { dims, scalar } => Ok((dims.clone(), *scalar)),
        OpValue::Const(t) if t.dims.len() <= 1 => match t.as_i64() {
            Some(ints) => Ok((
                ints.iter().map(|&i| Dim::Known(i)).collect(),
                t.dims.is_empty(),
            )),
            None => Err(ctx.error(format!("{what} must be an integer tensor"))),
        },
        OpValue::Const(t) => Err(ctx.error(format!(
            "{what}: only scalars and vectors are supported, found shape {}",
            t.dims_string()
        ))),
        OpValue::Act { .. } => Err(ctx.error(format!(
            "{what} is an activation; {} is supported only on shape vectors",
            ctx.op
        ))),
        OpValue::Absent => Err(ctx.error(format!("{what} is missing"))),
    }
}

fn present<'a>(
    ctx: NodeCtx<'_>,
    inputs: &'a [OpValue],
    i: usize,
    what: &str,
) -> Result<&'a OpValue> {
    match inputs.get(i) {
        None | Some(OpValue::Absent) => Err(ctx.error(format!("input {i} ({what}) is missing"))),
        Some(v) => Ok(v),
    }
}

/// Turns folded entries back into a value: a constant when all are known.
fn entries_value(dims: Vec<Dim>, scalar: bool) -> OpValue {
    let known: Option<Vec<i64>> = dims
        .iter()
        .map(|d| match d {
            Dim::Known(v) => Some(*v),
            Dim::Batch => None,
        })
        .collect();
    match known {
        Some(v) => {
            let shape = if scalar { vec![] } else { vec![v.len()] };
            OpValue::Const(Arc::new(ConstTensor::i64(shape, v)))
        }
        None => OpValue::Dims { dims, scalar },
    }
}

/// The op types [`fold`] computes when none of their inputs is an activation (`Constant` and
/// `Shape` always): shape arithmetic and small constant subgraphs of exporters.
pub const FOLDED_OPS: &[&str] = &[
    "Constant",
    "Shape",
    "Identity",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Cast",
    "Concat",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "ConstantOfShape",
    "Reshape",
    "Transpose",
    "Slice",
];

/// Folds the node if it computes on constants and shapes only; `None` when it is a kind's.
pub(crate) fn fold(
    ctx: NodeCtx<'_>,
    attrs: &OpAttrs,
    inputs: &[OpValue],
    opset: i64,
    batch: Option<i64>,
) -> Result<Option<OpValue>> {
    let any_act = inputs.iter().any(|v| matches!(v, OpValue::Act { .. }));
    let check = |allowed: &[&str]| {
        attrs
            .check(ctx.op, allowed)
            .map_err(|e| ctx.import_error(e))
    };
    Ok(Some(match ctx.op {
        "Constant" => {
            check(CONSTANT_ATTRS)?;
            OpValue::Const(Arc::new(constant_value(ctx, attrs)?))
        }
        "Shape" => {
            check(&["start", "end"])?;
            shape(ctx, attrs, inputs, batch)?
        }
        RESHAPED_SHAPE => {
            check(&["start", "end"])?;
            let full = reshaped_dims(ctx, inputs, batch)?;
            slice_dims(ctx, attrs, full)?
        }
        PERMUTED_SHAPE => {
            check(&["perm", "start", "end"])?;
            let full = full_dims(ctx, inputs, batch)?;
            let perm = attrs
                .ints("perm")
                .map_err(|e| ctx.import_error(e))?
                .unwrap_or_else(|| (0..full.len() as i64).rev().collect());
            let mut seen = vec![false; full.len()];
            let mut permuted = Vec::with_capacity(full.len());
            for &p in &perm {
                match usize::try_from(p)
                    .ok()
                    .filter(|&p| p < full.len() && !seen[p])
                {
                    Some(p) => {
                        seen[p] = true;
                        permuted.push(full[p]);
                    }
                    None => {
                        return Err(ctx.error(format!(
                            "perm {perm:?} is not a permutation of {} axes",
                            full.len()
                        )));
                    }
                }
            }
            if permuted.len() != full.len() {
                return Err(ctx.error(format!("perm {perm:?} does not cover {} axes", full.len())));
            }
            slice_dims(ctx, attrs, permuted)?
        }
        _ if any_act => return Ok(None),
        "Identity" => {
            check(&[])?;
            present(ctx, inputs, 0, "input")?.clone()
        }
        "Gather" => {
            check(&["axis"])?;
            gather(ctx, attrs, inputs)?
        }
        "Unsqueeze" => {
            check(&["axes"])?;
            unsqueeze(ctx, attrs, inputs, opset)?
        }
        "Squeeze" => {
            check(&["axes"])?;
            let (d, scalar) = int_entries(ctx, present(ctx, inputs, 0, "data")?, "data")?;
            let axes = axes_of(ctx, attrs, inputs, opset)?;
            let axes_ok = axes.as_deref().is_none_or(|a| a == [0] || a == [-1]);
            if scalar || d.len() != 1 || !axes_ok {
                return Err(ctx.error(format!(
                    "only the squeeze of a one-entry shape vector (axes [0]) into a scalar is \
                     supported, found {} entries{}",
                    d.len(),
                    axes.map(|a| format!(" and axes {a:?}")).unwrap_or_default()
                )));
            }
            entries_value(d, true)
        }
        "Cast" => {
            check(&["to", "saturate", "round_mode"])?;
            cast(ctx, attrs, inputs)?
        }
        "Concat" => {
            check(&["axis"])?;
            concat(ctx, inputs)?
        }
        "Add" | "Sub" | "Mul" | "Div" => {
            check(&[])?;
            arithmetic(ctx, inputs)?
        }
        "ConstantOfShape" => {
            check(&["value"])?;
            constant_of_shape(ctx, attrs, inputs)?
        }
        "Reshape" => {
            check(&["allowzero"])?;
            let allowzero = attrs.int("allowzero", 0).map_err(|e| ctx.import_error(e))? != 0;
            reshape_const(ctx, inputs, allowzero)?
        }
        "Transpose" => {
            check(&["perm"])?;
            transpose_const(ctx, attrs, inputs)?
        }
        "Slice" => {
            check(&[])?;
            slice_const(ctx, inputs)?
        }
        _ => return Ok(None),
    }))
}

/// The internal op a fusion writes for `Shape(y)` when it removed `y`, a value of the shape of
/// `Reshape(data, target)`: `ReshapedShape(data, target)`, with `Shape`'s `start` and `end`.
pub const RESHAPED_SHAPE: &str = xprune_graph::kind::RESHAPED_SHAPE;

/// The internal op a fusion writes for `Shape(Transpose(data, perm))` when it removed the
/// transpose: `PermutedShape(data)` with `perm`, and `Shape`'s `start` and `end`.
pub const PERMUTED_SHAPE: &str = xprune_graph::kind::PERMUTED_SHAPE;

/// The dims of `Reshape(inputs[0], inputs[1])`: the target with `0` (copy) and `-1` (infer)
/// resolved against the data's dims.
fn reshaped_dims(ctx: NodeCtx<'_>, inputs: &[OpValue], batch: Option<i64>) -> Result<Vec<Dim>> {
    let data = full_dims(ctx, inputs, batch)?;
    let (target, _) = int_entries(ctx, present(ctx, inputs, 1, "shape")?, "shape")?;
    let mut out: Vec<Dim> = target
        .iter()
        .enumerate()
        .map(|(i, d)| match d {
            Dim::Known(0) => data.get(i).copied().unwrap_or(Dim::Known(0)),
            other => *other,
        })
        .collect();
    if let Some(at) = out.iter().position(|d| *d == Dim::Known(-1)) {
        // Cancel one batch on either side, then divide the known sizes.
        let mut from = data.clone();
        let mut to: Vec<Dim> = out
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != at)
            .map(|(_, d)| *d)
            .collect();
        if let (Some(a), Some(b)) = (
            from.iter().position(|d| *d == Dim::Batch),
            to.iter().position(|d| *d == Dim::Batch),
        ) {
            from.remove(a);
            to.remove(b);
        }
        let product = |v: &[Dim]| -> Option<i64> {
            v.iter().try_fold(1i64, |p, d| match d {
                Dim::Known(k) if *k > 0 => p.checked_mul(*k),
                _ => None,
            })
        };
        match (product(&from), product(&to)) {
            (Some(a), Some(b)) if b > 0 && a % b == 0 => out[at] = Dim::Known(a / b),
            _ => {
                return Err(ctx.error(format!(
                    "cannot infer the -1 of reshape target {target:?} for data of shape {data:?}"
                )));
            }
        }
    }
    Ok(out)
}

/// The dims of a value (the batch first for activations).
fn full_dims(ctx: NodeCtx<'_>, inputs: &[OpValue], batch: Option<i64>) -> Result<Vec<Dim>> {
    Ok(match present(ctx, inputs, 0, "data")? {
        OpValue::Act { shape, .. } => {
            let mut dims = vec![batch.map_or(Dim::Batch, Dim::Known)];
            dims.extend(shape.dims().iter().map(|&d| Dim::Known(d as i64)));
            dims
        }
        OpValue::Const(t) => t.dims.iter().map(|&d| Dim::Known(d as i64)).collect(),
        OpValue::Dims { dims, scalar } => {
            if *scalar {
                Vec::new()
            } else {
                vec![Dim::Known(dims.len() as i64)]
            }
        }
        OpValue::Absent => unreachable!("present checked"),
    })
}

fn shape(ctx: NodeCtx<'_>, a: &OpAttrs, inputs: &[OpValue], batch: Option<i64>) -> Result<OpValue> {
    let full = full_dims(ctx, inputs, batch)?;
    slice_dims(ctx, a, full)
}

/// `Shape`'s `start` and `end` applied to the full dims.
fn slice_dims(ctx: NodeCtx<'_>, a: &OpAttrs, full: Vec<Dim>) -> Result<OpValue> {
    let rank = full.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
    let start = clamp(a.int("start", 0).map_err(|e| ctx.import_error(e))?);
    let end = clamp(a.int("end", rank).map_err(|e| ctx.import_error(e))?);
    let dims = if start < end {
        full[start..end].to_vec()
    } else {
        Vec::new()
    };
    Ok(entries_value(dims, false))
}

/// `Slice` of a shape vector holding the batch (`Shape(x)[0:2]`): a range of its entries (one
/// axis, 0; any step).
fn slice_dims_vector(ctx: NodeCtx<'_>, dims: &[Dim], inputs: &[OpValue]) -> Result<OpValue> {
    let starts = int_vector(ctx, inputs, 1, "starts")?;
    let ends = int_vector(ctx, inputs, 2, "ends")?;
    let axes_ok = match inputs.get(3) {
        Some(OpValue::Absent) | None => true,
        _ => matches!(int_vector(ctx, inputs, 3, "axes")?.as_slice(), [0] | [-1]),
    };
    let step = match inputs.get(4) {
        Some(OpValue::Absent) | None => 1,
        _ => match int_vector(ctx, inputs, 4, "steps")?.as_slice() {
            [s] if *s != 0 => *s,
            _ => return Err(ctx.error("a slice of a shape vector takes one non-zero step")),
        },
    };
    let (&[start], &[end]) = (starts.as_slice(), ends.as_slice()) else {
        return Err(ctx.error("a slice of a shape vector takes one start and one end"));
    };
    if !axes_ok {
        return Err(ctx.error("a shape vector is sliced along its only axis, 0"));
    }
    let d = dims.len() as i64;
    let norm = |v: i64| if v < 0 { v + d } else { v };
    let mut picked = Vec::new();
    if step > 0 {
        let (mut i, e) = (norm(start).clamp(0, d), norm(end).clamp(0, d));
        while i < e {
            picked.push(dims[i as usize]);
            i += step;
        }
    } else {
        let (mut i, e) = (norm(start).clamp(-1, d - 1), norm(end).clamp(-1, d - 1));
        while i > e {
            picked.push(dims[i as usize]);
            i += step;
        }
    }
    Ok(entries_value(picked, false))
}

/// `Gather` along axis 0 of a shape vector with constant indices.
fn gather(ctx: NodeCtx<'_>, a: &OpAttrs, inputs: &[OpValue]) -> Result<OpValue> {
    let axis = a.int("axis", 0).map_err(|e| ctx.import_error(e))?;
    if axis != 0 && axis != -1 {
        return Err(ctx.unsupported("axis", axis, "only axis 0 of a shape vector"));
    }
    let (data, data_scalar) = int_entries(ctx, present(ctx, inputs, 0, "data")?, "data")?;
    if data_scalar {
        return Err(ctx.error("data must be a vector, found a scalar"));
    }
    let (indices, scalar) = int_entries(ctx, present(ctx, inputs, 1, "indices")?, "indices")?;
    let n = data.len() as i64;
    let mut out = Vec::with_capacity(indices.len());
    for i in indices {
        let Dim::Known(i) = i else {
            return Err(ctx.error("indices must be constants"));
        };
        let k = if i < 0 { i + n } else { i };
        if !(0..n).contains(&k) {
            return Err(ctx.error(format!("index {i} is out of range for {n} entries")));
        }
        out.push(data[k as usize]);
    }
    Ok(entries_value(out, scalar))
}

/// `Unsqueeze` of a scalar into a one-entry vector (axes `[0]`).
/// The `axes` of `Unsqueeze` / `Squeeze`: the attribute before opset 13, input 1 from 13 on;
/// `None` when left out.
fn axes_of(
    ctx: NodeCtx<'_>,
    a: &OpAttrs,
    inputs: &[OpValue],
    opset: i64,
) -> Result<Option<Vec<i64>>> {
    if opset >= 13 {
        if a.get("axes").is_some() {
            return Err(ctx.unsupported(
                "axes",
                "an attribute",
                "from opset 13 on, axes is input 1",
            ));
        }
        let Some(v) = inputs.get(1).filter(|v| !matches!(v, OpValue::Absent)) else {
            return Ok(None);
        };
        let (axes, _) = int_entries(ctx, v, "axes")?;
        axes.iter()
            .map(|d| match d {
                Dim::Known(v) => Ok(*v),
                Dim::Batch => Err(ctx.error("axes must be constants")),
            })
            .collect::<Result<_>>()
            .map(Some)
    } else {
        a.ints("axes").map_err(|e| ctx.import_error(e))
    }
}

/// `Unsqueeze` of a scalar shape entry into a one-entry vector.
fn unsqueeze(ctx: NodeCtx<'_>, a: &OpAttrs, inputs: &[OpValue], opset: i64) -> Result<OpValue> {
    let axes = axes_of(ctx, a, inputs, opset)?.ok_or_else(|| ctx.error("`axes` is required"))?;
    let (data, scalar) = int_entries(ctx, present(ctx, inputs, 0, "data")?, "data")?;
    if !(scalar && (axes == [0] || axes == [-1])) {
        return Err(ctx.error(format!(
            "only the unsqueeze of a scalar shape entry into a vector (axes [0]) is supported, \
             found axes {axes:?} on a {}",
            if scalar { "scalar" } else { "vector" }
        )));
    }
    Ok(entries_value(data, false))
}

/// `Cast` between integer types of a shape vector or constant (values unchanged), or between
/// floats and integers of a constant.
fn cast(ctx: NodeCtx<'_>, a: &OpAttrs, inputs: &[OpValue]) -> Result<OpValue> {
    let to = a.int("to", 0).map_err(|e| ctx.import_error(e))? as i32;
    let v = present(ctx, inputs, 0, "input")?;
    let int_target = to == dtype::INT64 || to == dtype::INT32;
    match v {
        OpValue::Dims { .. } if int_target => Ok(v.clone()),
        OpValue::Const(t) => match (&t.data, to) {
            (ConstData::I64(_), _) if int_target => Ok(v.clone()),
            (ConstData::F32(_), dtype::FLOAT | dtype::DOUBLE) => Ok(v.clone()),
            (ConstData::F32(f), _) if int_target => Ok(OpValue::Const(Arc::new(ConstTensor::i64(
                t.dims.clone(),
                f.iter().map(|&x| x as i64).collect(),
            )))),
            (ConstData::I64(i), dtype::FLOAT | dtype::DOUBLE) => Ok(OpValue::Const(Arc::new(
                ConstTensor::f32(t.dims.clone(), i.iter().map(|&x| x as f32).collect()),
            ))),
            _ => Err(ctx.unsupported(
                "to",
                super::tensor::dtype_name(to),
                "FLOAT, DOUBLE, INT32 or INT64",
            )),
        },
        _ => Err(ctx.error(format!(
            "Cast to {} is supported only on constants and shape vectors",
            super::tensor::dtype_name(to)
        ))),
    }
}

/// Concatenation of shape vectors (`[N] ++ [-1]` before a Reshape).
fn concat(ctx: NodeCtx<'_>, inputs: &[OpValue]) -> Result<OpValue> {
    let mut dims = Vec::new();
    for (k, v) in inputs.iter().enumerate() {
        let (d, scalar) = int_entries(ctx, v, &format!("input {k}"))?;
        if scalar {
            return Err(ctx.error(format!(
                "input {k}: Concat takes 1-D shape vectors, found a scalar"
            )));
        }
        dims.extend(d);
    }
    Ok(entries_value(dims, false))
}

/// Element-wise `Add`, `Sub`, `Mul`, `Div` on integer shape entries (scalars broadcast;
/// integer division truncates as ONNX's does) or on float constants of one shape or a scalar.
fn arithmetic(ctx: NodeCtx<'_>, inputs: &[OpValue]) -> Result<OpValue> {
    let a = present(ctx, inputs, 0, "A")?;
    let b = present(ctx, inputs, 1, "B")?;
    let floats = |v: &OpValue| match v {
        OpValue::Const(t) if t.as_i64().is_none() => Some(t.clone()),
        _ => None,
    };
    if let (Some(x), Some(y)) = (floats(a), floats(b)) {
        let dims = broadcast_dims(&x.dims, &y.dims)
            .filter(|d| {
                d.iter()
                    .try_fold(1usize, |n, &k| n.checked_mul(k))
                    .is_some_and(|n| n <= MAX_FOLDED)
            })
            .ok_or_else(|| {
                ctx.error(format!(
                    "constants of shapes {} and {} do not broadcast (or their result is too large \
                     to fold)",
                    x.dims_string(),
                    y.dims_string()
                ))
            })?;
        let (xv, yv) = (x.to_f32(), y.to_f32());
        let (xi, yi) = (
            broadcast_index(&x.dims, &dims),
            broadcast_index(&y.dims, &dims),
        );
        let n: usize = dims.iter().product();
        let out: Vec<f32> = (0..n)
            .map(|i| {
                let (p, q) = (xv[xi(i)], yv[yi(i)]);
                match ctx.op {
                    "Add" => p + q,
                    "Sub" => p - q,
                    "Mul" => p * q,
                    _ => p / q,
                }
            })
            .collect();
        return Ok(OpValue::Const(Arc::new(ConstTensor::f32(dims, out))));
    }
    let (x, xs) = int_entries(ctx, a, "A")?;
    let (y, ys) = int_entries(ctx, b, "B")?;
    let n = x.len().max(y.len());
    if !(x.len() == n || x.len() == 1) || !(y.len() == n || y.len() == 1) {
        return Err(ctx.error(format!(
            "shape vectors of {} and {} entries do not broadcast",
            x.len(),
            y.len()
        )));
    }
    let at = |v: &[Dim], i: usize| if v.len() == 1 { v[0] } else { v[i] };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        match (at(&x, i), at(&y, i)) {
            (Dim::Known(p), Dim::Known(q)) => out.push(Dim::Known(
                match ctx.op {
                    "Add" => p.checked_add(q),
                    "Sub" => p.checked_sub(q),
                    "Mul" => p.checked_mul(q),
                    _ => p.checked_div(q),
                }
                .ok_or_else(|| {
                    ctx.error(format!(
                        "{} of {p} and {q} overflows or divides by 0",
                        ctx.op
                    ))
                })?,
            )),
            (p, q) => {
                return Err(ctx.error(format!(
                    "{} of {p} and {q}: sizes computed from the batch size are not supported",
                    ctx.op
                )));
            }
        }
    }
    Ok(entries_value(out, xs && ys))
}

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

/// A `Constant` node's value.
fn constant_value(ctx: NodeCtx<'_>, a: &OpAttrs) -> Result<ConstTensor> {
    let ie = |e| ctx.import_error(e);
    match a.get("value") {
        Some(Attr::Tensor(t)) => return Ok((**t).clone()),
        Some(_) => return Err(ctx.error("attribute `value` holds no tensor")),
        None => {}
    }
    if a.get("value_float").is_some() {
        return Ok(ConstTensor::f32(
            vec![],
            vec![a.float("value_float", 0.0).map_err(ie)?],
        ));
    }
    if let Some(attr) = a.get("value_floats") {
        let Attr::Floats(v) = attr else {
            return Err(ctx.unsupported("value_floats", attr, "a list of floats"));
        };
        return Ok(ConstTensor::f32(vec![v.len()], v.clone()));
    }
    if a.get("value_int").is_some() {
        return Ok(ConstTensor::i64(
            vec![],
            vec![a.int("value_int", 0).map_err(ie)?],
        ));
    }
    if let Some(v) = a.ints("value_ints").map_err(ie)? {
        return Ok(ConstTensor::i64(vec![v.len()], v));
    }
    for name in ["sparse_value", "value_string", "value_strings"] {
        if let Some(attr) = a.get(name) {
            return Err(ctx.unsupported(
                name,
                attr,
                "dense numeric constants (value, value_float(s), value_int(s))",
            ));
        }
    }
    Err(ctx.error("the Constant node has no value attribute"))
}

/// The largest constant the importer computes itself (a hostile `ConstantOfShape` could ask
/// for any size).
const MAX_FOLDED: usize = 1 << 24;

/// A constant tensor input (shape vectors with known sizes count as integer constants).
fn tensor_input(ctx: NodeCtx<'_>, inputs: &[OpValue], i: usize, what: &str) -> Result<ConstTensor> {
    match present(ctx, inputs, i, what)? {
        OpValue::Const(t) => Ok((**t).clone()),
        v @ OpValue::Dims { .. } => {
            let (d, scalar) = int_entries(ctx, v, what)?;
            let known: Option<Vec<i64>> = d
                .iter()
                .map(|x| match x {
                    Dim::Known(v) => Some(*v),
                    Dim::Batch => None,
                })
                .collect();
            let known =
                known.ok_or_else(|| ctx.error(format!("{what} depends on the batch size")))?;
            let dims = if scalar { vec![] } else { vec![known.len()] };
            Ok(ConstTensor::i64(dims, known))
        }
        _ => Err(ctx.error(format!("{what} must be a constant"))),
    }
}

/// Small integer vectors of a constant input.
fn int_vector(ctx: NodeCtx<'_>, inputs: &[OpValue], i: usize, what: &str) -> Result<Vec<i64>> {
    let t = tensor_input(ctx, inputs, i, what)?;
    t.as_i64()
        .map(|v| v.to_vec())
        .ok_or_else(|| ctx.error(format!("{what} must be integers")))
}

fn checked_numel(ctx: NodeCtx<'_>, dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_FOLDED)
        .ok_or_else(|| {
            ctx.error(format!(
                "a constant of shape {dims:?} is too large to compute"
            ))
        })
}

/// `ConstantOfShape(shape)`: a tensor of that shape filled with `value` (float 0 by default).
fn constant_of_shape(ctx: NodeCtx<'_>, a: &OpAttrs, inputs: &[OpValue]) -> Result<OpValue> {
    let shape = int_vector(ctx, inputs, 0, "shape")?;
    let dims: Vec<usize> = shape
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| ctx.error(format!("negative size in {shape:?}"))))
        .collect::<Result<_>>()?;
    let n = checked_numel(ctx, &dims)?;
    let t = match a.get("value") {
        Some(Attr::Tensor(v)) => match &v.data {
            ConstData::I64(x) if x.len() == 1 => ConstTensor::i64(dims, vec![x[0]; n]),
            ConstData::F32(x) if x.len() == 1 => ConstTensor::f32(dims, vec![x[0]; n]),
            _ => return Err(ctx.error("value must hold one element")),
        },
        Some(_) => return Err(ctx.error("value must be a tensor")),
        None => ConstTensor::f32(dims, vec![0.0; n]),
    };
    Ok(OpValue::Const(Arc::new(t)))
}

/// `Reshape` of a constant (`-1` is inferred; `0` copies a dimension, or with `allowzero` is a
/// size of zero).
fn reshape_const(ctx: NodeCtx<'_>, inputs: &[OpValue], allowzero: bool) -> Result<OpValue> {
    let data = tensor_input(ctx, inputs, 0, "data")?;
    let target = int_vector(ctx, inputs, 1, "shape")?;
    let n = data.len();
    let mut dims: Vec<Option<usize>> = Vec::with_capacity(target.len());
    for (i, &t) in target.iter().enumerate() {
        dims.push(match t {
            -1 => None,
            0 if allowzero => Some(0),
            0 => Some(
                *data
                    .dims
                    .get(i)
                    .ok_or_else(|| ctx.error("shape copies a missing dimension"))?,
            ),
            t if t > 0 => Some(t as usize),
            t => return Err(ctx.error(format!("invalid target size {t}"))),
        });
    }
    let known: usize = dims.iter().flatten().product();
    let free = dims.iter().filter(|d| d.is_none()).count();
    let dims: Vec<usize> = match free {
        0 if known == n => dims.into_iter().flatten().collect(),
        1 if known > 0 && n % known == 0 => {
            dims.into_iter().map(|d| d.unwrap_or(n / known)).collect()
        }
        _ => return Err(ctx.error(format!("cannot reshape {} values to {target:?}", n))),
    };
    Ok(OpValue::Const(Arc::new(ConstTensor {
        dims,
        data: data.data,
    })))
}

/// The shape two tensors broadcast to (numpy rules: dimensions right-aligned, each pair equal
/// or one of them 1), or `None`.
fn broadcast_dims(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let at = |d: &[usize], i: usize| (i + d.len()).checked_sub(rank).map_or(1, |j| d[j]);
    (0..rank)
        .map(|i| match (at(a, i), at(b, i)) {
            (p, q) if p == q => Some(p),
            (1, q) => Some(q),
            (p, 1) => Some(p),
            _ => None,
        })
        .collect()
}

/// For a tensor of shape `from` broadcast to `to`, the source index of every flat output
/// index.
fn broadcast_index(from: &[usize], to: &[usize]) -> impl Fn(usize) -> usize + use<> {
    let offset = to.len() - from.len();
    let src = strides(from);
    let dst = strides(to);
    let from = from.to_vec();
    move |i| {
        let mut j = 0;
        for (axis, &d) in from.iter().enumerate() {
            // (a dimension of `from` is 1 or the output's: then its coordinate is the output's)
            if d != 1 {
                j += (i / dst[axis + offset]) % d * src[axis];
            }
        }
        j
    }
}

/// Strides of a row-major tensor.
fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// Picks the values at `flat` indices.
fn gather_flat(data: &ConstData, flat: &[usize]) -> ConstData {
    match data {
        ConstData::F32(v) => ConstData::F32(flat.iter().map(|&i| v[i]).collect()),
        ConstData::I64(v) => ConstData::I64(flat.iter().map(|&i| v[i]).collect()),
    }
}

/// The flat indices of every element of an `out`-shaped tensor, through `index(coords)`.
fn walk(out: &[usize], mut index: impl FnMut(&[usize]) -> usize) -> Vec<usize> {
    let n: usize = out.iter().product();
    let mut coords = vec![0usize; out.len()];
    let mut flat = Vec::with_capacity(n);
    for _ in 0..n {
        flat.push(index(&coords));
        for a in (0..out.len()).rev() {
            coords[a] += 1;
            if coords[a] < out[a] {
                break;
            }
            coords[a] = 0;
        }
    }
    flat
}

/// `Transpose` of a constant.
fn transpose_const(ctx: NodeCtx<'_>, a: &OpAttrs, inputs: &[OpValue]) -> Result<OpValue> {
    let data = tensor_input(ctx, inputs, 0, "data")?;
    let rank = data.dims.len();
    let perm: Vec<usize> = match a.ints("perm").map_err(|e| ctx.import_error(e))? {
        Some(p) => p.iter().map(|&x| x as usize).collect(),
        None => (0..rank).rev().collect(),
    };
    let mut sorted = perm.clone();
    sorted.sort_unstable();
    if sorted != (0..rank).collect::<Vec<_>>() {
        return Err(ctx.error(format!("perm {perm:?} is not a permutation of {rank} axes")));
    }
    let out: Vec<usize> = perm.iter().map(|&p| data.dims[p]).collect();
    let st = strides(&data.dims);
    let flat = walk(&out, |c| {
        c.iter().zip(&perm).map(|(&x, &p)| x * st[p]).sum()
    });
    Ok(OpValue::Const(Arc::new(ConstTensor {
        dims: out,
        data: gather_flat(&data.data, &flat),
    })))
}

/// `Slice` of a constant (any axes, negative steps).
fn slice_const(ctx: NodeCtx<'_>, inputs: &[OpValue]) -> Result<OpValue> {
    if let Some(OpValue::Dims {
        dims,
        scalar: false,
    }) = inputs.first()
    {
        return slice_dims_vector(ctx, dims, inputs);
    }
    let data = tensor_input(ctx, inputs, 0, "data")?;
    let starts = int_vector(ctx, inputs, 1, "starts")?;
    let ends = int_vector(ctx, inputs, 2, "ends")?;
    let rank = data.dims.len() as i64;
    let axes = match inputs.get(3) {
        Some(OpValue::Absent) | None => (0..starts.len() as i64).collect(),
        _ => int_vector(ctx, inputs, 3, "axes")?,
    };
    let steps = match inputs.get(4) {
        Some(OpValue::Absent) | None => vec![1; starts.len()],
        _ => int_vector(ctx, inputs, 4, "steps")?,
    };
    if starts.len() != ends.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(ctx.error("starts, ends, axes and steps differ in length"));
    }
    // per axis: first index, step, count
    let mut plan: Vec<(i64, i64, usize)> = data.dims.iter().map(|&d| (0, 1, d)).collect();
    for k in 0..starts.len() {
        let ax = if axes[k] < 0 { axes[k] + rank } else { axes[k] };
        if !(0..rank).contains(&ax) || steps[k] == 0 {
            return Err(ctx.error(format!("invalid axis {} or step {}", axes[k], steps[k])));
        }
        let d = data.dims[ax as usize] as i64;
        let step = steps[k];
        let norm = |v: i64| if v < 0 { v + d } else { v };
        let (s, e) = if step > 0 {
            (norm(starts[k]).clamp(0, d), norm(ends[k]).clamp(0, d))
        } else {
            (
                norm(starts[k]).clamp(-1, d - 1),
                norm(ends[k]).clamp(-1, d - 1),
            )
        };
        // ceil(span / |step|) in 128 bits: steps near the i64 limits do not overflow
        let span = if step > 0 { e - s } else { s - e }.max(0) as i128;
        let stride = step.unsigned_abs() as i128;
        let count = (span + stride - 1) / stride;
        plan[ax as usize] = (s, step, count as usize);
    }
    let out: Vec<usize> = plan.iter().map(|p| p.2).collect();
    checked_numel(ctx, &out)?;
    let st = strides(&data.dims);
    let flat = walk(&out, |c| {
        c.iter()
            .zip(&plan)
            .zip(&st)
            .map(|((&x, &(s, step, _)), &stride)| (s + x as i64 * step) as usize * stride)
            .sum()
    });
    Ok(OpValue::Const(Arc::new(ConstTensor {
        dims: out,
        data: gather_flat(&data.data, &flat),
    })))
}
