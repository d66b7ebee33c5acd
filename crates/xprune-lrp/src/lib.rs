//! xprune-lrp (see the crate description).
#![warn(missing_docs)]
