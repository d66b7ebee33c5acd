//! The CNN zoo: eleven architectures built from torchvision's own model definitions (reduced
//! width, 64x64 inputs, random weights), exported by PyTorch to ONNX (opset 17) by
//! `tests/fixtures/zoo/make_zoo.py`, with onnxruntime's outputs on three inputs.
//!
//! Every model must import with outputs equal to onnxruntime's (1e-4 relative), explain with
//! every composite, group, prune at 30% with every criterion with the pruned model equal to
//! the masked one, and export back to ONNX (re-imported exactly, and at ratio 0 with the
//! original outputs). Set `XPRUNE_ZOO_EXPORT_DIR` to write the exported models there and
//! check them with onnxruntime: `python3 tests/fixtures/zoo/make_zoo.py --check-exported DIR`.

use std::path::{Path, PathBuf};
use xprune::burn::tensor::Device;
use xprune::io::onnx::import_onnx;
use xprune::{Activation, Graph};

pub fn zoo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/zoo")
}

pub const MODELS: [&str; 11] = [
    "resnet18",
    "resnet50",
    "densenet121",
    "squeezenet1_1",
    "googlenet",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "shufflenet_v2_x1_0",
    "regnet_y_400mf",
    "convnext_tiny",
];

/// A tensor on the host: dimensions and values.
pub type Host = (Vec<usize>, Vec<f32>);

/// `(input, output)` of a zoo model's fixture as host data with their dimensions.
pub fn reference(name: &str) -> (Host, Host) {
    reference_in(&zoo_dir(), name)
}

/// `(input, output)` of the fixture `<dir>/<name>.safetensors`.
pub fn reference_in(dir: &Path, name: &str) -> (Host, Host) {
    let bytes = std::fs::read(dir.join(format!("{name}.safetensors"))).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let get = |n: &str| {
        let v = st.tensor(n).unwrap();
        let values = v
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        (v.shape().to_vec(), values)
    };
    (get("input"), get("output"))
}

/// Writes `values` (`batch` rows) as the tensor `output` of a safetensors file: xprune's own
/// output of a pruned model, which `make_zoo.py --check-exported` compares onnxruntime's with.
pub fn write_output(path: &Path, batch: usize, values: &[f32]) {
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(
        safetensors::Dtype::F32,
        vec![batch, values.len() / batch],
        &raw,
    )
    .unwrap();
    let st = safetensors::serialize([("output", view)], None).unwrap();
    std::fs::write(path, st).unwrap();
}

pub fn run(graph: &Graph, dims: &[usize], x: &[f32], device: &Device) -> Vec<f32> {
    let input = Activation::from_vec(x.to_vec(), dims, device).unwrap();
    graph.forward(input).unwrap().to_vec()
}

