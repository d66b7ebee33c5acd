//! Tensors by role ([`ParamInfo`]) and the small tensor helpers kinds share (slicing along an
//! axis, parameters from host data).

use burn::module::{Param, RunningState};
use burn::tensor::{Device, Int, Tensor, TensorData};

/// One tensor of a layer, by role.
#[derive(Clone, Debug)]
pub struct ParamInfo {
    /// The role (`weight`, `bias`, `gamma`, `beta`, `running_mean`, `running_var`, ...); the
    /// tensor is stored as `<node>.<role>`.
    pub role: &'static str,
    /// The values.
    pub data: TensorData,
    /// Whether it is trained (a parameter) rather than a statistic (a buffer).
    pub trainable: bool,
    /// The axis that indexes the layer's output channels, if any (weight-norm criteria read
    /// the filter of channel `k` along it).
    pub out_axis: Option<usize>,
}

impl ParamInfo {
    /// A trainable tensor.
    pub fn trainable<const D: usize>(
        role: &'static str,
        t: &Tensor<D>,
        out_axis: Option<usize>,
    ) -> Self {
        Self {
            role,
            data: t.to_data(),
            trainable: true,
            out_axis,
        }
    }

    /// A non-trainable state tensor.
    pub fn buffer<const D: usize>(
        role: &'static str,
        t: &Tensor<D>,
        out_axis: Option<usize>,
    ) -> Self {
        Self {
            role,
            data: t.to_data(),
            trainable: false,
            out_axis,
        }
    }

    /// The dimensions.
    pub fn dims(&self) -> Vec<usize> {
        self.data.shape().as_slice().to_vec()
    }

    /// Number of values.
    pub fn numel(&self) -> usize {
        self.data.shape().as_slice().iter().product()
    }
}

/// `t` restricted to the indices `kept` along `dim`, detached from any autodiff graph.
pub fn select<const D: usize>(t: Tensor<D>, dim: usize, kept: &[usize]) -> Tensor<D> {
    let device = t.device();
    let indices: Vec<i64> = kept.iter().map(|&i| i as i64).collect();
    let indices = Tensor::<1, Int>::from_data(TensorData::new(indices, [kept.len()]), &device);
    t.select(dim, indices).detach()
}

/// A parameter restricted to `kept` along `dim` (a new parameter).
pub fn select_param<const D: usize>(
    p: &Param<Tensor<D>>,
    dim: usize,
    kept: &[usize],
) -> Param<Tensor<D>> {
    Param::from_tensor(select(p.val(), dim, kept))
}

/// A running state restricted to `kept` along `dim` (a new, unshared state).
pub fn select_state<const D: usize>(
    s: &RunningState<Tensor<D>>,
    dim: usize,
    kept: &[usize],
) -> RunningState<Tensor<D>> {
    RunningState::new(select(s.value(), dim, kept))
}

/// A parameter from host data on `device`, checking the rank.
pub fn param_from<const D: usize>(
    data: TensorData,
    device: &Device,
) -> Result<Param<Tensor<D>>, String> {
    let rank = data.shape().as_slice().len();
    if rank != D {
        return Err(format!("expected a rank-{D} tensor, got rank {rank}"));
    }
    Ok(Param::from_tensor(Tensor::from_data(data, device)))
}

/// A running state from host data on `device`, checking the rank.
pub fn state_from<const D: usize>(
    data: TensorData,
    device: &Device,
) -> Result<RunningState<Tensor<D>>, String> {
    let rank = data.shape().as_slice().len();
    if rank != D {
        return Err(format!("expected a rank-{D} tensor, got rank {rank}"));
    }
    Ok(RunningState::new(Tensor::from_data(data, device)))
}

/// A rank-1 parameter from host values.
pub fn vector_param(values: Vec<f32>, device: &Device) -> Param<Tensor<1>> {
    let n = values.len();
    Param::from_tensor(Tensor::from_data(TensorData::new(values, [n]), device))
}

/// A parameter with the given dimensions from host values (the caller checked the length).
pub fn param_with<const D: usize>(
    values: Vec<f32>,
    dims: [usize; D],
    device: &Device,
) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(values, dims), device))
}

/// The error for a role a kind does not have.
pub fn unknown_role(kind: &str, role: &str) -> String {
    format!("a {kind} layer has no tensor `{role}`")
}
