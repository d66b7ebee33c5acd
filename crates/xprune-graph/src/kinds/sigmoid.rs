//! `sigmoid`: Burn's logistic sigmoid (`burn::nn::Sigmoid`), as in squeeze-and-excitation
//! gates.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

activation_kind! {
    /// Hyper-parameters of a sigmoid (none).
    SigmoidOp for burn::nn::Sigmoid, name "sigmoid", onnx "Sigmoid",
    forward |t| burn::tensor::activation::sigmoid(t),
    nonnegative |_inputs| true,
    new burn::nn::Sigmoid
}

impl GraphBuilder {
    /// Adds a sigmoid.
    pub fn sigmoid(&mut self, name: impl Into<String>, input: NodeId) -> crate::Result<NodeId> {
        self.add_op(name, SigmoidOp {}, &[input])
    }
}
