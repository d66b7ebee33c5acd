//! xprune-criteria (see the crate description).
#![warn(missing_docs)]
