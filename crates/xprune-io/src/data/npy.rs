//! NumPy `.npy` files: one n-dimensional array with a small text header.
//!
//! Reads format versions 1.0, 2.0 and 3.0 (C order; `uint8`, `int8`, `int16`, `int32`,
//! `int64`, `float32` and `float64`, little- or big-endian) and writes version 1.0 (2.0 when
//! the header needs more than 65535 bytes), little-endian, C order.

use super::array::{Array, ArrayData, Dtype};
use super::error::{DataError, Result, format_err, read_file, truncated, write_file};
use super::{dataset_from_arrays, dtype_err};
use std::path::Path;
use xprune_graph::Dataset;

/// The first six bytes of every `.npy` file.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Reads a `.npy` file.
pub fn read(path: impl AsRef<Path>) -> Result<Array> {
    let path = path.as_ref();
    parse(&read_file(path)?, path)
}

/// Writes an array to a `.npy` file (any [`Dtype`]; little-endian, C order).
pub fn write(path: impl AsRef<Path>, array: &Array) -> Result<()> {
    let path = path.as_ref();
    write_file(path, &encode(array))
}

/// Loads a [`Dataset`] from two `.npy` files: features `x` (`[n, features]`,
/// `[n, height, width]` or `[n, channels, height, width]`, any numeric type, converted to
/// `f32`) and labels `y` (`[n]` or `[n, 1]`, an integer type). The class count is the largest
/// label plus one.
pub fn load_dataset(x_path: impl AsRef<Path>, y_path: impl AsRef<Path>) -> Result<Dataset> {
    let (x_path, y_path) = (x_path.as_ref(), y_path.as_ref());
    let x = read(x_path)?;
    let y = read(y_path)?;
    dataset_from_arrays(&x, x_path, &y, y_path, None)
}

/// Decodes the bytes of a `.npy` file; `path` names the file in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Array> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            expected: "\\x93NUMPY (a .npy file)".into(),
            found: show_bytes(&bytes[..bytes.len().min(6)]),
        });
    }
    if bytes.len() < 10 {
        return Err(truncated(
            path,
            format!("{} bytes end inside the .npy preamble", bytes.len()),
        ));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(truncated(
                    path,
                    format!("{} bytes end inside the .npy preamble", bytes.len()),
                ));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        _ => {
            return Err(format_err(
                path,
                format!("unsupported .npy format version {major}.{minor} (known: 1.0, 2.0, 3.0)"),
            ));
        }
    };
    let end = start + header_len;
    if bytes.len() < end {
        return Err(truncated(
            path,
            format!(
                "the header announces {header_len} bytes, the file has {} after the preamble",
                bytes.len() - start
            ),
        ));
    }
    let header = std::str::from_utf8(&bytes[start..end])
        .map_err(|_| format_err(path, "the .npy header is not valid text"))?;
    let header =
        Header::parse(header).map_err(|m| format_err(path, format!("bad .npy header: {m}")))?;
    if header.fortran_order {
        return Err(format_err(
            path,
            "Fortran-order arrays are not supported; save a C-order array \
             (numpy.ascontiguousarray)",
        ));
    }
    let numel = header
        .shape
        .iter()
        .try_fold(1usize, |acc, d| acc.checked_mul(*d))
        .ok_or_else(|| format_err(path, format!("shape {:?} is too large", header.shape)))?;
    let nbytes = numel
        .checked_mul(header.dtype.size())
        .ok_or_else(|| format_err(path, format!("shape {:?} is too large", header.shape)))?;
    let body = &bytes[end..];
    if body.len() < nbytes {
        return Err(truncated(
            path,
            format!(
                "shape {:?} of {} needs {nbytes} data bytes, the file has {}",
                header.shape,
                header.dtype,
                body.len()
            ),
        ));
    }
    if body.len() > nbytes {
        return Err(format_err(
            path,
            format!(
                "{} unexpected bytes after the data of shape {:?} of {}",
                body.len() - nbytes,
                header.shape,
                header.dtype
            ),
        ));
    }
    let data = ArrayData::from_bytes(header.dtype, body, header.big_endian);
    Ok(Array::new(header.shape, data).expect("sizes checked"))
}

