//! The workspace integration tests: one binary, one module per topic under
//! `tests/integration/`. Shared helpers live in the `xprune-tests` library (`src/lib.rs`).

#[path = "integration/backends.rs"]
mod backends;

#[path = "integration/readme.rs"]
mod readme;

#[path = "integration/explain_backends.rs"]
mod explain_backends;

#[path = "integration/zoo.rs"]
mod zoo;

#[path = "integration/modules.rs"]
mod modules;

#[path = "integration/fuzz_readers.rs"]
mod fuzz_readers;

#[path = "integration/digits.rs"]
mod digits;

#[path = "integration/isp.rs"]
mod isp;

#[path = "integration/devices.rs"]
mod devices;

#[path = "integration/transformers.rs"]
mod transformers;
