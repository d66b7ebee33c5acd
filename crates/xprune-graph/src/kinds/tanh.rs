//! `tanh`: Burn's hyperbolic tangent (`burn::nn::Tanh`).

activation_kind! {
    /// Hyper-parameters of a tanh (none).
    TanhOp for burn::nn::Tanh, name "tanh", onnx "Tanh",
    forward |t| burn::tensor::activation::tanh(t),
    nonnegative |_inputs| false,
    new burn::nn::Tanh
}
