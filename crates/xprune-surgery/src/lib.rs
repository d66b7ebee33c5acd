//! xprune-surgery (see the crate description).
#![warn(missing_docs)]
