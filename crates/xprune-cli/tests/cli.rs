//! End-to-end tests of the `xprune` binary: every command runs on small files written here (a
//! small CNN exported to ONNX, `.npz` data labelled by the model itself, `.npy` inputs) and its
//! outputs are checked against independent references (gradient x input for LRP-epsilon,
//! filter norms computed here, the masked unpruned model for pruned models and sweeps). The
//! failure paths check the exit status and the one-line message.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;
use xprune::burn::module::Module;
use xprune::burn::tensor::{Device, Tensor, TensorData};
use xprune::graph::tensor_util::to_vec;
use xprune::io::data::npz::Compression;
use xprune::io::data::{Array, npy, npz};
use xprune::io::onnx::{export_onnx, import_onnx};
use xprune::{Activation, ChannelMasks, Conv2dSpec, FeatureShape, Graph, GraphBuilder, Layer};

/// Classes of the test model.
const CLASSES: usize = 3;
/// Per-sample input shape of the test model.
const INPUT: [usize; 3] = [2, 8, 8];
/// Samples of the reference / evaluation data.
const SAMPLES: usize = 24;
/// Samples of the `.npy` input given to `explain`.
const EXPLAINED: usize = 4;

fn device() -> Device {
    Device::flex()
}

/// conv1 (4) - relu - max pool - conv2 (6) - relu - flatten - fc1 (8) - relu - fc2 (3), with or
/// without biases.
fn cnn(bias: bool, seed: u64) -> Graph {
    let mut b = GraphBuilder::new(
        FeatureShape::spatial(INPUT[0], INPUT[1], INPUT[2]),
        &device(),
    )
    .seed(seed);
    let spec = |c| {
        let s = Conv2dSpec::new(c, 3).padding(1);
        if bias { s } else { s.no_bias() }
    };
    let x = b.input();
    let x = b.conv2d("conv1", x, spec(4)).unwrap();
    let x = b.relu("relu1", x).unwrap();
    let x = b.max_pool2d("pool1", x, 2, 2).unwrap();
    let x = b.conv2d("conv2", x, spec(6)).unwrap();
    let x = b.relu("relu2", x).unwrap();
    let x = b.flatten("flatten", x).unwrap();
    let x = b.linear_with_bias("fc1", x, 8, bias).unwrap();
    let x = b.relu("relu3", x).unwrap();
    let out = b.linear_with_bias("fc2", x, CLASSES, bias).unwrap();
    b.build(out).unwrap()
}

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed ^ 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

fn dims(n: usize) -> Vec<usize> {
    vec![n, INPUT[0], INPUT[1], INPUT[2]]
}

/// Model outputs `[n][CLASSES]`.
fn logits(graph: &Graph, x: &[f32], masks: Option<&ChannelMasks>) -> Vec<Vec<f32>> {
    let n = x.len() / INPUT.iter().product::<usize>();
    let input = Activation::from_vec(x.to_vec(), &dims(n), &graph.device()).unwrap();
    let out = match masks {
        Some(m) => graph.forward_masked(input, m).unwrap(),
        None => graph.forward(input).unwrap(),
    };
    out.to_vec().chunks(CLASSES).map(|c| c.to_vec()).collect()
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
}

fn accuracy(graph: &Graph, x: &[f32], labels: &[i64]) -> f64 {
    let correct = logits(graph, x, None)
        .iter()
        .zip(labels)
        .filter(|(l, y)| argmax(l) as i64 == **y)
        .count();
    correct as f64 / labels.len() as f64
}

/// A temporary folder with `model.onnx`, `data.npz` (`SAMPLES` inputs labelled by the model's
/// own predictions, so the unpruned accuracy is 1) and `x.npy` (the first `EXPLAINED` inputs).
struct Files {
    dir: TempDir,
    graph: Graph,
    x: Vec<f32>,
    labels: Vec<i64>,
}

