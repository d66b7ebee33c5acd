//! Tests of the data loaders, writers, generators and transforms.
//!
//! NumPy files come from `tests/fixtures/data/make_fixtures.py` (committed outputs); MNIST
//! and CIFAR-10 files are written here byte by byte, following the format descriptions.

use super::*;
use std::io::Write;
use std::path::PathBuf;
use xprune_graph::FeatureShape;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/data")
        .join(name)
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// Asserts that `err`'s message names the file `name` and contains every `part`.
fn assert_err(err: DataError, name: &str, parts: &[&str]) {
    let msg = err.to_string();
    assert!(msg.contains(name), "error does not name `{name}`: {msg}");
    for p in parts {
        assert!(msg.contains(p), "error lacks `{p}`: {msg}");
    }
}

// ---------------------------------------------------------------------------------- npy

#[test]
fn npy_reads_numpy_files_of_every_dtype() {
    let a = npy::read(fixture("f32_2x3.npy")).unwrap();
    assert_eq!(a.shape(), &[2, 3]);
    assert_eq!(
        a.data(),
        &ArrayData::F32(vec![-1.0, -0.5, 0.0, 0.5, 1.0, 1.5])
    );
    assert_eq!(npy::read(fixture("v2_f4.npy")).unwrap(), a);
    let a = npy::read(fixture("f64_3.npy")).unwrap();
    assert_eq!(a.data(), &ArrayData::F64(vec![1.5, -2.25, 1e-3]));
    assert_eq!(a.to_f32(), vec![1.5, -2.25, 1e-3f32]);
    let a = npy::read(fixture("i64_4.npy")).unwrap();
    assert_eq!(a.to_i64().unwrap(), vec![0, -1, 1 << 40, 3]);
    let a = npy::read(fixture("i32_2x2.npy")).unwrap();
    assert_eq!((a.shape(), a.dtype()), (&[2usize, 2][..], Dtype::I32));
    assert_eq!(a.to_i64().unwrap(), vec![1, -2, 3, 1 << 30]);
    let a = npy::read(fixture("u8_5.npy")).unwrap();
    assert_eq!(a.data(), &ArrayData::U8(vec![0, 1, 127, 128, 255]));
    let a = npy::read(fixture("be_i4.npy")).unwrap();
    assert_eq!(a.data(), &ArrayData::I32(vec![7, -3, 65536]));
    let a = npy::read(fixture("scalar_i8.npy")).unwrap();
    assert_eq!((a.shape().len(), a.to_i64().unwrap()), (0, vec![7]));
    assert!(
        npy::read(fixture("f32_2x3.npy"))
            .unwrap()
            .to_i64()
            .is_none()
    );
}

#[test]
fn npy_writer_matches_numpy_byte_for_byte() {
    let numpy = std::fs::read(fixture("f32_2x3.npy")).unwrap();
    let a = Array::f32(vec![2, 3], vec![-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]).unwrap();
    assert_eq!(npy::encode(&a), numpy);
    let numpy = std::fs::read(fixture("i64_4.npy")).unwrap();
    let a = Array::i64(vec![4], vec![0, -1, 1 << 40, 3]).unwrap();
    assert_eq!(npy::encode(&a), numpy);
}

