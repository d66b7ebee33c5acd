//! ONNX import of arbitrary bytes must return `Ok` or `Err`, never panic or abort.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xprune::burn::tensor::Device;

fuzz_target!(|data: &[u8]| {
    let _ = xprune::io::onnx::import_onnx_bytes(data, &Device::flex());
});
