//! `tanh`: Burn's hyperbolic tangent (`burn::nn::Tanh`).

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

activation_kind! {
    /// Hyper-parameters of a tanh (none).
    TanhOp for burn::nn::Tanh, name "tanh", onnx "Tanh",
    forward |t| burn::tensor::activation::tanh(t),
    nonnegative |_inputs| false,
    new burn::nn::Tanh
}

impl GraphBuilder {
    /// Adds a tanh.
    pub fn tanh(&mut self, name: impl Into<String>, input: NodeId) -> crate::Result<NodeId> {
        self.add_op(name, TanhOp {}, &[input])
    }
}
