//! The names of the built-in criteria: the one place they are spelled. The criteria report
//! them (LRP adds its composite, `lrp[...]`) and the command line tool looks criteria up by
//! them.

/// [`WeightNorm::l1`](crate::WeightNorm::l1).
pub const L1: &str = "l1";
/// [`WeightNorm::l2`](crate::WeightNorm::l2).
pub const L2: &str = "l2";
/// [`Gradient`](crate::Gradient) with the absolute value per sample (the default).
pub const GRADIENT: &str = "gradient";
/// [`Gradient::batch`](crate::Gradient::batch): the absolute value of the batch mean.
pub const GRADIENT_BATCH: &str = "gradient-batch";
/// [`Taylor`](crate::Taylor) with the absolute value per sample (the default, Molchanov et
/// al. 2017).
pub const TAYLOR: &str = "taylor";
/// [`Taylor::batch`](crate::Taylor::batch): the absolute value of the batch mean.
pub const TAYLOR_BATCH: &str = "taylor-batch";
/// [`LrpCriterion`](crate::LrpCriterion) with signed aggregation.
pub const LRP: &str = "lrp";
/// [`LrpCriterion`](crate::LrpCriterion) with absolute aggregation.
pub const LRP_ABS: &str = "lrp-abs";
/// [`FeatureRelevance`](crate::FeatureRelevance).
pub const FRS: &str = "frs";
/// [`Shapley`](crate::Shapley).
pub const SHAPLEY: &str = "shapley";
/// Interpretations-steered pruning (the `xprune-isp` crate's `Isp`): learned channel gates.
pub const ISP: &str = "isp";
/// [`RandomCriterion`](crate::RandomCriterion).
pub const RANDOM: &str = "random";

/// Every name above, in the order tools list them.
pub const ALL: [&str; 12] = [
    L1,
    L2,
    GRADIENT,
    GRADIENT_BATCH,
    TAYLOR,
    TAYLOR_BATCH,
    LRP,
    LRP_ABS,
    FRS,
    SHAPLEY,
    ISP,
    RANDOM,
];
