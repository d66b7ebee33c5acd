//! The layer arithmetic and extension traits per layer kind.

mod batch_norm;
mod conv;
mod linear;
mod max_pool;
mod passthrough;
mod pool;
mod sum;

pub use batch_norm::{AffineChannels, BatchNormLrp};
pub use conv::Conv2dLrp;
pub use linear::LinearLrp;
pub use max_pool::MaxPool2dLrp;
pub use passthrough::{ReluLrp, concat_relevance};
pub use pool::{AdaptiveAvgPool2dLrp, AvgPool2dLrp};
pub use sum::{Sum, sum_relevance};

pub(crate) use conv::{CachedConv, ConvParamCache};
pub(crate) use max_pool::max_pool_relevance;
pub(crate) use sum::sum_relevance_with;
