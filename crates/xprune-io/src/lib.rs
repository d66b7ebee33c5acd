//! xprune-io (see the crate description).
#![warn(missing_docs)]

pub mod data;
pub mod onnx;
pub mod trace;
