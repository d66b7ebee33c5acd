//! Typed, checked access to the attributes of an ONNX node.

use super::error::OnnxError;
use onnx_ir::{AttributeProto, AttributeType};

/// The identity of the ONNX node being converted, for error messages.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NodeCtx<'a> {
    /// The node's name (its xprune name: the ONNX name, sanitised and made unique).
    pub name: &'a str,
    /// The node's op type.
    pub op: &'a str,
}

impl NodeCtx<'_> {
    /// A [`OnnxError::Node`] for this node.
    pub fn error(&self, message: impl Into<String>) -> OnnxError {
        OnnxError::Node {
            node: self.name.to_string(),
            op: self.op.to_string(),
            message: message.into(),
        }
    }

    /// An [`OnnxError::UnsupportedAttribute`] for this node.
    pub fn unsupported(
        &self,
        attribute: &str,
        value: impl std::fmt::Display,
        supported: impl Into<String>,
    ) -> OnnxError {
        OnnxError::UnsupportedAttribute {
            node: self.name.to_string(),
            op: self.op.to_string(),
            attribute: attribute.to_string(),
            value: value.to_string(),
            supported: supported.into(),
        }
    }
}

/// The attributes of one node, checked against the list of attributes its converter reads.
pub(crate) struct Attrs<'a> {
    ctx: NodeCtx<'a>,
    list: &'a [AttributeProto],
}

impl<'a> Attrs<'a> {
    /// Checks that every attribute is one of `allowed` (each at most once, none referring to a
    /// function attribute) and gives access to them.
    pub fn new(
        ctx: NodeCtx<'a>,
        list: &'a [AttributeProto],
        allowed: &[&str],
    ) -> Result<Self, OnnxError> {
        for (i, a) in list.iter().enumerate() {
            if !allowed.contains(&a.name.as_str()) {
                let supported = if allowed.is_empty() {
                    format!("{} takes no attributes", ctx.op)
                } else {
                    format!("{} supports the attributes {}", ctx.op, allowed.join(", "))
                };
                return Err(ctx.unsupported(&a.name, describe(a), supported));
            }
            if !a.ref_attr_name.is_empty() {
                return Err(ctx.unsupported(
                    &a.name,
                    format!("a reference to `{}`", a.ref_attr_name),
                    "attribute references are only valid inside ONNX functions",
                ));
            }
            if list[..i].iter().any(|b| b.name == a.name) {
                return Err(ctx.error(format!("attribute `{}` is given twice", a.name)));
            }
        }
        Ok(Self { ctx, list })
    }

    /// The raw attribute called `name`, if present.
    pub fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.list.iter().find(|a| a.name == name)
    }

    fn check_type(&self, a: &AttributeProto, want: AttributeType) -> Result<(), OnnxError> {
        match a.type_.enum_value() {
            Ok(t) if t == want || t == AttributeType::UNDEFINED => Ok(()),
            _ => Err(self.ctx.unsupported(
                &a.name,
                describe(a),
                format!("it must be of type {want:?}"),
            )),
        }
    }

    /// An integer attribute, or `default` when absent.
    pub fn int(&self, name: &str, default: i64) -> Result<i64, OnnxError> {
        match self.get(name) {
            None => Ok(default),
            Some(a) => {
                self.check_type(a, AttributeType::INT)?;
                Ok(a.i)
            }
        }
    }

    /// A float attribute, or `default` when absent.
    pub fn float(&self, name: &str, default: f32) -> Result<f32, OnnxError> {
        match self.get(name) {
            None => Ok(default),
            Some(a) => {
                self.check_type(a, AttributeType::FLOAT)?;
                Ok(a.f)
            }
        }
    }

    /// An integer list attribute, if present.
    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, OnnxError> {
        match self.get(name) {
            None => Ok(None),
            Some(a) => {
                self.check_type(a, AttributeType::INTS)?;
                Ok(Some(a.ints.clone()))
            }
        }
    }

    /// A string attribute, if present.
    pub fn string(&self, name: &str) -> Result<Option<String>, OnnxError> {
        match self.get(name) {
            None => Ok(None),
            Some(a) => {
                self.check_type(a, AttributeType::STRING)?;
                String::from_utf8(a.s.to_vec()).map(Some).map_err(|_| {
                    self.ctx
                        .unsupported(&a.name, "non-UTF-8 bytes", "it must be a UTF-8 string")
                })
            }
        }
    }

    /// A list of `N` positive integers (`kernel_shape`, `strides`, `dilations`), if present.
    pub fn positive_ints<const N: usize>(
        &self,
        name: &str,
    ) -> Result<Option<[usize; N]>, OnnxError> {
        let Some(values) = self.ints(name)? else {
            return Ok(None);
        };
        let parsed: Option<Vec<usize>> = values
            .iter()
            .map(|&v| usize::try_from(v).ok().filter(|&v| v > 0))
            .collect();
        match parsed {
            Some(v) if v.len() == N => Ok(Some(v.try_into().expect("length checked"))),
            _ => Err(self.ctx.unsupported(
                name,
                format!("{values:?}"),
                format!("it must hold {N} positive integers (2-D windows only)"),
            )),
        }
    }
}

/// A short description of an attribute's value, for messages.
pub(crate) fn describe(a: &AttributeProto) -> String {
    match a.type_.enum_value() {
        Ok(AttributeType::INT) => a.i.to_string(),
        Ok(AttributeType::FLOAT) => a.f.to_string(),
        Ok(AttributeType::INTS) => format!("{:?}", a.ints),
        Ok(AttributeType::FLOATS) => format!("{:?}", a.floats),
        Ok(AttributeType::STRING) => format!("{:?}", String::from_utf8_lossy(&a.s)),
        Ok(t) => format!("<{t:?} attribute>"),
        Err(code) => format!("<attribute of unknown type {code}>"),
    }
}