impl Files {
    fn new(bias: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let graph = cnn(bias, 7);
        export_onnx(&graph, dir.path().join("model.onnx")).unwrap();
        let x = values(SAMPLES * INPUT.iter().product::<usize>(), 11);
        let labels: Vec<i64> = logits(&graph, &x, None)
            .iter()
            .map(|l| argmax(l) as i64)
            .collect();
        let xa = Array::f32(dims(SAMPLES), x.clone()).unwrap();
        let ya = Array::i64(vec![SAMPLES], labels.clone()).unwrap();
        let ca = Array::i64(vec![], vec![CLASSES as i64]).unwrap();
        let arrays = [("x", &xa), ("y", &ya), ("num_classes", &ca)];
        npz::write(dir.path().join("data.npz"), &arrays, Compression::Deflated).unwrap();
        let per = INPUT.iter().product::<usize>();
        let first = Array::f32(dims(EXPLAINED), x[..EXPLAINED * per].to_vec()).unwrap();
        npy::write(dir.path().join("x.npy"), &first).unwrap();
        Self {
            dir,
            graph,
            x,
            labels,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xprune"))
        .current_dir(dir)
        .args(args)
        .arg("--quiet")
        .output()
        .expect("the xprune binary runs")
}

/// Runs a command that must succeed; returns its standard output.
fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "xprune {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail with status 1 and exactly one line on standard error, which
/// must contain every one of `needles`; returns that line.
fn fails(dir: &Path, args: &[&str], needles: &[&str]) -> String {
    let out = run(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "xprune {args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "xprune {args:?}: not one line: {stderr}");
    let line = lines[0];
    assert!(line.starts_with("error: "), "xprune {args:?}: {line}");
    for n in needles {
        assert!(
            line.contains(n),
            "xprune {args:?}: `{line}` does not name `{n}`"
        );
    }
    line.to_string()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `values[i * per .. (i + 1) * per]` summed per sample.
fn per_sample_sums(values: &[f32], n: usize) -> Vec<f64> {
    let per = values.len() / n;
    values
        .chunks(per)
        .map(|c| c.iter().map(|v| *v as f64).sum())
        .collect()
}

/// Gradient x input / logit of class `targets[i]` per sample: LRP-0 (and epsilon with a tiny
/// epsilon) with one-hot initial relevance 1 on a bias-free ReLU network with winner-take-all
/// max pooling, computed independently with Burn's autodiff.
fn gradient_x_input(graph: &Graph, x: &[f32], targets: &[usize]) -> Vec<f32> {
    let n = targets.len();
    let ad = device().autodiff();
    let g = graph.clone().no_grad().fork(&ad);
    let xt = Tensor::<4>::from_data(TensorData::new(x.to_vec(), dims(n)), &ad).require_grad();
    let out = g
        .forward(Activation::Spatial(xt.clone()))
        .unwrap()
        .flatten();
    let mut onehot = vec![0.0f32; n * CLASSES];
    for (i, t) in targets.iter().enumerate() {
        onehot[i * CLASSES + t] = 1.0;
    }
    let sel = Tensor::<2>::from_data(TensorData::new(onehot, [n, CLASSES]), &ad);
    let grads = (out * sel).sum().backward();
    let grad = to_vec(&xt.grad(&grads).unwrap());
    let logits = logits(graph, x, None);
    let per = x.len() / n;
    (0..x.len())
        .map(|j| x[j] * grad[j] / logits[j / per][targets[j / per]])
        .collect()
}

fn assert_close(found: &[f32], expected: &[f32], tol: f32, what: &str) {
    assert_eq!(found.len(), expected.len(), "{what}: lengths");
    let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = found
        .iter()
        .zip(expected)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    println!("{what}: max |difference| {diff:.2e}, max |reference| {scale:.2e}");
    assert!(
        diff <= tol * scale,
        "{what}: max difference {diff} > {tol} * {scale}"
    );
}

#[test]
fn explain_epsilon_matches_gradient_times_input_and_conserves() {
    let f = Files::new(false);
    let d = f.dir.path();
    let per = INPUT.iter().product::<usize>();
    let x = &f.x[..EXPLAINED * per];
    let logits = logits(&f.graph, x, None);
    let eps = ["--composite", "epsilon", "--epsilon", "1e-9"];

    // Default targets: the arg-max.
    let mut args = vec!["explain", "-m", "model.onnx", "-i", "x.npy", "-o", "r.npy"];
    args.extend(eps);
    let stdout = ok(d, &args);
    assert!(stdout.contains("wrote relevance [4, 2, 8, 8]"), "{stdout}");
    let r = npy::read(f.path("r.npy")).unwrap();
    assert_eq!(r.shape(), &dims(EXPLAINED)[..]);
    let r = r.to_f32();
    let predicted: Vec<usize> = logits.iter().map(|l| argmax(l)).collect();
    assert_close(
        &r,
        &gradient_x_input(&f.graph, x, &predicted),
        1e-3,
        "arg-max",
    );
    // Conservation: one-hot relevance 1 at the target, no biases, tiny epsilon.
    for (i, s) in per_sample_sums(&r, EXPLAINED).iter().enumerate() {
        assert!((s - 1.0).abs() < 1e-3, "sample {i}: relevance sums to {s}");
    }

    // One class for every sample.
    let mut args = vec!["explain", "-m", "model.onnx", "-i", "x.npy", "-o", "r1.npy"];
    args.extend(eps);
    args.extend(["--target-class", "1"]);
    ok(d, &args);
    let r1 = npy::read(f.path("r1.npy")).unwrap().to_f32();
    let expected = gradient_x_input(&f.graph, x, &[1; EXPLAINED]);
    assert_close(&r1, &expected, 1e-3, "class 1");

    // Per-sample targets from a file.
    let targets = [2i64, 0, 1, 2];
    npy::write(
        f.path("t.npy"),
        &Array::i64(vec![4], targets.to_vec()).unwrap(),
    )
    .unwrap();
    let mut args = vec!["explain", "-m", "model.onnx", "-i", "x.npy", "-o", "r2.npy"];
    args.extend(eps);
    args.extend(["--targets", "t.npy"]);
    ok(d, &args);
    let r2 = npy::read(f.path("r2.npy")).unwrap().to_f32();
    let expected = gradient_x_input(&f.graph, x, &targets.map(|t| t as usize));
    assert_close(&r2, &expected, 1e-3, "targets file");
    for (i, s) in per_sample_sums(&r2, EXPLAINED).iter().enumerate() {
        assert!((s - 1.0).abs() < 1e-3, "sample {i}: relevance sums to {s}");
    }
}

#[test]
fn explain_default_composite_writes_heatmaps() {
    let f = Files::new(true);
    let d = f.dir.path();
    let stdout = ok(
        d,
        &[
            "explain",
            "-m",
            "model.onnx",
            "-i",
            "data.npz",
            "-o",
            "r.npy",
            "--heatmap",
            "maps",
        ],
    );
    assert!(
        stdout.contains(&format!("wrote {SAMPLES} heatmaps")),
        "{stdout}"
    );
    let r = npy::read(f.path("r.npy")).unwrap();
    assert_eq!(r.shape(), &dims(SAMPLES)[..]);
    let r = r.to_f32();
    assert!(r.iter().all(|v| v.is_finite()));
    assert!(r.iter().any(|v| *v != 0.0), "all relevance is zero");
    let mut pngs: Vec<String> = std::fs::read_dir(f.path("maps"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pngs.sort();
    assert_eq!(pngs.len(), SAMPLES);
    assert_eq!(pngs[0], "heatmap_0000.png");
    for name in &pngs {
        let bytes = std::fs::read(f.path("maps").join(name)).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{name} is not a PNG");
    }
}

#[test]
fn groups_lists_channel_groups_as_text_and_json() {
    let f = Files::new(true);
    let d = f.dir.path();
    let text = ok(d, &["groups", "-m", "model.onnx"]);
    assert!(
        text.contains("5 channel groups (3 prunable, 2 pinned)"),
        "{text}"
    );

    let json: Value = serde_json::from_str(&ok(d, &["groups", "-m", "model.onnx", "--json"]))
        .expect("groups --json prints JSON");
    assert_eq!(json["prunable_channels"], 4 + 6 + 8);
    let groups = json["groups"].as_array().unwrap();
    let summary: Vec<(String, u64, bool)> = groups
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_string(),
                g["channels"].as_u64().unwrap(),
                g["prunable"].as_bool().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("input", 2, false),
        ("conv1", 4, true),
        ("conv2", 6, true),
        ("fc1", 8, true),
        ("fc2", 3, false),
    ];
    let expected: Vec<(String, u64, bool)> = expected
        .iter()
        .map(|(n, c, p)| (n.to_string(), *c, *p))
        .collect();
    assert_eq!(summary, expected);
    // conv2's channels are flattened into fc1's inputs: 16 features per channel.
    let conv2 = &groups[2]["members"];
    let fc1 = conv2
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["node"] == "fc1")
        .unwrap();
    assert_eq!(fc1["role"], "consumer");
    assert_eq!(fc1["block"], 16);
    assert!(
        groups[4]["pinned_because"][0]
            .as_str()
            .unwrap()
            .contains("graph output")
    );

    // Pinned by the user.
    let json: Value = serde_json::from_str(&ok(
        d,
        &["groups", "-m", "model.onnx", "--json", "--pin", "conv2"],
    ))
    .unwrap();
    assert_eq!(json["groups"][2]["prunable"], false);
    assert_eq!(json["prunable_channels"], 4 + 8);
}

/// The L1 norm of every output channel's weights of a conv or linear layer.
fn l1_norms(graph: &Graph, node: &str) -> Vec<f64> {
    let id = graph.find(node).unwrap();
    match graph.layer(id).unwrap() {
        Layer::Conv2d(c) => {
            let w = c.weight.val();
            let out = w.dims()[0];
            let v = to_vec(&w);
            v.chunks(v.len() / out)
                .map(|c| c.iter().map(|x| x.abs() as f64).sum())
                .collect()
        }
        Layer::Linear(l) => {
            let w = l.weight.val();
            let [inp, out] = w.dims();
            let v = to_vec(&w);
            (0..out)
                .map(|k| (0..inp).map(|i| v[i * out + k].abs() as f64).sum())
                .collect()
        }
        _ => panic!("{node} is not a conv or linear layer"),
    }
}

#[test]
fn score_writes_one_score_per_channel_of_every_group() {
    let f = Files::new(true);
    let d = f.dir.path();
    let channels = [("conv1", 4), ("conv2", 6), ("fc1", 8)];

    // l1 needs no data; its values are the filter norms.
    let stdout = ok(
        d,
        &["score", "-m", "model.onnx", "-c", "l1", "-o", "l1.json"],
    );
    assert!(stdout.contains("wrote scores of 3 groups"), "{stdout}");
    let json = read_json(&f.path("l1.json"));
    assert_eq!(json["criterion"], "l1");
    let groups = json["groups"].as_object().unwrap();
    assert_eq!(groups.len(), 3);
    for (name, c) in channels {
        let g = groups.values().find(|g| g["name"] == name).unwrap();
        let found: Vec<f64> = g["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(found.len(), c, "{name}");
        for (a, b) in found.iter().zip(l1_norms(&f.graph, name)) {
            assert!((a - b).abs() <= 1e-5 * b.abs(), "{name}: {a} vs {b}");
        }
    }

    // Data-driven criteria: one finite score per channel; group ids are the `groups` ids.
    for criterion in [
        "lrp",
        "taylor",
        "taylor-batch",
        "gradient",
        "gradient-batch",
        "frs",
        "shapley",
    ] {
        let out = format!("{criterion}.json");
        ok(
            d,
            &[
                "score",
                "-m",
                "model.onnx",
                "-d",
                "data.npz",
                "-c",
                criterion,
                "-o",
                &out,
            ],
        );
        let json = read_json(&f.path(&out));
        let groups = json["groups"].as_object().unwrap();
        let mut found: Vec<(String, String, usize)> = groups
            .iter()
            .map(|(id, g)| {
                let values = g["values"].as_array().unwrap();
                assert!(
                    values
                        .iter()
                        .all(|v| v.as_f64().is_some_and(f64::is_finite)),
                    "{criterion}: non-finite score"
                );
                // Shapley values come with their standard errors and cost; the others
                // without.
                let u = &g["uncertainty"];
                if criterion == "shapley" {
                    let se = u["std_errors"].as_array().unwrap();
                    assert_eq!(se.len(), values.len(), "{u}");
                    assert!(se.iter().all(|s| s.as_f64().is_some_and(|s| s >= 0.0)));
                    assert!(u["evaluations"].as_u64().unwrap() > 0, "{u}");
                } else {
                    assert!(u.is_null(), "{criterion}: {u}");
                }
                (
                    id.clone(),
                    g["name"].as_str().unwrap().to_string(),
                    values.len(),
                )
            })
            .collect();
        found.sort();
        let expected: Vec<(String, String, usize)> = channels
            .iter()
            .enumerate()
            .map(|(i, (n, c))| ((i + 1).to_string(), n.to_string(), *c))
            .collect();
        assert_eq!(found, expected, "{criterion}");
    }
}

/// The plan's removed indices of a group.
fn removed(plan: &Value, group: &str) -> Vec<usize> {
    plan["groups"][group]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_u64().unwrap() as usize).collect())
        .unwrap_or_default()
}

/// Output (or input) channel counts of a conv or linear layer.
fn widths(graph: &Graph, node: &str) -> (usize, usize) {
    match graph.layer(graph.find(node).unwrap()).unwrap() {
        Layer::Conv2d(c) => {
            let [o, i, _, _] = c.weight.val().dims();
            (o, i)
        }
        Layer::Linear(l) => {
            let [i, o] = l.weight.val().dims();
            (o, i)
        }
        _ => panic!("{node}"),
    }
}

/// The unpruned graph with the plan's removed channels masked to zero at their producers.
fn masks_of(graph: &Graph, plan: &Value) -> ChannelMasks {
    let mut masks = ChannelMasks::new();
    for (name, c) in [("conv1", 4), ("conv2", 6), ("fc1", 8)] {
        let gone = removed(plan, name);
        let keep: Vec<bool> = (0..c).map(|k| !gone.contains(&k)).collect();
        let id = graph.find(name).unwrap();
        masks.insert_keep(graph, id, &keep, &device()).unwrap();
    }
    masks
}

#[test]
fn prune_writes_a_smaller_onnx_model_and_a_consistent_plan() {
    let f = Files::new(true);
    let d = f.dir.path();

    // Per-layer scope: half of every group, the lowest L1 norms (computed here).
    let stdout = ok(
        d,
        &[
            "prune",
            "-m",
            "model.onnx",
            "-c",
            "l1",
            "-r",
            "0.5",
            "--scope",
            "layer",
            "-o",
            "layer.onnx",
            "--plan",
            "layer.json",
        ],
    );
    assert!(stdout.contains("removed 9 channels with l1"), "{stdout}");
    let plan = read_json(&f.path("layer.json"));
    for (name, c) in [("conv1", 4), ("conv2", 6), ("fc1", 8)] {
        let norms = l1_norms(&f.graph, name);
        let mut order: Vec<usize> = (0..c).collect();
        order.sort_by(|a, b| norms[*a].total_cmp(&norms[*b]));
        let mut lowest = order[..c / 2].to_vec();
        lowest.sort();
        assert_eq!(removed(&plan, name), lowest, "{name}");
    }

    // Global scope.
    let stdout = ok(
        d,
        &[
            "prune",
            "-m",
            "model.onnx",
            "-d",
            "data.npz",
            "-c",
            "lrp",
            "--ratio",
            "0.5",
            "--normalize",
            "l2",
            "-o",
            "pruned.onnx",
            "--plan",
            "plan.json",
        ],
    );
    assert!(stdout.contains("removed 9 channels with lrp"), "{stdout}");
    let plan = read_json(&f.path("plan.json"));
    assert_eq!(plan["criterion"], "lrp[yeom]");
    let total: usize = ["conv1", "conv2", "fc1"]
        .iter()
        .map(|g| removed(&plan, g).len())
        .sum();
    assert_eq!(total, 9, "half of the 18 prunable channels");
    assert!(plan["groups"].get("fc2").is_none(), "the output is pinned");
    for (name, c) in [("conv1", 4), ("conv2", 6), ("fc1", 8)] {
        let r = removed(&plan, name);
        assert!(
            r.windows(2).all(|w| w[0] < w[1]),
            "{name}: sorted, distinct"
        );
        assert!(r.iter().all(|k| *k < c), "{name}: indices in range");
        assert!(r.len() < c, "{name}: keeps at least one channel");
    }

    // Per layer: the removed outputs of producers and carriers, the removed inputs of
    // consumers (16 features per conv2 channel after the flatten).
    let layer = |node: &str, key: &str| -> Vec<usize> {
        plan["layers"][node][key]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_u64().unwrap() as usize).collect())
            .unwrap_or_default()
    };
    let (c1, c2, f1) = (
        removed(&plan, "conv1"),
        removed(&plan, "conv2"),
        removed(&plan, "fc1"),
    );
    let c2_features: Vec<usize> = c2.iter().flat_map(|k| k * 16..(k + 1) * 16).collect();
    assert_eq!(layer("conv1", "removed_outputs"), c1);
    assert_eq!(layer("relu1", "removed_outputs"), c1);
    assert_eq!(layer("pool1", "removed_outputs"), c1);
    assert_eq!(layer("conv2", "removed_inputs"), c1);
    assert_eq!(layer("conv2", "removed_outputs"), c2);
    assert_eq!(layer("flatten", "removed_outputs"), c2_features);
    assert_eq!(layer("fc1", "removed_inputs"), c2_features);
    assert_eq!(layer("fc1", "removed_outputs"), f1);
    assert_eq!(layer("fc2", "removed_inputs"), f1);
    assert!(layer("fc2", "removed_outputs").is_empty());
    assert_eq!(plan["layers"]["conv1"]["kind"], "conv2d");

    // The written model re-imports with fewer channels and computes what the unpruned model
    // computes with the removed channels masked.
    let pruned = import_onnx(f.path("pruned.onnx"), &device()).unwrap();
    assert_eq!(widths(&pruned, "conv1"), (4 - c1.len(), 2));
    assert_eq!(widths(&pruned, "conv2"), (6 - c2.len(), 4 - c1.len()));
    assert_eq!(widths(&pruned, "fc1"), (8 - f1.len(), 16 * (6 - c2.len())));
    assert_eq!(widths(&pruned, "fc2"), (CLASSES, 8 - f1.len()));
    let params = plan["after"]["params"].as_u64().unwrap();
    assert_eq!(params as usize, pruned.num_params());
    assert!(params < plan["before"]["params"].as_u64().unwrap());
    let masked = logits(&f.graph, &f.x, Some(&masks_of(&f.graph, &plan)));
    let found = logits(&pruned, &f.x, None);
    assert_close(&found.concat(), &masked.concat(), 1e-5, "pruned vs masked");

    // safetensors output.
    ok(
        d,
        &[
            "prune",
            "-m",
            "model.onnx",
            "-c",
            "random",
            "-r",
            "0.3",
            "-o",
            "p.safetensors",
        ],
    );
    let g = Graph::load(f.path("p.safetensors"), &device()).unwrap();
    let kept: usize = ["conv1", "conv2", "fc1"]
        .iter()
        .map(|n| widths(&g, n).0)
        .sum();
    assert_eq!(kept, 18 - 5, "round(0.3 * 18) channels removed");
}

#[test]
fn sweep_writes_csv_and_svg_matching_pruned_models() {
    let f = Files::new(true);
    let d = f.dir.path();
    let stdout = ok(
        d,
        &[
            "sweep",
            "-m",
            "model.onnx",
            "-d",
            "data.npz",
            "-e",
            "data.npz",
            "--criteria",
            "l1,taylor,random",
            "--ratios",
            "0.25,0.5",
            "--scope",
            "layer",
            "--normalize",
            "none",
            "-o",
            "out",
        ],
    );
    assert!(stdout.contains("unpruned accuracy 1.0000"), "{stdout}");
    let csv = std::fs::read_to_string(f.path("out/sweep.csv")).unwrap();
    println!("{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "criterion,ratio,accuracy");
    let rows: Vec<Vec<&str>> = lines[1..].iter().map(|l| l.split(',').collect()).collect();
    let keys: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[1])).collect();
    assert_eq!(
        keys,
        [
            ("l1", "0.25"),
            ("l1", "0.5"),
            ("taylor", "0.25"),
            ("taylor", "0.5"),
            ("random", "0.25"),
            ("random", "0.5")
        ]
    );
    for r in &rows {
        let acc: f64 = r[2].parse().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{r:?}");
    }

