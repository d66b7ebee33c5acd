//! Conversion between ONNX `TensorProto`s and host tensors (`f32` values or `i64` integers).

use onnx_ir::TensorProto;

/// ONNX element type codes (`TensorProto.DataType`) that the importer reads.
pub(crate) mod dtype {
    /// 32-bit float.
    pub const FLOAT: i32 = 1;
    /// 32-bit signed integer.
    pub const INT32: i32 = 6;
    /// 64-bit signed integer.
    pub const INT64: i32 = 7;
    /// Boolean (one byte per value).
    pub const BOOL: i32 = 9;
    /// 64-bit float.
    pub const DOUBLE: i32 = 11;
}

/// The name of an ONNX element type code, for messages.
pub(crate) fn dtype_name(code: i32) -> &'static str {
    match code {
        0 => "UNDEFINED",
        1 => "FLOAT",
        2 => "UINT8",
        3 => "INT8",
        4 => "UINT16",
        5 => "INT16",
        6 => "INT32",
        7 => "INT64",
        8 => "STRING",
        9 => "BOOL",
        10 => "FLOAT16",
        11 => "DOUBLE",
        12 => "UINT32",
        13 => "UINT64",
        14 => "COMPLEX64",
        15 => "COMPLEX128",
        16 => "BFLOAT16",
        _ => "an unknown or 8/4/2-bit type",
    }
}

/// A constant tensor of the model (an initializer or a `Constant` node's value).
pub(crate) type HostTensor = xprune_graph::kind::ConstTensor;

/// Decodes a `TensorProto` held in the model file.
///
/// Supports FLOAT, DOUBLE (narrowed to `f32`), INT64, INT32 and BOOL (as 0/1 integers) tensors
/// stored either in `raw_data` (little-endian) or in the typed repeated fields. The number of values must
/// match the dimensions. Tensors stored in external files are not supported.
pub(crate) fn decode_tensor(t: &TensorProto) -> Result<HostTensor, String> {
    if !t.external_data.is_empty() || t.data_location.value() == 1 {
        return Err(
            "its data is stored in an external file, which is not supported \
                    (save the model with all tensors inside the .onnx file)"
                .into(),
        );
    }
    let mut dims = Vec::with_capacity(t.dims.len());
    let mut numel: usize = 1;
    for &d in &t.dims {
        let d =
            usize::try_from(d).map_err(|_| format!("negative dimension {d} in {:?}", t.dims))?;
        numel = numel
            .checked_mul(d)
            .ok_or_else(|| format!("dimensions {:?} overflow", t.dims))?;
        dims.push(d);
    }
    let raw: &[u8] = &t.raw_data;
    let check = |found: usize| -> Result<(), String> {
        if found == numel {
            Ok(())
        } else {
            Err(format!(
                "dimensions {:?} need {numel} values, the tensor holds {found}",
                t.dims
            ))
        }
    };
    let from_raw = |width: usize| -> Result<Option<std::slice::ChunksExact<'_, u8>>, String> {
        if raw.is_empty() {
            return Ok(None);
        }
        if !raw.len().is_multiple_of(width) {
            return Err(format!(
                "raw data of {} bytes is not a whole number of {width}-byte values",
                raw.len()
            ));
        }
        check(raw.len() / width)?;
        Ok(Some(raw.chunks_exact(width)))
    };
    match t.data_type {
        dtype::FLOAT => {
            let values: Vec<f32> = match from_raw(4)? {
                Some(chunks) => chunks
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                None => {
                    check(t.float_data.len())?;
                    t.float_data.clone()
                }
            };
            Ok(HostTensor::f32(dims, values))
        }
        dtype::DOUBLE => {
            let values: Vec<f32> = match from_raw(8)? {
                Some(chunks) => chunks
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8-byte chunk")) as f32)
                    .collect(),
                None => {
                    check(t.double_data.len())?;
                    t.double_data.iter().map(|&x| x as f32).collect()
                }
            };
            Ok(HostTensor::f32(dims, values))
        }
        dtype::INT64 => {
            let values: Vec<i64> = match from_raw(8)? {
                Some(chunks) => chunks
                    .map(|c| i64::from_le_bytes(c.try_into().expect("8-byte chunk")))
                    .collect(),
                None => {
                    check(t.int64_data.len())?;
                    t.int64_data.clone()
                }
            };
            Ok(HostTensor::i64(dims, values))
        }
        dtype::INT32 => {
            let values: Vec<i64> = match from_raw(4)? {
                Some(chunks) => chunks
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                    .collect(),
                None => {
                    check(t.int32_data.len())?;
                    t.int32_data.iter().map(|&x| x as i64).collect()
                }
            };
            Ok(HostTensor::i64(dims, values))
        }
        dtype::BOOL => {
            let values: Vec<i64> = match from_raw(1)? {
                Some(chunks) => chunks.map(|c| i64::from(c[0] != 0)).collect(),
                None => {
                    check(t.int32_data.len())?;
                    t.int32_data.iter().map(|&x| i64::from(x != 0)).collect()
                }
            };
            Ok(HostTensor::i64(dims, values))
        }
        other => Err(format!(
            "element type {} ({other}) is not supported (supported: FLOAT, DOUBLE, INT64, INT32, BOOL)",
            dtype_name(other)
        )),
    }
}

