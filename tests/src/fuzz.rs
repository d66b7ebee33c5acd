//! The file readers under fuzzing, and seeded mutations of their fixtures.
//!
//! The same [`read`] entry points serve the `cargo fuzz` targets in `fuzz/` (nightly, open
//! ended) and the bounded stable-toolchain test `tests/integration/fuzz_readers.rs`, which
//! feeds every reader a few thousand deterministic mutations of the committed fixtures
//! ([`mutations`]) and checks that each returns `Ok` or `Err`: no panic, abort or hang.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::path::Path;
use xprune::Graph;
use xprune::burn::tensor::Device;
use xprune::io::data::{npy, npz};
use xprune::io::onnx::import_onnx_bytes;

/// A file reader of xprune.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    /// ONNX models (`import_onnx_bytes`).
    Onnx,
    /// NumPy `.npy` arrays (`npy::parse`).
    Npy,
    /// NumPy `.npz` archives (`npz::parse`).
    Npz,
    /// xprune graph files, safetensors with the structure in the metadata
    /// (`Graph::from_safetensors`).
    Graph,
}

impl Reader {
    /// Every reader.
    pub const ALL: [Reader; 4] = [Reader::Onnx, Reader::Npy, Reader::Npz, Reader::Graph];

    /// The reader of a fixture, by its extension (`.safetensors` files are graph files).
    pub fn of(path: &Path) -> Option<Reader> {
        match path.extension()?.to_str()? {
            "onnx" => Some(Reader::Onnx),
            "npy" => Some(Reader::Npy),
            "npz" => Some(Reader::Npz),
            "safetensors" => Some(Reader::Graph),
            _ => None,
        }
    }
}

/// Runs `reader` on `bytes` (models on the flex device); `Err` holds the reader's error.
pub fn read(reader: Reader, bytes: &[u8]) -> Result<(), String> {
    let label = Path::new("fuzz-input");
    match reader {
        Reader::Onnx => import_onnx_bytes(bytes, &Device::flex())
            .map(drop)
            .map_err(|e| e.to_string()),
        Reader::Npy => npy::parse(bytes, label)
            .map(drop)
            .map_err(|e| e.to_string()),
        Reader::Npz => npz::parse(bytes, label)
            .map(drop)
            .map_err(|e| e.to_string()),
        Reader::Graph => Graph::from_safetensors(bytes, label, &Device::flex())
            .map(drop)
            .map_err(|e| e.to_string()),
    }
}

/// Values written over length and size fields: each is far beyond any real file.
const HUGE: [u64; 6] = [
    u64::MAX,
    i64::MAX as u64,
    u32::MAX as u64,
    i32::MAX as u64,
    1 << 40,
    108_000_000_000,
];

/// Decimal numbers written over numbers of text headers (npy header dictionaries,
/// safetensors JSON): shapes, offsets and sizes that are huge but may stay consistent.
const HUGE_TEXT: [&str; 5] = [
    "18446744073709551615",
    "4294967296",
    "13500000000",
    "99999999999999999999999",
    "-1",
];

/// One mutation of `bytes` chosen by `rng`, with a description (offsets and values) that
/// identifies it in a failure message.
fn mutate(bytes: &[u8], rng: &mut StdRng) -> (String, Vec<u8>) {
    let mut out = bytes.to_vec();
    let len = out.len().max(1);
    match rng.random_range(0..6u32) {
        0 => {
            let flips = rng.random_range(1..=8usize);
            let mut at = Vec::new();
            for _ in 0..flips {
                if out.is_empty() {
                    break;
                }
                let i = rng.random_range(0..out.len());
                let bit = rng.random_range(0..8u32);
                out[i] ^= 1 << bit;
                at.push(format!("{i}.{bit}"));
            }
            (format!("bit flips at {}", at.join(",")), out)
        }
        1 => {
            let keep = rng.random_range(0..len);
            out.truncate(keep);
            (format!("truncated to {keep} bytes"), out)
        }
        2 => {
            let at = rng.random_range(0..=out.len());
            let n = rng.random_range(1..=64usize);
            let inserted: Vec<u8> = (0..n).map(|_| rng.random::<u8>()).collect();
            out.splice(at..at, inserted);
            (format!("{n} random bytes inserted at {at}"), out)
        }
        3 => {
            // A length field set huge: 4 or 8 little-endian bytes, often at the start where
            // the formats keep their header lengths.
            let width = if rng.random::<bool>() { 8 } else { 4 };
            let value = HUGE[rng.random_range(0..HUGE.len())];
            let at = if rng.random::<bool>() {
                rng.random_range(0..16usize.min(len))
            } else {
                rng.random_range(0..len)
            };
            let le = value.to_le_bytes();
            for k in 0..width {
                if let Some(b) = out.get_mut(at + k) {
                    *b = le[k];
                }
            }
            (format!("{width}-byte field at {at} set to {value:#x}"), out)
        }
        4 => {
            // A protobuf varint (ONNX) made huge: ten 0xff bytes then 0x01.
            let at = rng.random_range(0..len);
            let end = (at + rng.random_range(1..=10usize)).min(out.len());
            let varint = [0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
            out.splice(at.min(out.len())..end, varint);
            (format!("varint 2^64-1 written over {at}..{end}"), out)
        }
        _ => {
            // A number of a text header replaced by a huge one.
            let digits: Vec<usize> = (0..out.len().min(4096))
                .filter(|&i| out[i].is_ascii_digit() && (i == 0 || !out[i - 1].is_ascii_digit()))
                .collect();
            if digits.is_empty() {
                let i = rng.random_range(0..len).min(out.len().saturating_sub(1));
                if let Some(b) = out.get_mut(i) {
                    *b = !*b;
                }
                return (format!("byte {i} inverted"), out);
            }
            let start = digits[rng.random_range(0..digits.len())];
            let mut end = start;
            while end < out.len() && out[end].is_ascii_digit() {
                end += 1;
            }
            let value = HUGE_TEXT[rng.random_range(0..HUGE_TEXT.len())];
            out.splice(start..end, value.bytes());
            (format!("number at {start}..{end} set to {value}"), out)
        }
    }
}

/// `count` mutations of `bytes` from `seed`, each possibly of a previous one (stacked), with
/// descriptions: the same seed gives the same inputs on every machine.
pub fn mutations(bytes: &[u8], seed: u64, count: usize) -> Vec<(String, Vec<u8>)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out: Vec<(String, Vec<u8>)> = Vec::with_capacity(count);
    for _ in 0..count {
        let stack = !out.is_empty() && rng.random_range(0..4u32) == 0;
        let (base_name, base) = if stack {
            let (n, b) = &out[rng.random_range(0..out.len())];
            (format!("{n}; "), b.clone())
        } else {
            (String::new(), bytes.to_vec())
        };
        let (name, mutated) = mutate(&base, &mut rng);
        out.push((format!("{base_name}{name}"), mutated));
    }
    out
}