/// Encodes an array as the bytes of a `.npy` file (format 1.0, or 2.0 for a header longer
/// than 65535 bytes), little-endian and C order.
pub fn encode(array: &Array) -> Vec<u8> {
    let descr = match array.dtype() {
        Dtype::U8 => "|u1",
        Dtype::I8 => "|i1",
        Dtype::I16 => "<i2",
        Dtype::I32 => "<i4",
        Dtype::I64 => "<i8",
        Dtype::F32 => "<f4",
        Dtype::F64 => "<f8",
    };
    let shape = match array.shape() {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // The preamble plus the header (ending in a newline) fills a multiple of 64 bytes.
    let (version, preamble) = if header.len() + 64 <= 65535 {
        (1u8, 10)
    } else {
        (2u8, 12)
    };
    let total = (preamble + header.len() + 1).div_ceil(64) * 64;
    while preamble + header.len() + 1 < total {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(total + array.len() * array.dtype().size());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&array.data().to_le_bytes());
    out
}

/// Checks that an array has an integer type and returns its values as `i64`.
pub(crate) fn integers(array: &Array, path: &Path, what: &str) -> Result<Vec<i64>> {
    array.to_i64().ok_or_else(|| {
        dtype_err(
            path,
            format!("{what} must be integers, found {}", array.dtype()),
        )
    })
}

/// The fields of a `.npy` header.
#[derive(Debug, PartialEq)]
struct Header {
    dtype: Dtype,
    big_endian: bool,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// A value of the Python literal in a `.npy` header.
#[derive(Debug, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    Int(usize),
    Tuple(Vec<Value>),
}

impl Header {
    fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut p = Parser {
            s: text.trim().as_bytes(),
            i: 0,
        };
        let dict = p.dict()?;
        p.skip_ws();
        if p.i != p.s.len() {
            return Err(format!(
                "unexpected text after the dictionary at byte {}",
                p.i
            ));
        }
        let get = |key: &str| {
            dict.iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .ok_or_else(|| format!("missing key '{key}'"))
        };
        let Value::Str(descr) = get("descr")? else {
            return Err("'descr' is not a string (structured dtypes are not supported)".into());
        };
        let Value::Bool(fortran_order) = get("fortran_order")? else {
            return Err("'fortran_order' is not True or False".into());
        };
        let Value::Tuple(dims) = get("shape")? else {
            return Err("'shape' is not a tuple".into());
        };
        let shape = dims
            .iter()
            .map(|d| match d {
                Value::Int(n) => Ok(*n),
                other => Err(format!(
                    "shape entry {other:?} is not a non-negative integer"
                )),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let (dtype, big_endian) = parse_descr(descr)?;
        Ok(Self {
            dtype,
            big_endian,
            fortran_order: *fortran_order,
            shape,
        })
    }
}

/// Parses a numpy type string such as `<f4`, `|u1` or `>i8`.
fn parse_descr(descr: &str) -> std::result::Result<(Dtype, bool), String> {
    let unsupported = || {
        format!(
            "dtype '{descr}' is not supported (supported: uint8, int8, int16, int32, int64, \
             float32, float64)"
        )
    };
    let bytes = descr.as_bytes();
    if bytes.len() < 3 {
        return Err(unsupported());
    }
    let big_endian = match bytes[0] {
        b'<' | b'|' | b'=' => false,
        b'>' => true,
        _ => return Err(unsupported()),
    };
    let dtype = match &descr[1..] {
        "u1" => Dtype::U8,
        "i1" => Dtype::I8,
        "i2" => Dtype::I16,
        "i4" => Dtype::I32,
        "i8" => Dtype::I64,
        "f4" => Dtype::F32,
        "f8" => Dtype::F64,
        _ => return Err(unsupported()),
    };
    Ok((dtype, big_endian))
}

/// A minimal parser of the Python literal dictionaries numpy writes as headers.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        match self.peek() {
            Some(x) if x == c => {
                self.i += 1;
                Ok(())
            }
            Some(x) => Err(format!(
                "expected '{}' at byte {}, found '{}'",
                c as char, self.i, x as char
            )),
            None => Err(format!(
                "expected '{}', found the end of the header",
                c as char
            )),
        }
    }

    fn dict(&mut self) -> std::result::Result<Vec<(String, Value)>, String> {
        self.expect(b'{')?;
        let mut out = Vec::new();
        loop {
            if self.peek() == Some(b'}') {
                self.i += 1;
                return Ok(out);
            }
            let Value::Str(key) = self.value()? else {
                return Err(format!("dictionary key at byte {} is not a string", self.i));
            };
            self.expect(b':')?;
            let value = self.value()?;
            out.push((key, value));
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {}
                _ => return Err(format!("expected ',' or '}}' at byte {}", self.i)),
            }
        }
    }

    fn value(&mut self) -> std::result::Result<Value, String> {
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => {
                self.i += 1;
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i] != q {
                    self.i += 1;
                }
                if self.i == self.s.len() {
                    return Err("unterminated string".into());
                }
                let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                self.i += 1;
                Ok(Value::Str(text))
            }
            Some(b'(') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(b')') {
                        self.i += 1;
                        return Ok(Value::Tuple(items));
                    }
                    items.push(self.value()?);
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b')') => {}
                        _ => return Err(format!("expected ',' or ')' at byte {}", self.i)),
                    }
                }
            }
            Some(c) if c.is_ascii_digit() => {
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                    self.i += 1;
                }
                // Python 2 wrote long integers with an `L` suffix.
                let digits = std::str::from_utf8(&self.s[start..self.i]).expect("ascii");
                if self.s.get(self.i) == Some(&b'L') {
                    self.i += 1;
                }
                digits
                    .parse()
                    .map(Value::Int)
                    .map_err(|_| format!("integer {digits} is too large"))
            }
            Some(_) => {
                for (word, v) in [("True", true), ("False", false)] {
                    if self.s[self.i..].starts_with(word.as_bytes()) {
                        self.i += word.len();
                        return Ok(Value::Bool(v));
                    }
                }
                Err(format!("unexpected value at byte {}", self.i))
            }
            None => Err("unexpected end of the header".into()),
        }
    }
}

