//! Bounded fuzzing of every file reader on the stable toolchain: seeded mutations of the
//! committed fixtures (bit flips, truncations, inserted bytes, length fields and header
//! numbers set huge; see `xprune_tests::fuzz`) must each give `Ok` or `Err`, never a panic
//! (caught here), an abort (the process would die) or a hang (a watchdog fails the test).
//! The same readers are `cargo fuzz` targets in `fuzz/` for open-ended runs on nightly.
//! Inputs that once failed are kept as regression tests below.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use xprune::burn::tensor::Device;
use xprune::{Conv2dSpec, FeatureShape, Graph, GraphBuilder};
use xprune_tests::fuzz::{Reader, mutations, read};

/// Mutations per fixture (about a second in all on two cores).
const PER_FIXTURE: usize = 400;

/// The longest the whole run may take before it counts as a hang.
const WATCHDOG: Duration = Duration::from_secs(300);

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The fuzzed fixtures: every data file, the small ONNX models (the large ones only make the
/// run slower) and the graph files.
fn fixtures() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["data", "onnx", "ops", "graph", "vit"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| Reader::of(p).is_some())
            .filter(|p| dir == "graph" || Reader::of(p) != Some(Reader::Graph))
            .filter(|p| std::fs::metadata(p).unwrap().len() <= 64 * 1024)
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

/// The graph file fixture: a small CNN with every parameter role (conv, batch norm, linear).
fn small_cnn() -> Graph {
    let mut b = GraphBuilder::new(FeatureShape::spatial(2, 6, 6), &Device::flex()).seed(5);
    let x = b.input();
    let x = b
        .conv2d("conv", x, Conv2dSpec::new(3, 3).padding(1))
        .unwrap();
    let x = b.batch_norm("bn", x).unwrap();
    let x = b.relu("relu", x).unwrap();
    let x = b.max_pool2d("pool", x, 2, 2).unwrap();
    let x = b.flatten("flatten", x).unwrap();
    let out = b.linear("fc", x, 4).unwrap();
    b.build(out).unwrap()
}

#[test]
fn the_graph_fixture_is_current() {
    // `XPRUNE_WRITE_FIXTURES=1` rewrites it; otherwise the committed file must be what
    // `small_cnn` saves, byte for byte.
    let path = fixtures_dir().join("graph/small_cnn.safetensors");
    let dir = tempfile_dir();
    let fresh = dir.join("small_cnn.safetensors");
    small_cnn().save(&fresh).unwrap();
    let fresh = std::fs::read(&fresh).unwrap();
    if std::env::var("XPRUNE_WRITE_FIXTURES").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &fresh).unwrap();
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        fresh,
        "{} is stale",
        path.display()
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xprune-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The name of the thread that runs the readers; its panics are caught and reported, not
/// printed by the panic hook.
const WORKER: &str = "fuzz-readers";

/// Runs `reader` on `bytes`: whether it read them without error, or a message naming the
/// input if it panicked.
fn survives(reader: Reader, bytes: &[u8], what: &str) -> Result<bool, String> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(reader, bytes)));
    match outcome {
        Ok(r) => Ok(r.is_ok()),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("{reader:?} panicked on {what}: {message}"))
        }
    }
}

#[test]
fn every_reader_survives_mutated_fixtures() {
    let files = fixtures();
    assert!(
        Reader::ALL
            .iter()
            .all(|r| files.iter().any(|f| Reader::of(f) == Some(*r))),
        "a reader has no fixture: {files:?}"
    );
    let (done, finished) = mpsc::channel();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() != Some(WORKER) {
            default_hook(info);
        }
    }));
    let worker = std::thread::Builder::new()
        .name(WORKER.into())
        .spawn(move || {
            let start = Instant::now();
            let mut failures = Vec::new();
            let mut runs = 0usize;
            let mut accepted = 0usize;
            for (k, file) in files.iter().enumerate() {
                let reader = Reader::of(file).unwrap();
                let bytes = std::fs::read(file).unwrap();
                let name = file.file_name().unwrap().to_string_lossy().to_string();
                // The fixture itself must read (except the deliberately bad ONNX files and
                // the Fortran-order array, which the npy reader rejects by design), so the
                // mutations start from inputs the reader accepts.
                let expected_ok = !(name.starts_with("bad_") || name == "fortran_f4.npy");
                match survives(reader, &bytes, &name) {
                    Ok(ok) if ok == expected_ok => {}
                    Ok(ok) => failures.push(format!("{name} itself: read without error {ok}")),
                    Err(e) => failures.push(e),
                }
                // Its mutations, seeded by the fixture's position.
                for (what, input) in mutations(&bytes, 0x5eed + k as u64, PER_FIXTURE) {
                    runs += 1;
                    match survives(reader, &input, &format!("{name}: {what}")) {
                        Ok(true) => accepted += 1,
                        Ok(false) => {}
                        Err(e) => failures.push(e),
                    }
                }
            }
            done.send((runs, accepted, start.elapsed(), failures)).ok();
        })
        .unwrap();
    let (runs, accepted, took, failures) = finished
        .recv_timeout(WATCHDOG)
        .unwrap_or_else(|_| panic!("the readers took more than {WATCHDOG:?}: a hang"));
    worker.join().unwrap();
    eprintln!("fuzzed {runs} mutated inputs in {took:.1?}, {accepted} read without error");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
