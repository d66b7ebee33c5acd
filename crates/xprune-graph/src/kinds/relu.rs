//! `relu`: Burn's rectified linear unit (`burn::nn::Relu`).

activation_kind! {
    /// Hyper-parameters of a ReLU (none).
    ReluOp for burn::nn::Relu, name "relu", onnx "Relu",
    forward |t| burn::tensor::activation::relu(t),
    nonnegative |_inputs| true,
    new burn::nn::Relu
}