#[test]
fn npy_round_trips_through_files() {
    let dir = tmp();
    let arrays = [
        Array::f32(vec![3, 1, 2], vec![0.25, -7.0, 1e-20, f32::MAX, -0.0, 3.5]).unwrap(),
        Array::i64(vec![2, 2], vec![i64::MIN, -1, 0, i64::MAX]).unwrap(),
        Array::new(vec![3], ArrayData::U8(vec![9, 0, 255])).unwrap(),
        Array::new(vec![2], ArrayData::F64(vec![0.1, -1e300])).unwrap(),
        Array::new(vec![2], ArrayData::I16(vec![-300, 300])).unwrap(),
        Array::new(vec![0, 4], ArrayData::F32(vec![])).unwrap(),
    ];
    for (i, a) in arrays.iter().enumerate() {
        let p = dir.path().join(format!("a{i}.npy"));
        npy::write(&p, a).unwrap();
        assert_eq!(&npy::read(&p).unwrap(), a);
    }
    let x = dir.path().join("x.npy");
    let y = dir.path().join("y.npy");
    npy::write(
        &x,
        &Array::f32(vec![3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap(),
    )
    .unwrap();
    npy::write(
        &y,
        &Array::new(vec![3, 1], ArrayData::I32(vec![1, 0, 4])).unwrap(),
    )
    .unwrap();
    let ds = npy::load_dataset(&x, &y).unwrap();
    assert_eq!(ds.sample_shape(), FeatureShape::flat(2));
    assert_eq!((ds.labels(), ds.num_classes()), (&[1i64, 0, 4][..], 5));
    assert_eq!(ds.sample(2), &[5.0, 6.0]);
}

#[test]
fn npy_errors_name_the_file_and_the_problem() {
    let dir = tmp();
    let good = std::fs::read(fixture("f32_2x3.npy")).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let p = write("magic.npy", b"PK\x03\x04 not numpy at all");
    assert_err(
        npy::read(&p).unwrap_err(),
        "magic.npy",
        &["bad magic", "50 4b 03 04"],
    );
    let p = write("short.npy", &good[..8]);
    assert_err(
        npy::read(&p).unwrap_err(),
        "short.npy",
        &["truncated", "preamble"],
    );
    let p = write("header.npy", &good[..60]);
    assert_err(
        npy::read(&p).unwrap_err(),
        "header.npy",
        &["truncated", "118 bytes"],
    );
    let p = write("data.npy", &good[..good.len() - 3]);
    assert_err(
        npy::read(&p).unwrap_err(),
        "data.npy",
        &["truncated", "needs 24 data bytes", "has 21"],
    );
    let mut long = good.clone();
    long.extend_from_slice(&[0, 0]);
    let p = write("long.npy", &long);
    assert_err(
        npy::read(&p).unwrap_err(),
        "long.npy",
        &["2 unexpected bytes"],
    );
    let mut c8 = good.clone();
    c8[22] = b'c'; // '<f4' -> '<c4'
    let p = write("complex.npy", &c8);
    assert_err(
        npy::read(&p).unwrap_err(),
        "complex.npy",
        &["dtype '<c4' is not supported"],
    );
    let mut v9 = good.clone();
    v9[6] = 9;
    let p = write("version.npy", &v9);
    assert_err(npy::read(&p).unwrap_err(), "version.npy", &["version 9.0"]);
    assert_err(
        npy::read(fixture("fortran_f4.npy")).unwrap_err(),
        "fortran_f4.npy",
        &["Fortran"],
    );
    let missing = dir.path().join("missing.npy");
    assert_err(npy::read(&missing).unwrap_err(), "missing.npy", &[]);
    // Float labels are a dtype error naming the labels file.
    let x = dir.path().join("x3.npy");
    npy::write(&x, &Array::f32(vec![3, 2], vec![0.0; 6]).unwrap()).unwrap();
    let y = fixture("f64_3.npy");
    assert_err(
        npy::load_dataset(&x, &y).unwrap_err(),
        "f64_3.npy",
        &["wrong dtype", "float64"],
    );
}

// ---------------------------------------------------------------------------------- npz

#[test]
fn npz_reads_numpy_archives() {
    let ds = npz::load_dataset(fixture("dataset_stored.npz")).unwrap();
    assert_eq!(ds.len(), 6);
    assert_eq!(ds.sample_shape(), FeatureShape::flat(2));
    assert_eq!(ds.num_classes(), 3);
    assert_eq!(ds.labels(), &[0, 1, 2, 1, 0, 2]);
    assert_eq!(ds.sample(5), &[2.5, 2.75]);
    let ds = npz::load_dataset(fixture("dataset_deflated.npz")).unwrap();
    assert_eq!(ds.sample_shape(), FeatureShape::spatial(1, 3, 3));
    assert_eq!((ds.len(), ds.num_classes()), (4, 4));
    assert_eq!(ds.sample(3)[8], 17.0);
    let all = npz::read(fixture("dataset_deflated.npz")).unwrap();
    assert_eq!(all.keys().collect::<Vec<_>>(), vec!["x", "y"]);
    assert_eq!(all["x"].shape(), &[4, 1, 3, 3]);
    assert_err(
        npz::load_dataset(fixture("float_labels.npz")).unwrap_err(),
        "float_labels.npz:y.npy",
        &["wrong dtype", "labels must be integers", "float32"],
    );
    // load_dataset picks the npz loader from the extension.
    assert_eq!(
        load_dataset(fixture("dataset_stored.npz")).unwrap().len(),
        6
    );
}

#[test]
fn npz_round_trips_stored_and_deflated() {
    let dir = tmp();
    let ds = synthetic::mult(40, 4, 0.05, 3).unwrap();
    for (name, c) in [
        ("s.npz", npz::Compression::Stored),
        ("d.npz", npz::Compression::Deflated),
    ] {
        let p = dir.path().join(name);
        npz::write_dataset(&p, &ds, c).unwrap();
        assert_eq!(npz::load_dataset(&p).unwrap(), ds);
    }
    // Deflate actually compresses a redundant array.
    let zeros = Array::f32(vec![1000], vec![0.0; 1000]).unwrap();
    let stored = npz::encode(&[("z", &zeros)], npz::Compression::Stored, Path::new("z")).unwrap();
    let deflated =
        npz::encode(&[("z", &zeros)], npz::Compression::Deflated, Path::new("z")).unwrap();
    assert!(
        deflated.len() * 5 < stored.len(),
        "{} vs {}",
        deflated.len(),
        stored.len()
    );
    // A class count stored with the data survives even when the top class has no sample.
    let first_of = |c: i64| ds.labels().iter().position(|l| *l == c).unwrap();
    let few = ds.subset(&[first_of(0), first_of(1)]).unwrap();
    assert_eq!(few.labels(), &[0, 1]);
    let p = dir.path().join("few.npz");
    npz::write_dataset(&p, &few, npz::Compression::Stored).unwrap();
    assert_eq!(npz::load_dataset(&p).unwrap().num_classes(), 4);
}

#[test]
fn npz_errors_name_the_file_and_the_problem() {
    let dir = tmp();
    let good = std::fs::read(fixture("dataset_deflated.npz")).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let p = write("notzip.npz", b"\x93NUMPY this is an npy");
    assert_err(
        npz::read(&p).unwrap_err(),
        "notzip.npz",
        &["bad magic", "PK"],
    );
    let p = write("cut.npz", &good[..good.len() / 2]);
    assert_err(
        npz::read(&p).unwrap_err(),
        "cut.npz",
        &["not a valid zip archive"],
    );
    // Corrupt the compressed bytes of the first entry (after its 30-byte header and name):
    // inflating fails or the checksum does not match.
    let mut bad = good.clone();
    let name_len = u16::from_le_bytes([bad[26], bad[27]]) as usize;
    let extra_len = u16::from_le_bytes([bad[28], bad[29]]) as usize;
    let start = 30 + name_len + extra_len;
    for b in &mut bad[start + 5..start + 40] {
        *b ^= 0x5a;
    }
    let p = write("corrupt.npz", &bad);
    assert_err(
        npz::read(&p).unwrap_err(),
        "corrupt.npz:x.npy",
        &["corrupt"],
    );
    // Missing keys and mismatched sizes.
    let x = Array::f32(vec![3, 2], vec![0.0; 6]).unwrap();
    let y = Array::i64(vec![2], vec![0, 1]).unwrap();
    let p = dir.path().join("nolabels.npz");
    npz::write(&p, &[("x", &x)], npz::Compression::Stored).unwrap();
    assert_err(
        npz::load_dataset(&p).unwrap_err(),
        "nolabels.npz",
        &["no array `y`", "holds: x"],
    );
    let p = dir.path().join("mismatch.npz");
    npz::write(&p, &[("x", &x), ("y", &y)], npz::Compression::Deflated).unwrap();
    assert_err(
        npz::load_dataset(&p).unwrap_err(),
        "mismatch.npz:y.npy",
        &["2 labels for 3 samples"],
    );
    let neg = Array::i64(vec![3], vec![0, -2, 1]).unwrap();
    let p = dir.path().join("negative.npz");
    npz::write(&p, &[("x", &x), ("y", &neg)], npz::Compression::Stored).unwrap();
    assert_err(
        npz::load_dataset(&p).unwrap_err(),
        "negative.npz:y.npy",
        &["label -2 of sample 1"],
    );
    let x5 = Array::f32(vec![1, 1, 1, 1, 2], vec![0.0; 2]).unwrap();
    let y1 = Array::i64(vec![1], vec![0]).unwrap();
    let p = dir.path().join("rank5.npz");
    npz::write(&p, &[("x", &x5), ("y", &y1)], npz::Compression::Stored).unwrap();
    assert_err(
        npz::load_dataset(&p).unwrap_err(),
        "rank5.npz:x.npy",
        &["shape mismatch", "[1, 1, 1, 1, 2]"],
    );
    let nan = Array::f32(vec![1, 2], vec![0.0, f32::NAN]).unwrap();
    let p = dir.path().join("nan.npz");
    npz::write(&p, &[("x", &nan), ("y", &y1)], npz::Compression::Stored).unwrap();
    assert_err(
        npz::load_dataset(&p).unwrap_err(),
        "nan.npz",
        &["not finite"],
    );
}

// ---------------------------------------------------------------------------------- MNIST

/// The bytes of an IDX file of `uint8` values.
fn idx_u8(dims: &[u32], values: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(values);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn mnist_reads_plain_and_gzipped_idx_files() {
    let dir = tmp();
    let pixels: Vec<u8> = (0..3 * 4 * 5).map(|i| (i * 4) as u8).collect();
    let images = idx_u8(&[3, 4, 5], &pixels);
    let labels = idx_u8(&[3], &[7, 0, 9]);
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), &images).unwrap();
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), &labels).unwrap();
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte.gz"), gzip(&images)).unwrap();
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte.gz"), gzip(&labels)).unwrap();
    let train = mnist::load_dir(dir.path(), Split::Train).unwrap();
    let test = mnist::load_dir(dir.path(), Split::Test).unwrap();
    assert_eq!(train, test);
    assert_eq!(train.sample_shape(), FeatureShape::spatial(1, 4, 5));
    assert_eq!((train.len(), train.num_classes()), (3, 10));
    assert_eq!(train.labels(), &[7, 0, 9]);
    // Pixel (sample 1, row 2, column 3) is value index 20 + 13 = 33 -> byte 132.
    assert_eq!(train.sample(1)[2 * 5 + 3], 132.0 / 255.0);
    // load_dataset finds the labels file next to the images file.
    let by_name = load_dataset(dir.path().join("t10k-images-idx3-ubyte.gz")).unwrap();
    assert_eq!(by_name, train);
    // The generic IDX reader handles other element types (big-endian).
    let mut f32_idx = vec![0, 0, 0x0D, 1, 0, 0, 0, 2];
    f32_idx.extend_from_slice(&1.5f32.to_be_bytes());
    f32_idx.extend_from_slice(&(-2.0f32).to_be_bytes());
    let a = mnist::parse_idx(&f32_idx, Path::new("f.idx")).unwrap();
    assert_eq!(a.data(), &ArrayData::F32(vec![1.5, -2.0]));
}

