//! The commands.

mod demo;
mod explain;
mod groups;
mod prune;
mod score;
mod sweep;
mod toy;

use crate::args::{Cli, Command, Global};
use crate::error::Result;
use xprune::Backend;
use xprune::burn::tensor::Device;

/// The device of the `--backend` option.
pub fn device(name: &str) -> Result<Device> {
    let backend: Backend = name.parse()?;
    Ok(backend.device()?)
}

/// The devices of the `--devices` option (empty without it: the model's device alone).
pub fn scoring_devices(g: &Global) -> Result<Vec<Device>> {
    match &g.devices {
        Some(list) => Ok(Backend::devices(list)?),
        None => Ok(Vec::new()),
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    match &cli.command {
        Command::Explain(a) => explain::run(g, a),
        Command::Groups(a) => groups::run(g, a),
        Command::Score(a) => score::run(g, a),
        Command::Prune(a) => prune::run(g, a),
        Command::Sweep(a) => sweep::run(g, a),
        Command::Demo(a) => demo::run(g, a),
        Command::Toy(a) => toy::run(g, a),
    }
}
