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
            let (d, _) = int_entries(ctx, present(ctx, inputs, 0, "data")?, "data")?;
            if d.len() != 1 {
                return Err(ctx.error("only the squeeze of a one-entry vector is supported"));
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
        _ => return Ok(None),
    }))
}

fn shape(ctx: NodeCtx<'_>, a: &OpAttrs, inputs: &[OpValue], batch: Option<i64>) -> Result<OpValue> {
    let full: Vec<Dim> = match present(ctx, inputs, 0, "data")? {
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
    };
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
fn unsqueeze(ctx: NodeCtx<'_>, a: &OpAttrs, inputs: &[OpValue], opset: i64) -> Result<OpValue> {
    let axes: Vec<i64> = if opset >= 13 {
        if a.get("axes").is_some() {
            return Err(ctx.unsupported(
                "axes",
                "an attribute",
                "from opset 13 on, axes is input 1",
            ));
        }
        let (axes, _) = int_entries(ctx, present(ctx, inputs, 1, "axes")?, "axes")?;
        axes.iter()
            .map(|d| match d {
                Dim::Known(v) => Ok(*v),
                Dim::Batch => Err(ctx.error("axes must be constants")),
            })
            .collect::<Result<_>>()?
    } else {
        a.ints("axes")
            .map_err(|e| ctx.import_error(e))?
            .ok_or_else(|| ctx.error("attribute `axes` is required"))?
    };
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
        let (xv, yv) = (x.to_f32(), y.to_f32());
        let (dims, n) = if xv.len() >= yv.len() {
            (x.dims.clone(), xv.len())
        } else {
            (y.dims.clone(), yv.len())
        };
        if !(xv.len() == n || xv.len() == 1) || !(yv.len() == n || yv.len() == 1) {
            return Err(ctx.error(format!(
                "constants of shapes {} and {} do not broadcast",
                x.dims_string(),
                y.dims_string()
            )));
        }
        let at = |v: &[f32], i: usize| if v.len() == 1 { v[0] } else { v[i] };
        let out: Vec<f32> = (0..n)
            .map(|i| {
                let (p, q) = (at(&xv, i), at(&yv, i));
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