    // Masked accuracy equals the accuracy of the model `prune` writes with the same choice.
    ok(
        d,
        &[
            "prune",
            "-m",
            "model.onnx",
            "-c",
            "l1",
            "-r",
            "0.5",
            "--scope",
            "layer",
            "-o",
            "l1.onnx",
        ],
    );
    let pruned = import_onnx(f.path("l1.onnx"), &device()).unwrap();
    let acc = accuracy(&pruned, &f.x, &f.labels);
    assert_eq!(rows[1][2], format!("{acc:.4}"), "l1 at 0.5");

    let svg = std::fs::read_to_string(f.path("out/sweep.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 3);
    for name in ["l1", "taylor", "random"] {
        assert!(svg.contains(&format!(">{name}</text>")), "legend {name}");
    }
}

#[test]
fn demo_quick_runs_and_writes_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = ok(dir.path(), &["demo", "--quick", "-o", "demo"]);
    assert!(stdout.contains("wrote demo.csv"), "{stdout}");
    let csv = std::fs::read_to_string(dir.path().join("demo/demo.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("criterion,ratio,fine_tuned,accuracy"));
    // 7 criteria x 3 ratios x (without, with fine-tuning).
    assert_eq!(lines.len(), 1 + 7 * 3 * 2);
    for l in &lines[1..] {
        let acc: f64 = l.split(',').nth(3).unwrap().parse().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{l}");
    }
    for svg in ["demo_no_finetune.svg", "demo_finetuned.svg"] {
        let text = std::fs::read_to_string(dir.path().join("demo").join(svg)).unwrap();
        assert_eq!(text.matches("<polyline").count(), 7, "{svg}");
    }
}

#[test]
fn toy_reproduction_runs_and_writes_every_setting() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "toy",
        "--seeds",
        "2",
        "--samples",
        "1,5",
        "--width",
        "40",
        "--prune",
        "30",
        "--epochs",
        "30",
        "--datasets",
        "moons,mult",
        "-o",
        "toy",
    ];
    let stdout = ok(dir.path(), &args);
    assert!(
        stdout.contains("removing 30 of 120 hidden neurons"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(dir.path().join("toy/toy.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("dataset,criterion,n,seed,train_accuracy,test_accuracy"));
    // 2 data sets x 4 criteria x 2 sample counts x 2 seeds.
    assert_eq!(lines.len(), 1 + 2 * 4 * 2 * 2);
    for l in &lines[1..] {
        let f: Vec<&str> = l.split(',').collect();
        let acc: f64 = f[4].parse().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{l}");
        // Exactly 30 neurons removed over the three hidden layers.
        let removed: usize = f[6..9].iter().map(|v| v.parse::<usize>().unwrap()).sum();
        assert_eq!(removed, 30, "{l}");
    }
    // The weight criterion does not depend on the reference samples.
    let weight: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("moons,weight"))
        .map(|l| l.split(',').nth(4).unwrap())
        .collect();
    assert!(weight.windows(2).all(|w| w[0] == w[1]), "{weight:?}");
    let summary = std::fs::read_to_string(dir.path().join("toy/toy_summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 1 + 2 * 4 * 2);
    for ds in ["moons", "mult"] {
        assert!(dir.path().join(format!("toy/toy_{ds}.svg")).exists());
    }
    fails(
        dir.path(),
        &["toy", "--prune", "3000"],
        &["cannot remove 3000 of 3000"],
    );
    fails(
        dir.path(),
        &[
            "toy",
            "--datasets",
            "spirals",
            "--width",
            "10",
            "--prune",
            "5",
            "--epochs",
            "1",
        ],
        &["spirals"],
    );
}

#[test]
fn failures_exit_with_one_clear_line() {
    let f = Files::new(true);
    let d = f.dir.path();
    std::fs::write(f.path("corrupt.onnx"), b"this is not a protobuf model").unwrap();
    let wrong = Array::f32(vec![4, 3, 8, 8], values(4 * 3 * 64, 1)).unwrap();
    let labels = Array::i64(vec![4], vec![0, 1, 2, 0]).unwrap();
    npz::write(
        f.path("wrong.npz"),
        &[("x", &wrong), ("y", &labels)],
        Compression::Stored,
    )
    .unwrap();
    npy::write(f.path("wrong.npy"), &wrong).unwrap();
    let model = f.p("model.onnx");

    // Missing files.
    fails(
        d,
        &["groups", "-m", "missing.onnx"],
        &["missing.onnx", "No such file"],
    );
    fails(
        d,
        &[
            "score",
            "-m",
            &model,
            "-d",
            "missing.npz",
            "-c",
            "taylor",
            "-o",
            "s.json",
        ],
        &["missing.npz"],
    );
    fails(
        d,
        &["explain", "-m", &model, "-i", "missing.npy", "-o", "r.npy"],
        &["missing.npy"],
    );
    // Corrupt or unknown model files.
    fails(
        d,
        &["groups", "-m", "corrupt.onnx"],
        &["corrupt.onnx", "not a valid ONNX model"],
    );
    fails(
        d,
        &["groups", "-m", "data.npz"],
        &["data.npz", "unknown model format"],
    );
    // Data that does not fit the model.
    fails(
        d,
        &[
            "score",
            "-m",
            &model,
            "-d",
            "wrong.npz",
            "-c",
            "taylor",
            "-o",
            "s.json",
        ],
        &["wrong.npz", "[3, 8, 8]", "[2, 8, 8]"],
    );
    fails(
        d,
        &[
            "sweep",
            "-m",
            &model,
            "-d",
            "data.npz",
            "-e",
            "wrong.npz",
            "-o",
            "sw",
        ],
        &["wrong.npz", "[3, 8, 8]"],
    );
    fails(
        d,
        &["explain", "-m", &model, "-i", "wrong.npy", "-o", "r.npy"],
        &["wrong.npy", "[4, 3, 8, 8]", "do not fit"],
    );
    // Unknown names.
    fails(
        d,
        &[
            "score", "-m", &model, "-d", "data.npz", "-c", "magic", "-o", "s.json",
        ],
        &["unknown criterion `magic`", "lrp"],
    );
    fails(
        d,
        &[
            "sweep",
            "-m",
            &model,
            "-d",
            "data.npz",
            "-e",
            "data.npz",
            "--criteria",
            "l1,magic",
            "-o",
            "sw",
        ],
        &["unknown criterion `magic`"],
    );
    fails(
        d,
        &[
            "explain",
            "-m",
            &model,
            "-i",
            "x.npy",
            "-o",
            "r.npy",
            "--composite",
            "magic",
        ],
        &["unknown composite `magic`", "epsilon-plus-flat", "yeom"],
    );
    // Values out of range.
    for ratio in ["1", "1.5", "-0.1"] {
        fails(
            d,
            &[
                "prune",
                "-m",
                &model,
                "-c",
                "l1",
                &format!("--ratio={ratio}"),
                "-o",
                "p.onnx",
            ],
            &["channel ratio", "[0, 1)"],
        );
    }
    fails(
        d,
        &[
            "sweep", "-m", &model, "-d", "data.npz", "-e", "data.npz", "--ratios", "0.2,1.0", "-o",
            "sw",
        ],
        &["channel ratio 1", "[0, 1)"],
    );
    fails(
        d,
        &[
            "explain",
            "-m",
            &model,
            "-i",
            "x.npy",
            "-o",
            "r.npy",
            "--target-class",
            "3",
        ],
        &["target class 3", "0..3"],
    );
    // Missing data, missing ratio, unknown output format.
    fails(
        d,
        &[
            "prune", "-m", &model, "-c", "taylor", "-r", "0.5", "-o", "p.onnx",
        ],
        &["needs reference data", "--data"],
    );
    fails(
        d,
        &["prune", "-m", &model, "-c", "l1", "-o", "p.onnx"],
        &["--ratio"],
    );
    fails(
        d,
        &[
            "prune", "-m", &model, "-c", "l1", "-r", "0.5", "-o", "p.txt",
        ],
        &["p.txt", "unknown model format"],
    );
    // Nothing was written by the failed commands.
    for name in ["s.json", "r.npy", "p.onnx", "p.txt", "sw"] {
        assert!(!f.path(name).exists(), "{name} was written");
    }
    // Command-line syntax errors are clap's (status 2, usage on stderr).
    let out = run(d, &["prune", "--no-such-option"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn flat_models_explain_score_and_prune() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let graph = xprune::models::mlp(5, &[12, 10], CLASSES, &device(), 3).unwrap();
    graph.save(d.join("mlp.safetensors")).unwrap();
    let x = values(6 * 5, 5);
    npy::write(d.join("x.npy"), &Array::f32(vec![6, 5], x.clone()).unwrap()).unwrap();
    let input = Activation::from_vec(x.clone(), &[6, 5], &device()).unwrap();
    let labels: Vec<i64> = graph
        .forward(input)
        .unwrap()
        .to_vec()
        .chunks(CLASSES)
        .map(|l| argmax(l) as i64)
        .collect();
    let xa = Array::f32(vec![6, 5], x).unwrap();
    let ya = Array::i64(vec![6], labels).unwrap();
    npz::write(
        d.join("data.npz"),
        &[("x", &xa), ("y", &ya)],
        Compression::Stored,
    )
    .unwrap();

    ok(
        d,
        &[
            "explain",
            "-m",
            "mlp.safetensors",
            "-i",
            "x.npy",
            "-o",
            "r.npy",
        ],
    );
    let r = npy::read(d.join("r.npy")).unwrap();
    assert_eq!(r.shape(), &[6, 5]);
    assert!(r.to_f32().iter().all(|v| v.is_finite()));
    fails(
        d,
        &[
            "explain",
            "-m",
            "mlp.safetensors",
            "-i",
            "x.npy",
            "-o",
            "r2.npy",
            "--heatmap",
            "h",
        ],
        &["--heatmap needs image inputs", "[5]"],
    );
    assert!(!d.join("r2.npy").exists());

    ok(
        d,
        &[
            "score",
            "-m",
            "mlp.safetensors",
            "-d",
            "data.npz",
            "-c",
            "lrp",
            "-o",
            "s.json",
        ],
    );
    let s = read_json(&d.join("s.json"));
    let counts: Vec<usize> = s["groups"]
        .as_object()
        .unwrap()
        .values()
        .map(|g| g["values"].as_array().unwrap().len())
        .collect();
    assert_eq!(counts, [12, 10]);

    ok(
        d,
        &[
            "prune",
            "-m",
            "mlp.safetensors",
            "-c",
            "l2",
            "-r",
            "0.5",
            "--scope",
            "layer",
            "-o",
            "p.onnx",
        ],
    );
    let pruned = import_onnx(d.join("p.onnx"), &device()).unwrap();
    assert_eq!(widths(&pruned, "fc1"), (6, 5));
    assert_eq!(widths(&pruned, "fc2"), (5, 6));
    assert_eq!(widths(&pruned, "fc3"), (CLASSES, 5));
}

/// `--prune-normalized`: the channels a layer norm reads are pinned by default (the pruned
/// model would differ from the masked one) and prunable on request, in `groups`, `score` and
/// `prune` alike.
#[test]
fn layer_norm_channels_are_pruned_only_with_prune_normalized() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = FeatureShape::spatial(3, 16, 16);
    let graph = xprune::models::convnext_like(input, CLASSES, 1.0, &device(), 5).unwrap();
    graph.save(d.join("convnext.safetensors")).unwrap();
    let prunable = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["groups", "-m", "convnext.safetensors", "--json"];
        args.extend_from_slice(extra);
        let json: Value = serde_json::from_str(&ok(d, &args)).unwrap();
        json["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["prunable"].as_bool().unwrap())
            .map(|g| g["name"].as_str().unwrap().to_string())
            .collect()
    };
    let hidden = [
        "stage0.0.pwconv1",
        "stage0.1.pwconv1",
        "stage1.0.pwconv1",
        "stage1.1.pwconv1",
    ];
    assert_eq!(prunable(&[]), hidden);
    let all = prunable(&["--prune-normalized"]);
    assert_eq!(all.len(), hidden.len() + 2, "{all:?}");
    assert!(all.contains(&"stem.conv".to_string()), "{all:?}");
    assert!(all.contains(&"down1.conv".to_string()), "{all:?}");

    let x = values(8 * 3 * 16 * 16, 9);
    let xa = Array::f32(vec![8, 3, 16, 16], x).unwrap();
    let ya = Array::i64(vec![8], (0..8).map(|i| i % CLASSES as i64).collect()).unwrap();
    npz::write(
        d.join("data.npz"),
        &[("x", &xa), ("y", &ya)],
        Compression::Stored,
    )
    .unwrap();
    for (flag, groups) in [
        (None, hidden.len()),
        (Some("--prune-normalized"), all.len()),
    ] {
        let mut args = vec![
            "score",
            "-m",
            "convnext.safetensors",
            "-d",
            "data.npz",
            "-c",
            "lrp",
            "-o",
            "s.json",
        ];
        args.extend(flag);
        ok(d, &args);
        let s = read_json(&d.join("s.json"));
        assert_eq!(s["groups"].as_object().unwrap().len(), groups, "{flag:?}");
    }

    let stem_width = |g: &Graph| widths(g, "stem.conv").0;
    for (flag, narrower) in [(None, false), (Some("--prune-normalized"), true)] {
        let mut args = vec![
            "prune",
            "-m",
            "convnext.safetensors",
            "-c",
            "l1",
            "--scope",
            "layer",
            "-r",
            "0.25",
            "-o",
            "p.safetensors",
            "--plan",
            "plan.json",
        ];
        args.extend(flag);
        ok(d, &args);
        let pruned = Graph::load(d.join("p.safetensors"), &device()).unwrap();
        assert_eq!(
            stem_width(&pruned) < stem_width(&graph),
            narrower,
            "{flag:?}"
        );
        let plan = read_json(&d.join("plan.json"));
        assert_eq!(
            !removed(&plan, "stem.conv").is_empty(),
            narrower,
            "{flag:?}"
        );
        // The plan names the norm whose width changed with the stem.
        assert_eq!(
            plan["layers"].get("stem.norm").is_some(),
            narrower,
            "{flag:?}"
        );
        assert_eq!(removed(&plan, "stage0.0.pwconv1").len(), 8);
    }
}

#[test]
fn explain_gamma_box_takes_scalar_and_per_channel_bounds() {
    use xprune::lrp::{Attributor, Bound, Composite, Epsilon, Gamma, Target, ZBox};
    let f = Files::new(true);
    let d = f.dir.path();
    let explain = |extra: &[&str], out: &str| -> Vec<f32> {
        let mut args = vec![
            "explain",
            "-m",
            "model.onnx",
            "-i",
            "x.npy",
            "--composite",
            "epsilon-gamma-box",
            "-o",
            out,
        ];
        args.extend(extra);
        ok(d, &args);
        npy::read(f.path(out)).unwrap().to_f32()
    };
    let default = explain(&[], "default.npy");
    let scalar = explain(&["--low=-1", "--high", "2"], "scalar.npy");
    let same = explain(&["--low=-1,-1", "--high", "2,2"], "same.npy");
    let mixed = explain(&["--low", "-1,-0.5", "--high", "1,2"], "mixed.npy");
    // Per-channel bounds that agree with a scalar give the scalar's relevance; other bounds
    // give other relevance.
    assert_eq!(same, scalar);
    assert_ne!(scalar, default);
    assert_ne!(mixed, scalar);
    // Distinct per-channel bounds: the library's rule on the same model and inputs.
    let graph = import_onnx(f.path("model.onnx"), &device()).unwrap();
    let zbox = ZBox::new(
        Bound::PerChannel(vec![-1.0, -0.5]),
        Bound::PerChannel(vec![1.0, 2.0]),
    )
    .unwrap();
    let composite =
        Composite::epsilon_gamma_box(Epsilon::new(1e-6).unwrap(), Gamma::new(0.25).unwrap(), zbox);
    let per = INPUT.iter().product::<usize>();
    let x =
        Activation::from_vec(f.x[..EXPLAINED * per].to_vec(), &dims(EXPLAINED), &device()).unwrap();
    let expected = Attributor::new(&graph, &composite)
        .unwrap()
        .attribute(x, Target::ArgMax)
        .unwrap()
        .input
        .to_vec();
    assert_close(&mixed, &expected, 1e-5, "per-channel z-box bounds");
    // A bound per channel needs one value per input channel; bounds belong to z-box.
    let explain = |extra: &[&'static str]| {
        let base = ["explain", "-m", "model.onnx", "-i", "x.npy", "-o", "r.npy"];
        [&base[..], extra].concat()
    };
    let zbox = ["--composite", "epsilon-gamma-box"];
    fails(
        d,
        &explain(&[zbox[0], zbox[1], "--low", "0,0,0"]),
        &["--low", "3 values", "(2)"],
    );
    fails(
        d,
        &explain(&["--high", "2"]),
        &["--low and --high", "epsilon-plus-flat"],
    );
    fails(
        d,
        &explain(&[zbox[0], zbox[1], "--low", "1,3", "--high", "2,2"]),
        &["low bound 3 exceeds high bound 2"],
    );
}

/// A graph file with structure `spec` (JSON) and no tensors, written by hand.
fn structure_only_file(path: &Path, spec: &str) {
    let header = serde_json::json!({ "__metadata__": { "xprune.graph": spec } }).to_string();
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn huge_structures_are_one_line_errors_not_aborts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A shuffle of 13.5e9 channels: no parameters, so the file is consistent, but building
    // it used to allocate 108 GB and abort.
    let spec = r#"{"format":"xprune-graph/1","nodes":[
        {"name":"input","op":"input","shape":{"spatial":[13500000000,1,1]}},
        {"name":"shuffle","op":"channel_shuffle","groups":2,"inputs":["input"]}],
        "output":"shuffle"}"#;
    structure_only_file(&d.join("huge.safetensors"), spec);
    npy::write(d.join("x.npy"), &Array::f32(vec![1, 1], vec![0.0]).unwrap()).unwrap();
    fails(
        d,
        &["groups", "-m", "huge.safetensors"],
        &["huge.safetensors", "`input`", "values per sample"],
    );
    fails(
        d,
        &[
            "explain",
            "-m",
            "huge.safetensors",
            "-i",
            "x.npy",
            "-o",
            "r.npy",
        ],
        &["huge.safetensors", "`input`", "values per sample"],
    );
}

#[test]
fn prune_and_sweep_with_isp_meet_the_mac_budget() {
    let f = Files::new(true);
    let d = f.dir.path();
    let stdout = ok(
        d,
        &[
            "prune",
            "-m",
            "model.onnx",
            "-d",
            "data.npz",
            "-c",
            "isp",
            "--isp-epochs",
            "1,1,4",
            "--mac-budget",
            "0.5",
            "-o",
            "isp.onnx",
            "--plan",
            "isp.json",
        ],
    );
    assert!(stdout.contains("with isp"), "{stdout}");
    let plan = read_json(&f.path("isp.json"));
    assert_eq!(plan["criterion"], "isp");
    let before = plan["before"]["macs"].as_u64().unwrap() as f64;
    let after = plan["after"]["macs"].as_u64().unwrap() as f64;
    assert!(after <= 0.5 * before, "{after} of {before} MACs");
    // The selector reads conv2's map: fc1's neurons come after it and are not gated.
    assert!(plan["groups"].get("fc1").is_none(), "{}", plan["groups"]);
    let pruned = import_onnx(f.path("isp.onnx"), &device()).unwrap();
    let masked = logits(&f.graph, &f.x, Some(&masks_of(&f.graph, &plan)));
    let found = logits(&pruned, &f.x, None);
    assert_close(&found.concat(), &masked.concat(), 1e-5, "pruned vs masked");
    fails(
        d,
        &[
            "prune",
            "-m",
            "model.onnx",
            "-d",
            "data.npz",
            "-c",
            "isp",
            "--isp-budget",
            "1.5",
            "-r",
            "0.3",
            "-o",
            "x.onnx",
        ],
        &["isp", "budget"],
    );
    ok(
        d,
        &[
            "sweep",
            "-m",
            "model.onnx",
            "-d",
            "data.npz",
            "--eval",
            "data.npz",
            "--criteria",
            "isp,l1",
            "--ratios",
            "0.25,0.5",
            "-o",
            "sweep",
        ],
    );
    let csv = std::fs::read_to_string(f.path("sweep").join("sweep.csv")).unwrap();
    assert!(csv.lines().any(|l| l.starts_with("isp,0.5,")), "{csv}");
}

#[test]
fn prune_writes_the_inference_form_with_batch_norms_folded() {
    let f = Files::new(true);
    let d = f.dir.path();
    // conv - bn - relu - pool - conv - bn - relu - flatten - linear, with trained-looking
    // batch-norm statistics (a fresh model's 0 and 1 would hide a wrong fold).
    let mut b = GraphBuilder::new(
        FeatureShape::spatial(INPUT[0], INPUT[1], INPUT[2]),
        &device(),
    )
    .seed(3);
    let x = b.input();
    let x = b
        .conv2d("conv1", x, Conv2dSpec::new(4, 3).padding(1))
        .unwrap();
    let x = b.batch_norm("bn1", x).unwrap();
    let x = b.relu("relu1", x).unwrap();
    let x = b.max_pool2d("pool1", x, 2, 2).unwrap();
    let x = b
        .conv2d("conv2", x, Conv2dSpec::new(6, 3).padding(1))
        .unwrap();
    let x = b.batch_norm("bn2", x).unwrap();
    let x = b.relu("relu2", x).unwrap();
    let x = b.flatten("flatten", x).unwrap();
    let out = b.linear("fc", x, CLASSES).unwrap();
    let graph = b.build(out).unwrap();
    let tensors = graph.named_tensors();
    let graph = graph
        .with_tensors(
            |name| {
                let data = &tensors.iter().find(|(n, _)| n == name).unwrap().1;
                let shape = data.shape().as_slice().to_vec();
                let n: usize = shape.iter().product();
                let v = values(n, name.len() as u64);
                Ok(
                    if name.ends_with("running_var") || name.ends_with("gamma") {
                        xprune::burn::tensor::TensorData::new(
                            v.iter().map(|x| 1.0 + 0.5 * x).collect::<Vec<f32>>(),
                            shape,
                        )
                    } else if name.ends_with("running_mean") || name.ends_with("beta") {
                        xprune::burn::tensor::TensorData::new(v, shape)
                    } else {
                        data.clone()
                    },
                )
            },
            &device(),
            Path::new("bn"),
        )
        .unwrap();
    export_onnx(&graph, f.path("bn.onnx")).unwrap();
    let stdout = ok(
        d,
        &[
            "prune",
            "-m",
            "bn.onnx",
            "-c",
            "l1",
            "-r",
            "0.5",
            "--fold-batch-norms",
            "-o",
            "folded.onnx",
            "--plan",
            "folded.json",
        ],
    );
    assert!(
        stdout.contains("inference form: 2 batch norms folded, 2 nodes removed"),
        "{stdout}"
    );
    let folded = import_onnx(f.path("folded.onnx"), &device()).unwrap();
    assert_eq!(folded.len(), graph.len() - 2);
    assert!(folded.find("bn1").is_err() && folded.find("bn2").is_err());
    let plan = read_json(&f.path("folded.json"));
    // Removed channels masked after their batch norms (a batch norm turns a zero into beta).
    let mut masks = ChannelMasks::new();
    for (group, bn, c) in [("conv1", "bn1", 4), ("conv2", "bn2", 6)] {
        let gone = removed(&plan, group);
        let keep: Vec<bool> = (0..c).map(|k| !gone.contains(&k)).collect();
        masks
            .insert_keep(&graph, graph.find(bn).unwrap(), &keep, &device())
            .unwrap();
    }
    assert_eq!(
        removed(&plan, "conv1").len() + removed(&plan, "conv2").len(),
        5
    );
    let masked = logits(&graph, &f.x, Some(&masks));
    let found = logits(&folded, &f.x, None);
    assert_close(&found.concat(), &masked.concat(), 1e-4, "folded vs masked");
}

/// `prune -m model.onnx -c l1 --latency-budget BUDGET` at batch 4 with the latency model in
/// `file`, writing `fast.onnx`, and `extra`.
fn latency_prune<'a>(budget: &'a str, file: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "prune",
        "-m",
        "model.onnx",
        "-c",
        "l1",
        "--latency-budget",
        budget,
        "--latency-batch",
        "4",
        "--latency-model",
        file,
        "-o",
        "fast.onnx",
    ];
    args.extend_from_slice(extra);
    args
}

/// The predicted and the measured latency fractions of the report `prune --latency-budget`
/// prints: "... ms (0.xyz of dense), measured ... ms (0.xyz)".
fn latency_fractions(stdout: &str) -> (f64, f64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("latency per batch of 4: predicted"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let fraction = |i: usize| -> f64 {
        line.split('(')
            .nth(i)
            .and_then(|s| s.split([' ', ')']).next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{line}"))
    };
    (fraction(1), fraction(2))
}

#[test]
fn prune_meets_a_latency_budget_and_caches_the_latency_model() {
    use xprune::latency::LatencyModel;
    let f = Files::new(true);
    let d = f.dir.path();
    // A budget of 1 is always reachable: the run probes and writes the model.
    let stdout = ok(d, &latency_prune("1", "latency.json", &[]));
    assert!(stdout.contains("(1.000 of dense)"), "{stdout}");
    // The measured times of a tiny model are mostly noise; so that the selection below does
    // not depend on them, they are replaced by a formula (work proportional to the counts).
    let mut model = LatencyModel::load(f.path("latency.json")).unwrap();
    assert_eq!(model.batch, 4);
    for n in &mut model.nodes {
        n.table = n.table.with_times(|a, b| match (a, b) {
            (0, 0) => 0.0,
            (0, c) | (c, 0) => c as f64,
            (a, b) => (a * b) as f64,
        });
    }
    (model.dense_ms, model.nodes_ms) = (1.0, 1.0);
    model.save(f.path("latency.json")).unwrap();
    let stdout = ok(d, &latency_prune("0.6", "latency.json", &[]));
    let (predicted, _) = latency_fractions(&stdout);
    assert!(predicted <= 0.6 + 1e-3, "{stdout}");
    let pruned = import_onnx(f.path("fast.onnx"), &device()).unwrap();
    assert!(pruned.macs() < import_onnx(f.path("model.onnx"), &device()).unwrap().macs());
    // that run read the cached model rather than probing again (which would overwrite it)
    assert_eq!(LatencyModel::load(f.path("latency.json")).unwrap(), model);
    // errors: a budget out of range, a corrupt model file, round_to with a latency budget
    fails(d, &latency_prune("1.5", "x.json", &[]), &["budget 1.5"]);
    std::fs::write(f.path("bad.json"), "{ not json").unwrap();
    fails(d, &latency_prune("0.5", "bad.json", &[]), &["bad.json"]);
    let round_to = ["--round-to", "4"];
    fails(
        d,
        &latency_prune("0.5", "latency.json", &round_to),
        &["--round-to 4"],
    );
}

/// `--latency-runner`: the latency model is measured by a runner program. This one answers
/// with the size of the ONNX file it is sent (so the "times" follow the weights), which keeps
/// the test free of timing noise and of Python.
#[cfg(unix)]
#[test]
fn prune_measures_latency_with_a_runner() {
    use std::os::unix::fs::PermissionsExt;
    use xprune::latency::LatencyModel;
    let f = Files::new(true);
    let d = f.dir.path();
    let runner = f.path("runner.sh");
    std::fs::write(
        &runner,
        "#!/bin/sh\nwhile read b w r p; do wc -c < \"$p\"; done\n",
    )
    .unwrap();
    std::fs::set_permissions(&runner, std::fs::Permissions::from_mode(0o755)).unwrap();
    let runner = runner.display().to_string();
    let with_runner = ["--fold-batch-norms", "--latency-runner", runner.as_str()];
    let stdout = ok(d, &latency_prune("0.6", "runner.json", &with_runner));
    let model = LatencyModel::load(f.path("runner.json")).unwrap();
    assert_eq!(model.device, format!("runner: {runner}"));
    assert!(model.inference_form);
    // The dense "time" is the size of the dense inference form's ONNX file.
    let dense = import_onnx(f.path("model.onnx"), &device()).unwrap();
    let folded = xprune::inference_form(&dense).unwrap().graph;
    let bytes = xprune::io::onnx::export_onnx_bytes(&folded).unwrap().len();
    assert_eq!(model.dense_ms, bytes as f64);
    // Predicted within the budget; measured by the runner: the pruned file's size.
    let (predicted, measured) = latency_fractions(&stdout);
    assert!(predicted <= 0.6 + 1e-3, "{stdout}");
    let pruned_bytes = std::fs::metadata(f.path("fast.onnx")).unwrap().len() as f64;
    assert!(
        (measured - pruned_bytes / bytes as f64).abs() < 2e-3,
        "{stdout}"
    );
    // The file is not reused for this device: without the runner it is probed again (with a
    // budget of 1: real times of a tiny model are noise).
    ok(
        d,
        &latency_prune("1", "runner.json", &["--fold-batch-norms"]),
    );
    let again = LatencyModel::load(f.path("runner.json")).unwrap();
    assert!(!again.device.starts_with("runner:"), "{}", again.device);
    // A runner that cannot start is a named error.
    let missing = ["--latency-runner", "/nonexistent/xprune-runner"];
    let bad = latency_prune("0.6", "other.json", &missing);
    fails(d, &bad, &["cannot start", "/nonexistent/xprune-runner"]);
}

#[test]
fn devices_split_scoring_and_give_the_same_scores() {
    let f = Files::new(true);
    let d = f.dir.path();
    for criterion in ["lrp", "taylor", "shapley"] {
        let one = format!("{criterion}-one.json");
        let two = format!("{criterion}-two.json");
        let args = |out: &str| -> Vec<String> {
            [
                "score",
                "-m",
                "model.onnx",
                "-d",
                "data.npz",
                "-c",
                criterion,
                "-o",
                out,
                "--batch-size",
                "4",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        };
        let a = args(&one);
        ok(d, &a.iter().map(String::as_str).collect::<Vec<_>>());
        let mut b = args(&two);
        b.extend(["--devices".into(), "flex,flex".into()]);
        ok(d, &b.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(
            read_json(&f.path(&one)),
            read_json(&f.path(&two)),
            "{criterion}"
        );
    }
    // prune with two workers removes what one removes.
    let prune = |out: &str, devices: Option<&str>| {
        let mut args = vec![
            "prune",
            "-m",
            "model.onnx",
            "-d",
            "data.npz",
            "-c",
            "lrp",
            "--ratio",
            "0.5",
            "-o",
            out,
            "--batch-size",
            "4",
        ];
        if let Some(list) = devices {
            args.extend(["--devices", list]);
        }
        ok(d, &args)
    };
    let a = prune("p1.onnx", None);
    let b = prune("p2.onnx", Some("flex, flex"));
    assert_eq!(
        std::fs::read(f.path("p1.onnx")).unwrap(),
        std::fs::read(f.path("p2.onnx")).unwrap(),
        "{a}\n{b}"
    );
    // Bad lists are named.
    for (list, want) in [
        ("flex:2", "one device"),
        ("flex,,flex", "comma-separated"),
        ("tpu", "unknown backend `tpu`"),
    ] {
        fails(
            d,
            &[
                "score",
                "-m",
                "model.onnx",
                "-d",
                "data.npz",
                "-c",
                "lrp",
                "-o",
                "x.json",
                "--devices",
                list,
            ],
            &[want],
        );
    }
}

/// torchvision's `VisionTransformer` as PyTorch exports it (`tests/fixtures/vit`): every command
/// runs on it. `groups` lists one group per block's heads (two heads, one channel each) and MLP
/// neurons, `explain` with `attnlrp` writes finite relevance of the input's shape, `score` with
/// Shapley enumerates the heads exactly, `prune` writes a model with fewer MACs that imports
/// again, and `sweep` writes a row per criterion and ratio.
#[test]
fn every_command_runs_on_a_torchvision_vit() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/vit");
    let model = fixtures.join("vit_torchvision.onnx");
    let data = fixtures.join("vit_torchvision_data.npz");
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    let dir = TempDir::new().unwrap();
    let groups = ok(dir.path(), &["groups", "-m", m]);
    assert!(groups.contains("4 prunable"), "{groups}");
    assert!(
        groups.contains("/encoder/layers/encoder_layer_0/self_attention/q  2 channels  prunable"),
        "{groups}"
    );
    ok(
        dir.path(),
        &[
            "explain",
            "-m",
            m,
            "-i",
            d,
            "--composite",
            "attnlrp",
            "-o",
            "rel.npy",
        ],
    );
    let rel = npy::read(dir.path().join("rel.npy")).unwrap();
    assert_eq!(rel.shape(), &[16, 3, 16, 16]);
    assert!(rel.to_f32().iter().all(|v| v.is_finite()));
    ok(
        dir.path(),
        &[
            "score",
            "-m",
            m,
            "-d",
            d,
            "-c",
            "shapley",
            "-o",
            "scores.json",
        ],
    );
    let scores = read_json(&dir.path().join("scores.json"));
    let heads = scores["groups"]
        .as_object()
        .unwrap()
        .values()
        .find(|g| g["name"] == "/encoder/layers/encoder_layer_0/self_attention/q")
        .unwrap();
    assert_eq!(heads["values"].as_array().unwrap().len(), 2);
    assert_eq!(
        heads["uncertainty"]["draws"], 0,
        "two heads are enumerated exactly"
    );
    ok(
        dir.path(),
        &[
            "prune",
            "-m",
            m,
            "-d",
            d,
            "-c",
            "lrp",
            "--composite",
            "attnlrp",
            "--ratio",
            "0.5",
            "-o",
            "pruned.onnx",
        ],
    );
    let original = import_onnx(&model, &device()).unwrap();
    let pruned = import_onnx(dir.path().join("pruned.onnx"), &device()).unwrap();
    assert!(pruned.macs() < original.macs());
    ok(
        dir.path(),
        &[
            "sweep",
            "-m",
            m,
            "-d",
            d,
            "-e",
            d,
            "--criteria",
            "lrp,l1",
            "--ratios",
            "0,0.5",
            "-o",
            "sweep",
        ],
    );
    let csv = std::fs::read_to_string(dir.path().join("sweep/sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 2, "{csv}");
}