#[test]
fn mnist_errors_name_the_file_and_the_problem() {
    let dir = tmp();
    let d = dir.path();
    let images = idx_u8(&[2, 2, 2], &[0; 8]);
    let write = |name: &str, bytes: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let img = write("a-images-idx3-ubyte", &images);
    let p = write("magic-labels", &[1, 2, 3, 4, 5]);
    assert_err(
        mnist::load(&img, &p).unwrap_err(),
        "magic-labels",
        &["bad magic", "01 02 03 04"],
    );
    let p = write("cut-images", &images[..images.len() - 1]);
    let lab = write("ok-labels", &idx_u8(&[2], &[1, 2]));
    assert_err(
        mnist::load(&p, &lab).unwrap_err(),
        "cut-images",
        &["truncated", "needs 8", "has 7"],
    );
    let p = write("hdr-images", &images[..9]);
    assert_err(
        mnist::load(&p, &lab).unwrap_err(),
        "hdr-images",
        &["truncated", "header"],
    );
    let p = write("three-labels", &idx_u8(&[3], &[1, 2, 3]));
    assert_err(
        mnist::load(&img, &p).unwrap_err(),
        "three-labels",
        &["3 labels for 2 images"],
    );
    let p = write("big-labels", &idx_u8(&[2], &[1, 10]));
    assert_err(
        mnist::load(&img, &p).unwrap_err(),
        "big-labels",
        &["label 10 of sample 1"],
    );
    let p = write("flat-images", &idx_u8(&[2, 4], &[0; 8]));
    assert_err(
        mnist::load(&p, &lab).unwrap_err(),
        "flat-images",
        &["[n, height, width]"],
    );
    let mut i32_labels = vec![0, 0, 0x0C, 1, 0, 0, 0, 2];
    i32_labels.extend_from_slice(&[0; 8]);
    let p = write("int-labels", &i32_labels);
    assert_err(
        mnist::load(&img, &p).unwrap_err(),
        "int-labels",
        &["wrong dtype", "int32"],
    );
    let mut gz = gzip(&images);
    gz.truncate(gz.len() - 6);
    let p = write("cut-images.gz", &gz);
    assert_err(
        mnist::load(&p, &lab).unwrap_err(),
        "cut-images.gz",
        &["gzip"],
    );
    assert_err(
        mnist::load_dir(d, Split::Test).unwrap_err(),
        "",
        &["t10k-images-idx3-ubyte"],
    );
    // The labels file of an images file keeps or switches the .gz suffix.
    assert_eq!(
        mnist::labels_file_for(Path::new("/x/train-images.idx3-ubyte")).unwrap(),
        Path::new("/x/train-labels.idx1-ubyte")
    );
    assert!(mnist::labels_file_for(Path::new("/x/foo.bin")).is_none());
}

