//! `sigmoid`: Burn's logistic sigmoid (`burn::nn::Sigmoid`), as in squeeze-and-excitation
//! gates.

activation_kind! {
    /// Hyper-parameters of a sigmoid (none).
    SigmoidOp for burn::nn::Sigmoid, name "sigmoid", onnx "Sigmoid",
    forward |t| burn::tensor::activation::sigmoid(t),
    nonnegative |_inputs| true,
    new burn::nn::Sigmoid
}