#[test]
fn every_architecture_imports_with_onnxruntime_outputs() {
    let device = Device::flex();
    let mut failures = Vec::new();
    for name in MODELS {
        let graph = match import_onnx(zoo_dir().join(format!("{name}.onnx")), &device) {
            Ok(g) => g,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let ((xd, x), (_, y)) = reference(name);
        let got = run(&graph, &xd, &x, &device);
        let rel = xprune_tests::rel_diff(&got, &y);
        println!(
            "{name}: {} nodes, relative difference {rel:.2e}",
            graph.len()
        );
        if rel > 1e-4 {
            failures.push(format!("{name}: outputs differ by {rel:e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every layer kind is what some ONNX fixture imports to (the zoo, the operator fixtures of
/// `tests/fixtures/ops`, the classic ones of `tests/fixtures/onnx` and the transformer of
/// `tests/fixtures/vit`), so a kind added
/// without an import test fails here.
#[test]
fn every_layer_kind_imports_from_some_onnx_fixture() {
    let device = Device::flex();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut files: Vec<PathBuf> = MODELS
        .iter()
        .map(|m| zoo_dir().join(format!("{m}.onnx")))
        .collect();
    for dir in ["ops", "onnx", "vit"] {
        for entry in std::fs::read_dir(fixtures.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".onnx") && !name.starts_with("bad_") {
                files.push(path);
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for path in &files {
        let graph = import_onnx(path, &device).unwrap_or_else(|e| panic!("{e}"));
        seen.extend(graph.nodes().iter().map(|n| n.op.kind_name()));
    }
    let missing: Vec<&str> = xprune::graph::KIND_NAMES
        .iter()
        .copied()
        .filter(|k| !seen.contains(k))
        .collect();
    assert!(
        missing.is_empty(),
        "no ONNX fixture among {} imports to {missing:?}",
        files.len()
    );
}

use xprune::criteria::{
    Criterion, FeatureRelevance, Gradient, LrpCriterion, RandomCriterion, Shapley, Taylor,
    WeightNorm,
};
use xprune::io::onnx::{export_onnx_bytes, import_onnx_bytes};
use xprune::lrp::{Attributor, COMPOSITE_NAMES, Composite, Flat, Pass, RuleClass, Target};
use xprune::surgery::count;
use xprune::{ChannelGroups, Dataset, FeatureShape, Pruner, Selection};

/// Every built-in criterion (Shapley with one antithetic pair per group, to keep the test
/// short).
pub fn criteria() -> Vec<(&'static str, Box<dyn Criterion>)> {
    vec![
        ("random", Box::new(RandomCriterion)),
        ("l1", Box::new(WeightNorm::l1())),
        ("l2", Box::new(WeightNorm::l2())),
        ("gradient", Box::new(Gradient::default())),
        ("taylor", Box::new(Taylor::default())),
        ("lrp", Box::new(LrpCriterion::default())),
        ("frs", Box::new(FeatureRelevance::default())),
        (
            "shapley",
            Box::new(Shapley {
                permutations: 1,
                tolerance: None,
                ..Shapley::default()
            }),
        ),
    ]
}

/// The fixture's inputs as a dataset labelled with the model's own predictions.
fn reference_data(name: &str) -> Dataset {
    let ((xd, x), (yd, y)) = reference(name);
    let classes = yd[1];
    let labels: Vec<i64> = y
        .chunks(classes)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
                .0 as i64
        })
        .collect();
    let shape = FeatureShape::from_batch_dims(&xd).unwrap();
    Dataset::new(x, labels, shape, classes).unwrap()
}

fn input_of(name: &str, device: &Device) -> Activation {
    let ((xd, x), _) = reference(name);
    Activation::from_vec(x, &xd, device).unwrap()
}

/// Explains with every composite (finite relevance everywhere), and checks conservation with
/// a composite under which every layer conserves.
fn explain(name: &str, graph: &Graph, device: &Device) {
    for composite in COMPOSITE_NAMES {
        let c = Composite::named(composite).unwrap();
        let a = Attributor::new(graph, &c)
            .unwrap_or_else(|e| panic!("{name} {composite}: {e}"))
            .attribute(input_of(name, device), Target::ArgMax)
            .unwrap_or_else(|e| panic!("{name} {composite}: {e}"));
        assert!(
            a.input.to_vec().iter().all(|v| v.is_finite()),
            "{name} {composite}: relevance is not finite"
        );
    }
    // The flat rule on every linear layer and sum (denominators are counts, never zero)
    // and pass on affine maps and layer norms conserves relevance exactly through any
    // routing of channels: concatenations, slices, shuffles, gates, permutes, flattens.
    let flat = Composite::new("flat-everywhere")
        .rule_for_kind(RuleClass::Convolution, Flat)
        .rule_for_kind(RuleClass::Dense, Flat)
        .rule_for_kind(RuleClass::Pool, Flat)
        .rule_for_kind(RuleClass::Sum, Flat)
        .rule_for_kind(RuleClass::Affine, Pass)
        .rule_for_kind(RuleClass::Norm, Pass)
        .ignore_bias(true);
    let a = Attributor::new(graph, &flat)
        .unwrap()
        .attribute(input_of(name, device), Target::ArgMax)
        .unwrap();
    let (total, batch) = (a.input.sum(), a.input.batch() as f64);
    assert!(
        (total - batch).abs() < 1e-3 * batch,
        "{name}: input relevance sums to {total}, the output's to {batch}"
    );
}

/// Groups, then prunes 30% with every criterion: the pruned model equals the masked one, it
/// is smaller, and it exports and re-imports exactly. Returns the MAC reduction of the last
/// criterion.
fn prune_every_way(name: &str, graph: &Graph, device: &Device, export: Option<&Path>) -> f64 {
    let groups = ChannelGroups::new(graph);
    let data = reference_data(name);
    let x = input_of(name, device);
    let mut reduction = 0.0;
    for (criterion, c) in criteria() {
        let outcome = Pruner::new(c)
            .selection(Selection::ratio(0.3))
            .one_shot(graph, Some(&data))
            .unwrap_or_else(|e| panic!("{name} {criterion}: {e}"));
        let plan = outcome.original_plan();
        let masks = plan.masks(graph, &groups, device).unwrap();
        let masked = graph.forward_masked(x.clone(), &masks).unwrap().to_vec();
        let pruned = outcome.graph.forward(x.clone()).unwrap().to_vec();
        let rel = xprune_tests::rel_diff(&pruned, &masked);
        assert!(
            rel < 1e-4,
            "{name} {criterion}: pruned and masked differ by {rel:e}"
        );
        let (before, after) = (count(graph), count(&outcome.graph));
        assert!(
            after.macs < before.macs,
            "{name} {criterion}: no MAC removed"
        );
        reduction = before.macs as f64 / after.macs as f64;
        // the pruned model exports and re-imports with its own outputs
        let bytes = export_onnx_bytes(&outcome.graph).unwrap_or_else(|e| panic!("{name}: {e}"));
        let back = import_onnx_bytes(&bytes, device).unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = back.forward(x.clone()).unwrap().to_vec();
        assert!(
            xprune_tests::rel_diff(&again, &pruned) < 1e-5,
            "{name} {criterion}: the re-imported pruned model differs"
        );
        if let (Some(dir), "lrp") = (export, criterion) {
            std::fs::write(dir.join(format!("{name}.pruned.onnx")), &bytes).unwrap();
            write_output(
                &dir.join(format!("{name}.pruned.safetensors")),
                x.batch(),
                &pruned,
            );
        }
    }
    reduction
}

#[test]
fn every_architecture_explains_groups_prunes_and_exports() {
    let device = Device::flex();
    let export = std::env::var_os("XPRUNE_ZOO_EXPORT_DIR").map(PathBuf::from);
    if let Some(dir) = &export {
        std::fs::create_dir_all(dir).unwrap();
    }
    for name in MODELS {
        let started = std::time::Instant::now();
        let graph = import_onnx(zoo_dir().join(format!("{name}.onnx")), &device).unwrap();
        // ratio 0: the exported model re-imports with the original outputs
        let bytes = export_onnx_bytes(&graph).unwrap();
        if let Some(dir) = &export {
            std::fs::write(dir.join(format!("{name}.onnx")), &bytes).unwrap();
        }
        let back = import_onnx_bytes(&bytes, &device).unwrap();
        let ((xd, x), (_, y)) = reference(name);
        let rel = xprune_tests::rel_diff(&run(&back, &xd, &x, &device), &y);
        assert!(rel < 1e-4, "{name}: re-exported model differs by {rel:e}");

        explain(name, &graph, &device);
        let groups = ChannelGroups::new(&graph);
        let reduction = prune_every_way(name, &graph, &device, export.as_deref());
        println!(
            "{name}: {} groups ({} prunable), 30% of channels removed: {reduction:.2}x fewer MACs ({:.1} s)",
            groups.len(),
            groups.prunable().count(),
            started.elapsed().as_secs_f64()
        );
    }
}