// ---------------------------------------------------------------------------------- CIFAR

/// A CIFAR-10 record whose pixel `(c, y, x)` is `(label * 7 + c * 50 + y + x) % 256`.
fn cifar_record(label: u8) -> Vec<u8> {
    let mut r = vec![label];
    for c in 0..3usize {
        for y in 0..32usize {
            for x in 0..32usize {
                r.push(((label as usize * 7 + c * 50 + y + x) % 256) as u8);
            }
        }
    }
    r
}

#[test]
fn cifar_reads_binary_batches() {
    let dir = tmp();
    let d = dir.path();
    let batch1: Vec<u8> = [3u8, 9].iter().flat_map(|l| cifar_record(*l)).collect();
    let batch2 = cifar_record(0);
    std::fs::write(d.join("data_batch_1.bin"), &batch1).unwrap();
    std::fs::write(d.join("data_batch_2.bin"), &batch2).unwrap();
    std::fs::write(d.join("test_batch.bin"), &batch2).unwrap();
    let train = cifar::load_dir(d, Split::Train).unwrap();
    assert_eq!(train.sample_shape(), FeatureShape::spatial(3, 32, 32));
    assert_eq!((train.len(), train.num_classes()), (3, 10));
    assert_eq!(train.labels(), &[3, 9, 0]);
    // Sample 1 (label 9), green channel, row 4, column 5: (63 + 50 + 9) / 255.
    assert_eq!(train.sample(1)[1024 + 4 * 32 + 5], 122.0 / 255.0);
    let test = cifar::load_dir(d, Split::Test).unwrap();
    assert_eq!(test.labels(), &[0]);
    assert_eq!(load_dataset(d.join("data_batch_1.bin")).unwrap().len(), 2);
}

