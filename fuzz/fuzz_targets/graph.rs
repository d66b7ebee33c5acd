//! Loading an xprune graph file (safetensors with the structure in its metadata) from
//! arbitrary bytes must return `Ok` or `Err`, never panic, abort or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xprune::burn::tensor::Device;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.safetensors");
    let _ = xprune::Graph::from_safetensors(data, path, &Device::flex());
});
