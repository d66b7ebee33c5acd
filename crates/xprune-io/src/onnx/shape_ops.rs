//! Folding of the small integer computations exporters emit to build a `Reshape` target from
//! the input's size (`Shape` -> `Gather` -> `Unsqueeze` -> `Concat`), and of `Cast`s on them.
//!
//! Only shape vectors and integer constants are folded; these ops on activations are errors.

use super::attr::{Attrs, NodeCtx};
use super::error::Result;
use super::import::{Dim, Value};
use super::tensor::{HostData, HostTensor, dtype, dtype_name};
use std::sync::Arc;

/// Entries of a shape vector or integer constant, and whether it is a scalar.
fn int_entries(ctx: NodeCtx<'_>, v: &Value, what: &str) -> Result<(Vec<Dim>, bool)> {
    match v {
        Value::Dims { dims, scalar } => Ok((dims.clone(), *scalar)),
        Value::Const(t) if t.dims.len() <= 1 => match t.as_i64() {
            Some(ints) => Ok((
                ints.iter().map(|&i| Dim::Known(i)).collect(),
                t.dims.is_empty(),
            )),
            None => Err(ctx.error(format!("{what} must be an integer tensor"))),
        },
        Value::Const(t) => Err(ctx.error(format!(
            "{what}: only scalars and vectors are supported, found shape {}",
            t.dims_string()
        ))),
        Value::Act(_) => Err(ctx.error(format!(
            "{what} is an activation; {} is supported only on shape vectors",
            ctx.op
        ))),
    }
}

fn present(ctx: NodeCtx<'_>, inputs: &[Option<Value>], i: usize, what: &str) -> Result<Value> {
    inputs
        .get(i)
        .cloned()
        .flatten()
        .ok_or_else(|| ctx.error(format!("input {i} ({what}) is missing")))
}

/// Turns folded entries back into a value: a constant when all are known.
fn entries_value(dims: Vec<Dim>, scalar: bool) -> Value {
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
            Value::Const(Arc::new(HostTensor::i64(shape, v)))
        }
        None => Value::Dims { dims, scalar },
    }
}

/// `Gather` along axis 0 of a shape vector with constant indices.
pub(crate) fn gather(ctx: NodeCtx<'_>, a: Attrs<'_>, inputs: &[Option<Value>]) -> Result<Value> {
    let axis = a.int("axis", 0)?;
    if axis != 0 && axis != -1 {
        return Err(ctx.unsupported("axis", axis, "only axis 0 of a shape vector"));
    }
    let (data, data_scalar) = int_entries(ctx, &present(ctx, inputs, 0, "data")?, "data")?;
    if data_scalar {
        return Err(ctx.error("data must be a vector, found a scalar"));
    }
    let (indices, scalar) = int_entries(ctx, &present(ctx, inputs, 1, "indices")?, "indices")?;
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
pub(crate) fn unsqueeze(
    ctx: NodeCtx<'_>,
    a: Attrs<'_>,
    inputs: &[Option<Value>],
    opset: i64,
) -> Result<Value> {
    let axes: Vec<i64> = if opset >= 13 {
        if a.get("axes").is_some() {
            return Err(ctx.unsupported(
                "axes",
                "an attribute",
                "from opset 13 on, axes is input 1",
            ));
        }
        let (axes, _) = int_entries(ctx, &present(ctx, inputs, 1, "axes")?, "axes")?;
        axes.iter()
            .map(|d| match d {
                Dim::Known(v) => Ok(*v),
                Dim::Batch => Err(ctx.error("axes must be constants")),
            })
            .collect::<Result<_>>()?
    } else {
        a.ints("axes")?
            .ok_or_else(|| ctx.error("attribute `axes` is required"))?
    };
    let (data, scalar) = int_entries(ctx, &present(ctx, inputs, 0, "data")?, "data")?;
    if !(scalar && (axes == [0] || axes == [-1])) {
        return Err(ctx.error(format!(
            "only the unsqueeze of a scalar shape entry into a vector (axes [0]) is supported, \
             found axes {axes:?} on a {}",
            if scalar { "scalar" } else { "vector" }
        )));
    }
    Ok(entries_value(data, false))
}

/// `Cast` between integer types of a shape vector or constant (values unchanged), or of a
/// float constant to float.
pub(crate) fn cast(ctx: NodeCtx<'_>, a: Attrs<'_>, inputs: &[Option<Value>]) -> Result<Value> {
    let to = a.int("to", 0)? as i32;
    let v = present(ctx, inputs, 0, "input")?;
    let int_target = to == dtype::INT64 || to == dtype::INT32;
    match &v {
        Value::Dims { .. } if int_target => Ok(v),
        Value::Const(t) => match (&t.data, to) {
            (HostData::I64(_), _) if int_target => Ok(v),
            (HostData::F32(_), dtype::FLOAT | dtype::DOUBLE) => Ok(v),
            (HostData::F32(f), _) if int_target => Ok(Value::Const(Arc::new(HostTensor::i64(
                t.dims.clone(),
                f.iter().map(|&x| x as i64).collect(),
            )))),
            (HostData::I64(i), dtype::FLOAT | dtype::DOUBLE) => Ok(Value::Const(Arc::new(
                HostTensor::f32(t.dims.clone(), i.iter().map(|&x| x as f32).collect()),
            ))),
            _ => Err(ctx.unsupported("to", dtype_name(to), "FLOAT, DOUBLE, INT32 or INT64")),
        },
        _ => Err(ctx.error(format!(
            "Cast to {} is supported only on constants and shape vectors",
            dtype_name(to)
        ))),
    }
}
