//! Build-cache helper of the xprune workspace (not published), and the wgpu probe of the
//! tests ([`wgpu`]).
//!
//! Cargo resolves dependency features per build: `cargo test -p xprune-graph` alone would
//! enable fewer features of shared dependencies than `cargo test --workspace`, and so compile
//! Burn's whole stack a second time. Every crate of the workspace lists this crate as a
//! dev-dependency; it depends on the union of the workspace's external dependencies, so
//! every test build resolves the same features and shares one build.
#![warn(missing_docs)]

pub mod wgpu;
