//! Shared harness of the xprune benchmarks: backend selection from the command line or the
//! environment, synchronised timing with medians, and aligned result tables.
//!
//! Every benchmark binary accepts `--backend NAME` (repeatable, or `all`), `--quick` (fewer
//! repetitions) and reads `XPRUNE_BENCH_BACKENDS` (comma-separated) when no flag is given.
#![warn(missing_docs)]

use std::time::{Duration, Instant};
use xprune::Backend;
use xprune::burn::tensor::Device;

/// Options common to all benchmark binaries.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Backends to run on.
    pub backends: Vec<Backend>,
    /// Fewer warm-up runs and repetitions.
    pub quick: bool,
    /// Remaining (benchmark-specific) arguments.
    pub rest: Vec<String>,
}

impl BenchOptions {
    /// Parses `std::env::args()`; exits with a message on a bad backend name.
    pub fn from_args() -> Self {
        // As the `xprune` command does, unless XPRUNE_SYSTEM_MALLOC is set (to measure what it
        // changes); `machine_line` says which.
        if std::env::var_os("XPRUNE_SYSTEM_MALLOC").is_none() {
            xprune::malloc::keep_freed_memory();
        }
        let mut backends = Vec::new();
        let mut quick = false;
        let mut rest = Vec::new();
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--backend" | "-b" => {
                    let v = args.next().unwrap_or_default();
                    backends.extend(parse_backends(&v));
                }
                "--quick" => quick = true,
                // Arguments cargo bench passes to every harness.
                "--bench" => {}
                _ => rest.push(a),
            }
        }
        if backends.is_empty() {
            let env = std::env::var("XPRUNE_BENCH_BACKENDS").unwrap_or_else(|_| "flex".into());
            backends = parse_backends(&env);
        }
        Self {
            backends,
            quick,
            rest,
        }
    }

    /// Warm-up runs and timed repetitions.
    pub fn reps(&self) -> (usize, usize) {
        if self.quick { (1, 3) } else { (2, 7) }
    }
}

fn parse_backends(spec: &str) -> Vec<Backend> {
    if spec.trim() == "all" {
        return Backend::compiled();
    }
    spec.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| match s.parse::<Backend>() {
            Ok(b) if b.is_compiled() => b,
            Ok(b) => {
                eprintln!("backend {b} is not compiled into the benchmarks");
                std::process::exit(2)
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2)
            }
        })
        .collect()
}

/// The device of a backend, exiting with a clear message if it cannot be created.
pub fn device(backend: Backend) -> Device {
    match backend.device() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2)
        }
    }
}

/// Timing statistics of repeated runs.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Median duration.
    pub median: Duration,
    /// Fastest run.
    pub min: Duration,
    /// Slowest run.
    pub max: Duration,
}

impl Timing {
    /// Median in milliseconds.
    pub fn ms(&self) -> f64 {
        self.median.as_secs_f64() * 1e3
    }
}

/// Runs `f` `warmup` times, then `reps` times, synchronising `device` before reading each
/// timer, and returns the median, min and max.
pub fn time(device: &Device, warmup: usize, reps: usize, mut f: impl FnMut()) -> Timing {
    for _ in 0..warmup {
        f();
        device.sync().expect("device sync");
    }
    let mut samples = Vec::with_capacity(reps.max(1));
    for _ in 0..reps.max(1) {
        device.sync().expect("device sync");
        let t = Instant::now();
        f();
        device.sync().expect("device sync");
        samples.push(t.elapsed());
    }
    samples.sort();
    Timing {
        median: samples[samples.len() / 2],
        min: samples[0],
        max: *samples.last().expect("at least one sample"),
    }
}

/// A table printed with aligned columns (and as Markdown with [`Table::markdown`]).
#[derive(Clone, Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as GitHub Markdown.
    pub fn markdown(&self) -> String {
        let mut out = format!("| {} |\n", self.header.join(" | "));
        out.push_str(&format!("|{}\n", "---|".repeat(self.header.len())));
        for r in &self.rows {
            out.push_str(&format!("| {} |\n", r.join(" | ")));
        }
        out
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cols = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.len()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(c.len());
            }
        }
        let line = |cells: &[String]| {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{:<w$}", c, w = widths[i]))
                .collect::<Vec<_>>()
                .join("  ")
        };
        writeln!(f, "{}", line(&self.header))?;
        writeln!(
            f,
            "{}",
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  ")
        )?;
        for r in &self.rows {
            writeln!(f, "{}", line(r))?;
        }
        Ok(())
    }
}

/// Machine description for result tables: CPU model, logical cores and the date.
pub fn machine_line() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let malloc = if std::env::var_os("XPRUNE_SYSTEM_MALLOC").is_some() {
        "system malloc settings"
    } else {
        "freed memory kept (xprune::malloc)"
    };
    format!("{cpu}, {cores} logical cores, {malloc}")
}

/// The display name of a model of the speed benchmarks (`surgery`, `latency`) from its
/// `--models` key (`resnet56`, `vgg16bn`); exits with a message for any other key.
pub fn speed_model_name(key: &str) -> &'static str {
    match key.trim() {
        "resnet56" => "ResNet-56",
        "vgg16bn" => "VGG-16-BN",
        other => {
            eprintln!("unknown model {other} (resnet56, vgg16bn)");
            std::process::exit(2)
        }
    }
}

/// A model of the speed benchmarks by display name: ResNet-56 or VGG-16-BN with CIFAR shapes
/// (3x32x32 inputs, 10 classes), weights of seed 1, every channel count scaled by `width`.
pub fn speed_model(name: &str, width: f32, device: &Device) -> xprune::Graph {
    use xprune::models::{ResNetCifarDepth, VggDepth, resnet_cifar, vgg};
    let cifar = xprune::graph::FeatureShape::spatial(3, 32, 32);
    match name {
        "ResNet-56" => resnet_cifar(ResNetCifarDepth::ResNet56, cifar, 10, width, device, 1),
        "VGG-16-BN" => vgg(VggDepth::Vgg16, true, cifar, 10, width, device, 1),
        other => panic!("{other} is not a speed benchmark model (see speed_model_name)"),
    }
    .expect("reference model builds")
}
