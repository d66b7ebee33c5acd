//! Pruning procedures: selection of channels from scores, and the [`Pruner`] that runs a
//! criterion, selects, removes channels and optionally fine-tunes: one-shot, iteratively, or gradually while training.

mod error;
mod estimate;
mod pruner;
mod selection;

pub use error::{PruneError, Result};
pub use estimate::counts_after;
pub use pruner::{GradualOutcome, GradualSchedule, PruneOutcome, PruneProgress, PruneStep, Pruner};
pub use selection::{
    FRACTION_TOLERANCE, Normalization, PruneTarget, Scope, Selection, fraction_of, select,
};

#[cfg(test)]
mod tests;
