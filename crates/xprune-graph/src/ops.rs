//! The parameter-free node types that Burn does not provide as modules.

use burn::module::Module;

/// The graph input: passes the batch given to `forward` on.
#[derive(Module, Debug, Default)]
pub struct Input;

/// Flattens `[batch, C, H, W]` into `[batch, C*H*W]` (channel-major); identity on vectors.
#[derive(Module, Debug, Default)]
pub struct Flatten;

/// Element-wise sum of its inputs (residual connections).
#[derive(Module, Debug, Default)]
pub struct Add;

/// Concatenation of its inputs along the channel dimension.
#[derive(Module, Debug, Default)]
pub struct Concat;
