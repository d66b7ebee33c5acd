//! ONNX attributes as neutral [`OpAttrs`], and the identity of the node being converted for
//! error messages.

use super::error::OnnxError;
use super::tensor::decode_tensor;
use onnx_ir::{AttributeProto, AttributeType};
use std::sync::Arc;
use xprune_graph::kind::onnx::ImportError;
use xprune_graph::kind::{Attr, OpAttrs};

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

    /// The error of a kind's import, with this node's name and op.
    pub fn import_error(&self, e: ImportError) -> OnnxError {
        match e {
            ImportError::Attribute {
                name,
                value,
                supported,
            } => self.unsupported(&name, value, supported),
            ImportError::Invalid(m) => self.error(m),
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

/// Converts a node's attributes, checking that none is given twice or refers to a function
/// attribute.
pub(crate) fn convert(ctx: NodeCtx<'_>, list: &[AttributeProto]) -> Result<OpAttrs, OnnxError> {
    let mut out: Vec<(String, Attr)> = Vec::with_capacity(list.len());
    for a in list {
        if !a.ref_attr_name.is_empty() {
            return Err(ctx.unsupported(
                &a.name,
                format!("a reference to `{}`", a.ref_attr_name),
                "attribute references are only valid inside ONNX functions",
            ));
        }
        if out.iter().any(|(n, _)| *n == a.name) {
            return Err(ctx.error(format!("attribute `{}` is given twice", a.name)));
        }
        let value = match a.type_.enum_value() {
            Ok(AttributeType::INT) => Attr::Int(a.i),
            Ok(AttributeType::FLOAT) => Attr::Float(a.f),
            Ok(AttributeType::INTS) => Attr::Ints(a.ints.clone()),
            Ok(AttributeType::FLOATS) => Attr::Floats(a.floats.clone()),
            Ok(AttributeType::STRING) => match String::from_utf8(a.s.to_vec()) {
                Ok(s) => Attr::Str(s),
                Err(_) => {
                    return Err(ctx.unsupported(
                        &a.name,
                        "non-UTF-8 bytes",
                        "it must be a UTF-8 string",
                    ));
                }
            },
            Ok(AttributeType::TENSOR) => match a.t.as_ref() {
                Some(t) => Attr::Tensor(Arc::new(
                    decode_tensor(t)
                        .map_err(|m| ctx.error(format!("attribute `{}`: {m}", a.name)))?,
                )),
                None => return Err(ctx.error(format!("attribute `{}` holds no tensor", a.name))),
            },
            // Untyped attributes (old files) carry their value in whichever field is set.
            Ok(AttributeType::UNDEFINED) => {
                if !a.ints.is_empty() {
                    Attr::Ints(a.ints.clone())
                } else if !a.floats.is_empty() {
                    Attr::Floats(a.floats.clone())
                } else if !a.s.is_empty() {
                    Attr::Str(String::from_utf8_lossy(&a.s).into_owned())
                } else if a.f != 0.0 {
                    Attr::Float(a.f)
                } else {
                    Attr::Int(a.i)
                }
            }
            _ => Attr::Other(describe(a)),
        };
        out.push((a.name.clone(), value));
    }
    Ok(OpAttrs::from_list(out))
}
