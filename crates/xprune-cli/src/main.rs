//! The `xprune` command-line tool.
//!
//! Explain, list channel groups, score, prune and sweep models given as ONNX or xprune
//! safetensors files, with data as `.npz` (`x` float32, `y` int64) or `.npy`; `demo` runs the
//! whole pipeline on the embedded synthetic image set and `toy` reproduces the toy experiment
//! of "Pruning by Explaining". Errors print one line and exit with status 1.
#![warn(missing_docs)]

mod args;
mod cmd;
mod csv;
mod error;
mod load;
mod plot;
mod progress;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Pruned models run faster on CPU backends when freed memory is reused (xprune::malloc).
    xprune::malloc::keep_freed_memory();
    let cli = args::Cli::parse();
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
