//! [`Array`]: an n-dimensional array read from or written to a data file, in one of the element
//! types the formats share.

use super::error::{DataError, Result};
use std::fmt;

/// Element type of an [`Array`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::U8 | Self::I8 => 1,
            Self::I16 => 2,
            Self::I32 | Self::F32 => 4,
            Self::I64 | Self::F64 => 8,
        }
    }

    /// The numpy name (`uint8`, `int64`, `float32`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::U8 => "uint8",
            Self::I8 => "int8",
            Self::I16 => "int16",
            Self::I32 => "int32",
            Self::I64 => "int64",
            Self::F32 => "float32",
            Self::F64 => "float64",
        }
    }

    /// Whether the type holds integers.
    pub fn is_integer(self) -> bool {
        !matches!(self, Self::F32 | Self::F64)
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The elements of an [`Array`], in row-major (C) order.
#[derive(Clone, Debug, PartialEq)]
pub enum ArrayData {
    /// `uint8` elements.
    U8(Vec<u8>),
    /// `int8` elements.
    I8(Vec<i8>),
    /// `int16` elements.
    I16(Vec<i16>),
    /// `int32` elements.
    I32(Vec<i32>),
    /// `int64` elements.
    I64(Vec<i64>),
    /// `float32` elements.
    F32(Vec<f32>),
    /// `float64` elements.
    F64(Vec<f64>),
}

impl ArrayData {
    /// The element type.
    pub fn dtype(&self) -> Dtype {
        match self {
            Self::U8(_) => Dtype::U8,
            Self::I8(_) => Dtype::I8,
            Self::I16(_) => Dtype::I16,
            Self::I32(_) => Dtype::I32,
            Self::I64(_) => Dtype::I64,
            Self::F32(_) => Dtype::F32,
            Self::F64(_) => Dtype::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::I8(v) => v.len(),
            Self::I16(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::F64(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes `count` elements of `dtype` from `bytes` (exactly `count * dtype.size()` bytes),
    /// little-endian unless `big_endian`.
    pub(crate) fn from_bytes(dtype: Dtype, bytes: &[u8], big_endian: bool) -> Self {
        macro_rules! decode {
            ($t:ty, $n:expr) => {
                bytes
                    .chunks_exact($n)
                    .map(|c| {
                        let a: [u8; $n] = c.try_into().expect("chunk size");
                        if big_endian {
                            <$t>::from_be_bytes(a)
                        } else {
                            <$t>::from_le_bytes(a)
                        }
                    })
                    .collect()
            };
        }
        match dtype {
            Dtype::U8 => Self::U8(bytes.to_vec()),
            Dtype::I8 => Self::I8(bytes.iter().map(|b| *b as i8).collect()),
            Dtype::I16 => Self::I16(decode!(i16, 2)),
            Dtype::I32 => Self::I32(decode!(i32, 4)),
            Dtype::I64 => Self::I64(decode!(i64, 8)),
            Dtype::F32 => Self::F32(decode!(f32, 4)),
            Dtype::F64 => Self::F64(decode!(f64, 8)),
        }
    }

    /// The elements as little-endian bytes.
    pub(crate) fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            Self::U8(v) => v.clone(),
            Self::I8(v) => v.iter().map(|x| *x as u8).collect(),
            Self::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Self::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Self::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Self::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Self::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

/// An n-dimensional array: a shape and row-major elements of one [`Dtype`].
///
/// A 0-dimensional array (shape `[]`) holds one element.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    shape: Vec<usize>,
    data: ArrayData,
}

impl Array {
    /// An array; the number of elements must be the product of `shape`.
    pub fn new(shape: Vec<usize>, data: ArrayData) -> Result<Self> {
        let numel: usize = shape.iter().product();
        if numel != data.len() {
            return Err(DataError::InvalidArgument(format!(
                "an array of shape {shape:?} needs {numel} elements, got {}",
                data.len()
            )));
        }
        Ok(Self { shape, data })
    }

    /// A `float32` array.
    pub fn f32(shape: Vec<usize>, values: Vec<f32>) -> Result<Self> {
        Self::new(shape, ArrayData::F32(values))
    }

    /// An `int64` array.
    pub fn i64(shape: Vec<usize>, values: Vec<i64>) -> Result<Self> {
        Self::new(shape, ArrayData::I64(values))
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements.
    pub fn data(&self) -> &ArrayData {
        &self.data
    }

    /// Consumes the array and returns its elements.
    pub fn into_data(self) -> ArrayData {
        self.data
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        self.data.dtype()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements converted to `f32` (64-bit values are rounded).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            ArrayData::U8(v) => v.iter().map(|x| *x as f32).collect(),
            ArrayData::I8(v) => v.iter().map(|x| *x as f32).collect(),
            ArrayData::I16(v) => v.iter().map(|x| *x as f32).collect(),
            ArrayData::I32(v) => v.iter().map(|x| *x as f32).collect(),
            ArrayData::I64(v) => v.iter().map(|x| *x as f32).collect(),
            ArrayData::F32(v) => v.clone(),
            ArrayData::F64(v) => v.iter().map(|x| *x as f32).collect(),
        }
    }

    /// The elements as `i64`, or `None` for a float array.
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        match &self.data {
            ArrayData::U8(v) => Some(v.iter().map(|x| *x as i64).collect()),
            ArrayData::I8(v) => Some(v.iter().map(|x| *x as i64).collect()),
            ArrayData::I16(v) => Some(v.iter().map(|x| *x as i64).collect()),
            ArrayData::I32(v) => Some(v.iter().map(|x| *x as i64).collect()),
            ArrayData::I64(v) => Some(v.clone()),
            ArrayData::F32(_) | ArrayData::F64(_) => None,
        }
    }
}