#[test]
fn cifar_errors_name_the_file_and_the_problem() {
    let dir = tmp();
    let d = dir.path();
    let mut bytes: Vec<u8> = [1u8, 2].iter().flat_map(|l| cifar_record(*l)).collect();
    bytes.truncate(3073 + 100);
    std::fs::write(d.join("cut.bin"), &bytes).unwrap();
    assert_err(
        cifar::load_batch(d.join("cut.bin")).unwrap_err(),
        "cut.bin",
        &["truncated", "record 1 has only 100 bytes"],
    );
    std::fs::write(d.join("label.bin"), cifar_record(12)).unwrap();
    assert_err(
        cifar::load_batch(d.join("label.bin")).unwrap_err(),
        "label.bin",
        &["label 12"],
    );
    std::fs::write(d.join("empty.bin"), b"").unwrap();
    assert_err(
        cifar::load_batch(d.join("empty.bin")).unwrap_err(),
        "empty.bin",
        &["empty"],
    );
    assert_err(
        cifar::load_dir(d, Split::Train).unwrap_err(),
        "",
        &["data_batch_1.bin"],
    );
    assert_err(
        load_dataset(d.join("model.onnx")).unwrap_err(),
        "model.onnx",
        &["unsupported"],
    );
    assert_err(
        load_dataset(d.join("x.npy")).unwrap_err(),
        "x.npy",
        &["npy::load_dataset"],
    );
}

// ---------------------------------------------------------------------------------- synthetic

