//! `.npy` parsing of arbitrary bytes must return `Ok` or `Err`, never panic or abort.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = xprune::io::data::npy::parse(data, std::path::Path::new("fuzz.npy"));
});