/// Shows up to a few bytes as text where printable, else as hex.
pub(crate) fn show_bytes(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "an empty file".into();
    }
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("bytes {}", hex.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parses_numpy_variants() {
        let h =
            Header::parse("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }").unwrap();
        assert_eq!(h.shape, vec![3, 4]);
        assert_eq!(h.dtype, Dtype::F32);
        let h = Header::parse("{\"descr\":\">i8\",\"shape\":(5,),\"fortran_order\":True}").unwrap();
        assert!(h.big_endian && h.fortran_order);
        assert_eq!(h.shape, vec![5]);
        let h = Header::parse("{'descr': '|u1', 'fortran_order': False, 'shape': (), }").unwrap();
        assert!(h.shape.is_empty());
        assert!(
            Header::parse("{'descr': '<c8', 'fortran_order': False, 'shape': (1,)}")
                .unwrap_err()
                .contains("'<c8' is not supported")
        );
        assert!(
            Header::parse("{'descr': '<f4', 'shape': (1,)}")
                .unwrap_err()
                .contains("fortran_order")
        );
        assert!(Header::parse("{'descr': '<f4', 'fortran_order': False, 'shape': (1,2").is_err());
    }

    #[test]
    fn encode_aligns_the_header_and_round_trips() {
        let a = Array::f32(vec![2, 3], vec![1.0, -2.5, 3.0, 0.0, 1e-8, 7.0]).unwrap();
        let bytes = encode(&a);
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        assert_eq!(bytes[10 + header_len - 1], b'\n');
        assert_eq!(parse(&bytes, Path::new("a.npy")).unwrap(), a);
        let scalar = Array::i64(vec![], vec![42]).unwrap();
        assert_eq!(parse(&encode(&scalar), Path::new("s.npy")).unwrap(), scalar);
    }

    #[test]
    fn big_endian_and_version_two_are_read() {
        let header = "{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }";
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[2, 0]);
        bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&7i32.to_be_bytes());
        bytes.extend_from_slice(&(-3i32).to_be_bytes());
        let a = parse(&bytes, Path::new("be.npy")).unwrap();
        assert_eq!(a.data(), &ArrayData::I32(vec![7, -3]));
    }
}
