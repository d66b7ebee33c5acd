//! A path-keyed [`ModuleMapper`] that replaces tensors of a user's module.

use super::ModuleError;
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Tensor, TensorData};
use std::collections::HashMap;

/// Replaces the tensors at the given module paths by the given values (any shape, same
/// rank), keeping each parameter's id and whether it requires gradients.
struct Replace {
    values: HashMap<String, TensorData>,
    path: Vec<String>,
    failed: Option<String>,
}

impl ModuleMapper for Replace {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.path.join(".");
        let Some(data) = self.values.remove(&path) else {
            return param;
        };
        let rank = data.shape().num_dims();
        if rank != D {
            self.failed.get_or_insert_with(|| {
                format!("`{path}` has rank {D}, the replacement has rank {rank}")
            });
            return param;
        }
        let (id, tensor, mapper) = param.consume();
        let device = tensor.device();
        let grad = tensor.is_require_grad();
        let replaced = Tensor::<D>::from_data(data, &device).set_require_grad(grad);
        Param::from_mapped_value(id, replaced, mapper)
    }
}

/// A copy of `module` with the tensors at the paths of `values` replaced.
///
/// The copy is taken with `valid()`, which gives it running statistics of its own (Burn's
/// `RunningState` shares its value between clones, and mapping it writes through): the
/// original module is never changed.
pub(crate) fn replace<M: Module>(
    module: &M,
    values: HashMap<String, TensorData>,
) -> Result<M, ModuleError> {
    let mut mapper = Replace {
        values,
        path: Vec::new(),
        failed: None,
    };
    let out = module.valid().map(&mut mapper);
    if let Some(why) = mapper.failed {
        return Err(ModuleError::Mismatch(why));
    }
    if let Some(path) = mapper.values.keys().next() {
        return Err(ModuleError::Mismatch(format!(
            "the module has no tensor `{path}`"
        )));
    }
    Ok(out)
}
