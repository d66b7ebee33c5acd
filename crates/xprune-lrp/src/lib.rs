//! # xprune-lrp
//!
//! Layer-wise Relevance Propagation (LRP) for Burn, matching Zennit's rules and composites.
//!
//! - **Rules** ([`Rule`]): [`Epsilon`], [`ZPlus`], [`AlphaBeta`], [`Gamma`], [`ZBox`],
//!   [`Flat`], [`WSquare`], [`Pass`], [`Norm`], and [`IgnoreBias`] for any of them. A rule is
//!   data (input, weight and bias modifiers grouped into terms, see [`rule`]) over the layer
//!   arithmetic, which each layer kind of `xprune-graph` provides once
//!   ([`LinearMap`](xprune_graph::kind::LinearMap)); users add rules by implementing [`Rule`],
//!   and layer kinds in `xprune-graph`.
//! - **Extension traits on Burn's layers** ([`LinearLrp`], [`Conv2dLrp`], [`BatchNormLrp`],
//!   [`AvgPool2dLrp`], [`AdaptiveAvgPool2dLrp`], [`MaxPool2dLrp`], [`ReluLrp`], and
//!   [`sum_relevance`] / [`concat_relevance`]): a hand-written Burn model propagates relevance
//!   layer by layer. No autodiff: each layer is one forward pass with modified weights and one
//!   transposed operation, on any backend.
//! - **Composites** ([`Composite`]): Zennit's `epsilon-plus`, `epsilon-plus-flat`,
//!   `epsilon-gamma-box`, `epsilon-alpha2-beta1`, `epsilon-alpha2-beta1-flat`, plus `epsilon`,
//!   and user composites by class of layer ([`RuleClass`]), kind name and node name.
//! - **Canonizer** ([`canonize`]): batch norms folded into the layer before them.
//! - **Attribution** ([`Attributor`], [`attribute`]) over an xprune [`Graph`](xprune_graph::Graph),
//!   with the relevance at the input and at every node.
//! - **Heatmaps** ([`heatmap`]): PNG rendering with a diverging colour map.
//!
//! ```no_run
//! # use xprune_graph::burn::tensor::{Device, Distribution, Tensor};
//! # use xprune_graph::{Conv2dSpec, FeatureShape, GraphBuilder};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let device = Device::flex();
//! # let mut b = GraphBuilder::new(FeatureShape::spatial(3, 8, 8), &device);
//! # let x = b.input();
//! # let x = b.conv2d("conv1", x, Conv2dSpec::new(8, 3).padding(1))?;
//! # let x = b.relu("relu1", x)?;
//! # let x = b.conv2d("layer1.0.conv1", x, Conv2dSpec::new(8, 3).padding(1))?;
//! # let x = b.relu("relu2", x)?;
//! # let x = b.global_avg_pool("gap", x)?;
//! # let x = b.flatten("flat", x)?;
//! # let out = b.linear("fc", x, 4)?;
//! # let graph = b.build(out)?;
//! # let images = Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device);
//! # let labels = Tensor::<1, burn::tensor::Int>::from_ints([0, 2], &device);
//! use xprune_lrp::{Attributor, Composite, Target};
//!
//! let composite = Composite::named("epsilon-plus-flat")?;
//! let attributor = Attributor::new(&graph, &composite)?;
//! let attribution = attributor.attribute(images, Target::Labels(labels))?;
//! let per_channel = attribution.channel_relevance(graph.find("layer1.0.conv1")?);
//! xprune_lrp::heatmap::save_png(attribution.input.as_spatial().unwrap(), 0, "heatmap.png")?;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod attribute;
mod canonize;
mod composite;
pub mod engine;
mod error;
pub mod heatmap;
pub mod layers;
mod modifier;
pub mod rule;
mod rules;

pub use attribute::{Attribution, Attributor, Target, attribute};
pub use canonize::{canonize, foldable_batch_norms};
pub use composite::{COMPOSITE_NAMES, Composite, LayerKind, rule_class};
pub use engine::{Hints, modified_params, propagate, stabilize};
pub use error::{LrpError, Result};
pub use layers::{
    AdaptiveAvgPool2dLrp, AffineChannels, AvgPool2dLrp, BatchNormLrp, Conv2dLrp, LinearLrp,
    MaxPool2dLrp, ReluLrp, concat_relevance, sum_relevance,
};
pub use modifier::{Bound, CustomMod, ElementwiseFn, InputMod, ParamMod};
pub use rule::{DEFAULT_STABILIZER, Gate, Group, Propagation, Rule, SharedRule, Term};
pub use rules::{
    AlphaBeta, Epsilon, Flat, Gamma, IgnoreBias, Norm, Pass, RuleExt, Stabilized, WSquare, ZBox,
    ZPlus,
};
pub use xprune_graph::RuleClass;

/// Everything needed to propagate relevance through a hand-written Burn model.
pub mod prelude {
    pub use crate::{
        AdaptiveAvgPool2dLrp, AlphaBeta, AvgPool2dLrp, BatchNormLrp, Conv2dLrp, Epsilon, Flat,
        Gamma, LinearLrp, MaxPool2dLrp, Norm, Pass, ReluLrp, Rule, RuleExt, WSquare, ZBox, ZPlus,
        concat_relevance, sum_relevance,
    };
}
