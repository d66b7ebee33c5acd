//! Tests of groups, surgery, mask mode and counts against independent references: masked
//! versus pruned outputs, hand-written parameter and MAC formulas, and hand-checked group
//! structures.

mod backends;
mod counts;
mod equivalence;
mod errors;
mod groups;
mod nets;
mod util;