#[test]
fn toy_sets_are_seeded_balanced_and_shaped() {
    let a = synthetic::moons(101, 0.1, 7).unwrap();
    assert_eq!(a, synthetic::moons(101, 0.1, 7).unwrap());
    assert_ne!(a, synthetic::moons(101, 0.1, 8).unwrap());
    assert_eq!(a.class_counts(), vec![51, 50]);
    assert_eq!(a.sample_shape(), FeatureShape::flat(2));
    // Without noise every point lies on its arc.
    let clean = synthetic::moons(50, 0.0, 1).unwrap();
    for i in 0..clean.len() {
        let [x, y] = [clean.sample(i)[0], clean.sample(i)[1]];
        let r = if clean.labels()[i] == 0 {
            x.hypot(y)
        } else {
            (x - 1.0).hypot(y - 0.5)
        };
        assert!((r - 1.0).abs() < 1e-5, "sample {i}: radius {r}");
    }
    let c = synthetic::circles(60, 0.0, 0.5, 2).unwrap();
    for i in 0..c.len() {
        let r = c.sample(i)[0].hypot(c.sample(i)[1]);
        let want = if c.labels()[i] == 0 { 1.0 } else { 0.5 };
        assert!((r - want).abs() < 1e-5);
    }
    let m = synthetic::mult(1003, 4, 0.2, 3).unwrap();
    assert_eq!(m.class_counts(), vec![251, 251, 251, 250]);
    assert_eq!(m.num_classes(), 4);
    let m6 = synthetic::mult(60, 6, 0.0, 3).unwrap();
    for i in 0..m6.len() {
        let r = m6.sample(i)[0].hypot(m6.sample(i)[1]);
        assert!((0.0..=1.0 + 1e-5).contains(&r));
    }
    assert!(synthetic::moons(1, 0.1, 0).is_err());
    assert!(synthetic::moons(10, -0.1, 0).is_err());
    assert!(synthetic::circles(10, 0.1, 1.5, 0).is_err());
    assert!(synthetic::mult(10, 1, 0.1, 0).is_err());
    assert!(
        synthetic::mult(3, 4, 0.1, 0)
            .unwrap_err()
            .to_string()
            .contains("at least 4")
    );
}

#[test]
fn shapes10_is_seeded_balanced_and_normalised() {
    let a = synthetic::shapes10(200, 5).unwrap();
    assert_eq!(a.sample_shape(), FeatureShape::spatial(3, 32, 32));
    assert_eq!(a.class_counts(), vec![20; 10]);
    assert_eq!(a, synthetic::shapes10(200, 5).unwrap());
    let prefix = synthetic::shapes10(30, 5).unwrap();
    assert_eq!(prefix.features(), &a.features()[..prefix.features().len()]);
    assert_ne!(a, synthetic::shapes10(200, 6).unwrap());
    let raw = synthetic::shapes10_raw(200, 5).unwrap();
    assert!(raw.features().iter().all(|v| (0.0..=1.0).contains(v)));
    let (mean, std) = transform::channel_stats(&a);
    for c in 0..3 {
        assert!(mean[c].abs() < 0.15, "channel {c} mean {}", mean[c]);
        assert!((std[c] - 1.0).abs() < 0.15, "channel {c} std {}", std[c]);
    }
    assert!(synthetic::shapes10(0, 1).is_err());
}

// ---------------------------------------------------------------------------------- transform

#[test]
fn normalize_channels_uses_per_channel_statistics() {
    let ds = Dataset::new(
        vec![1.0, 3.0, 10.0, 30.0, 5.0, 7.0, 50.0, 70.0],
        vec![0, 1],
        FeatureShape::spatial(2, 1, 2),
        2,
    )
    .unwrap();
    let n = transform::normalize_channels(&ds, &[4.0, 40.0], &[2.0, 20.0]).unwrap();
    assert_eq!(n.features(), &[-1.5, -0.5, -1.5, -0.5, 0.5, 1.5, 0.5, 1.5]);
    let (mean, std) = transform::channel_stats(&ds);
    assert_eq!(mean, vec![4.0, 40.0]);
    assert!((std[0] - 5.0f32.sqrt()).abs() < 1e-6 && (std[1] - 500.0f32.sqrt()).abs() < 1e-5);
    assert!(transform::normalize_channels(&ds, &[0.0; 3], &[1.0]).is_err());
    assert!(transform::normalize_channels(&ds, &[0.0], &[0.0]).is_err());
}
