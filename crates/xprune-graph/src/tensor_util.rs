//! Small conversions between Burn tensors and host vectors.

use burn::tensor::{Device, Int, Tensor, TensorData};

/// Converts tensor data of any float type to a `Vec<f32>`.
pub fn data_to_f32(data: TensorData) -> Vec<f32> {
    let data = data.convert::<f32>();
    data.try_into_vec::<f32>()
        .expect("tensor data converted to f32 is readable as f32")
}

/// Converts tensor data of any integer type to a `Vec<i64>`.
pub fn data_to_i64(data: TensorData) -> Vec<i64> {
    let data = data.convert::<i64>();
    data.try_into_vec::<i64>()
        .expect("tensor data converted to i64 is readable as i64")
}

/// Copies a float tensor of any rank to the host.
pub fn to_vec<const D: usize>(t: &Tensor<D>) -> Vec<f32> {
    data_to_f32(t.to_data())
}

/// Copies an integer tensor of any rank to the host.
pub fn to_vec_int<const D: usize>(t: &Tensor<D, Int>) -> Vec<i64> {
    data_to_i64(t.to_data())
}

/// Creates a rank-`D` float tensor from host values.
///
/// # Panics
/// If `values.len()` is not the product of `dims`; callers check sizes first.
pub fn tensor<const D: usize>(values: Vec<f32>, dims: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, dims), device)
}

/// Creates a rank-1 integer tensor from host values.
pub fn int_tensor(values: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// `z + eps * sign0(z)` with `sign0(0) = 1`: the stabilised denominator of LRP's rules
/// (Zennit's stabiliser), computed without a branch per element (a select on mixed signs is
/// several times slower on CPU backends): `eps * sign0(z) = 2 eps [z >= 0] - eps`, both steps
/// exact in `f32`, so the result is `z + eps` or `z - eps` exactly.
pub fn stabilize<const D: usize>(z: Tensor<D>, epsilon: f64) -> Tensor<D> {
    if epsilon == 0.0 {
        return z;
    }
    let shift = z
        .clone()
        .greater_equal_elem(0.0)
        .float()
        .mul_scalar(2.0 * epsilon)
        .sub_scalar(epsilon);
    z + shift
}
