//! `identity`: Burn's identity (`burn::nn::Identity`).

activation_kind! {
    /// Hyper-parameters of an identity (none).
    IdentityOp for burn::nn::Identity, name "identity", onnx "Identity",
    forward |t| t,
    nonnegative |inputs| crate::kinds::util::all(inputs),
    new burn::nn::Identity
}