/// Encodes `f32` values as a FLOAT `TensorProto` named `name` (little-endian `raw_data`).
pub(crate) fn encode_f32(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.to_string();
    t.data_type = dtype::FLOAT;
    t.dims = dims.iter().map(|&d| d as i64).collect();
    let mut raw = Vec::with_capacity(values.len() * 4);
    for v in values {
        raw.extend_from_slice(&v.to_le_bytes());
    }
    t.raw_data = raw.into();
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_round_trip_and_typed_fields() {
        let t = encode_f32("w", &[2, 3], &[1.0, -2.0, 3.5, 0.0, 5.0, 6.25]);
        let h = decode_tensor(&t).unwrap();
        assert_eq!(
            h,
            HostTensor::f32(vec![2, 3], vec![1.0, -2.0, 3.5, 0.0, 5.0, 6.25])
        );

        let mut t = TensorProto::new();
        t.data_type = dtype::INT64;
        t.dims = vec![2];
        t.int64_data = vec![-1, 7];
        assert_eq!(
            decode_tensor(&t).unwrap(),
            HostTensor::i64(vec![2], vec![-1, 7])
        );

        let mut t = TensorProto::new();
        t.data_type = dtype::DOUBLE;
        t.double_data = vec![0.5];
        assert_eq!(
            decode_tensor(&t).unwrap(),
            HostTensor::f32(vec![], vec![0.5])
        );

        let mut t = TensorProto::new();
        t.data_type = dtype::INT32;
        t.dims = vec![1];
        t.raw_data = (-3i32).to_le_bytes().to_vec().into();
        assert_eq!(
            decode_tensor(&t).unwrap(),
            HostTensor::i64(vec![1], vec![-3])
        );
    }

    #[test]
    fn inconsistent_tensors_are_errors() {
        let mut t = encode_f32("w", &[2, 3], &[1.0; 6]);
        t.dims = vec![2, 4];
        assert!(decode_tensor(&t).unwrap_err().contains("need 8 values"));
        t.dims = vec![-1];
        assert!(decode_tensor(&t).unwrap_err().contains("negative"));
        t.dims = vec![i64::MAX, i64::MAX];
        assert!(decode_tensor(&t).unwrap_err().contains("overflow"));
        let mut t = encode_f32("w", &[1], &[1.0]);
        t.raw_data = vec![0u8; 5].into();
        assert!(decode_tensor(&t).unwrap_err().contains("whole number"));
        t.data_type = 10;
        assert!(decode_tensor(&t).unwrap_err().contains("FLOAT16"));
    }
}
