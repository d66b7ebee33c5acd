//! Vision transformers end to end: the PyTorch-exported ViTs of `tests/fixtures/vit` (torchvision's
//! and timm's `VisionTransformer`, and one written as Hugging Face's eager mode computes attention; two
//! blocks of two heads each) are grouped into heads, MLP neurons and a pinned embedding width,
//! explained with `attnlrp` and `cp-lrp`, and pruned by every built-in criterion at 50% of
//! their heads and MLP neurons (half of every group): the pruned model equals the masked one,
//! has fewer heads and MACs, and exports to ONNX and re-imports with its own outputs.
//!
//! Set `XPRUNE_VIT_EXPORT_DIR` to write the exported models there (`<name>.onnx` unpruned,
//! `<name>.pruned.onnx` pruned with `lrp`, `<name>.pruned.safetensors` xprune's output of it on
//! the fixture's input) and check them with onnxruntime:
//! `python3 tests/fixtures/vit/make_fixtures.py --check-exported DIR`.

use crate::zoo::{criteria, reference_in, run, write_output};
use std::path::{Path, PathBuf};
use xprune::burn::tensor::Device;
use xprune::io::onnx::{export_onnx_bytes, import_onnx, import_onnx_bytes};
use xprune::lrp::{Attributor, Composite, Target};
use xprune::surgery::count;
use xprune::{Activation, ChannelGroups, Dataset, FeatureShape, Graph, Pruner, Scope, Selection};

fn vit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/vit")
}

fn import(name: &str, device: &Device) -> Graph {
    import_onnx(vit_dir().join(format!("{name}.onnx")), device)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Eight seeded images labelled with the model's own predictions.
fn data(graph: &Graph, device: &Device) -> (Activation, Dataset) {
    let n = 8;
    let x: Vec<f32> = (0..n * 3 * 16 * 16)
        .map(|i| (((i * 7919) % 1013) as f32 / 506.0) - 1.0)
        .collect();
    let input = Activation::from_vec(x.clone(), &[n, 3, 16, 16], device).unwrap();
    let logits = graph.forward(input.clone()).unwrap().to_vec();
    let labels: Vec<i64> = logits
        .chunks(5)
        .map(|r| {
            r.iter()
                .enumerate()
                .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
                .0 as i64
        })
        .collect();
    let set = Dataset::new(x, labels, FeatureShape::spatial(3, 16, 16), 5).unwrap();
    (input, set)
}

fn heads(g: &Graph) -> usize {
    g.nodes()
        .iter()
        .zip(g.layers())
        .filter(|(n, _)| n.op.kind_name() == "attention")
        .map(|(n, l)| {
            let xprune::Layer::Attention(a) = l else {
                unreachable!()
            };
            g.node(n.inputs[0]).unwrap().shape.channels() / a.head_dim
        })
        .sum()
}

#[test]
fn exported_vits_group_explain_and_prune_heads_with_every_criterion() {
    let device = Device::flex();
    let export = std::env::var_os("XPRUNE_VIT_EXPORT_DIR").map(PathBuf::from);
    if let Some(dir) = &export {
        std::fs::create_dir_all(dir).unwrap();
    }
    for name in ["vit_torchvision", "vit_timm", "vit_eager"] {
        let graph = import(name, &device);
        prune_every_way(name, &graph, &device, export.as_deref());
    }
}

fn prune_every_way(name: &str, graph: &Graph, device: &Device, export: Option<&Path>) {
    let groups = ChannelGroups::new(graph);
    let prunable: Vec<(String, usize)> = groups
        .prunable()
        .map(|g| (g.name().to_string(), g.channels()))
        .collect();
    assert_eq!(
        prunable.len(),
        4,
        "{name}: two head groups and two MLP groups:\n{groups}"
    );
    assert_eq!(
        prunable.iter().filter(|(_, c)| *c == 2).count(),
        2,
        "{name}: a head group has one channel per head:\n{groups}"
    );
    let ((fd, fx), (_, fy)) = reference_in(&vit_dir(), name);
    if let Some(dir) = export {
        let bytes = export_onnx_bytes(graph).unwrap();
        std::fs::write(dir.join(format!("{name}.onnx")), &bytes).unwrap();
        let back = import_onnx_bytes(&bytes, device).unwrap();
        let rel = xprune_tests::rel_diff(&run(&back, &fd, &fx, device), &fy);
        assert!(
            rel < 1e-4,
            "{name}: the re-exported model differs by {rel:e}"
        );
    }
    let (x, set) = data(graph, device);
    for composite in ["attnlrp", "cp-lrp"] {
        let a = Attributor::new(graph, &Composite::named(composite).unwrap())
            .unwrap()
            .attribute(x.clone(), Target::ArgMaxLogits)
            .unwrap();
        assert!(
            a.input.to_vec().iter().all(|v| v.is_finite()),
            "{name} {composite}"
        );
    }
    assert_eq!(heads(graph), 4);
    for (criterion, c) in criteria() {
        let outcome = Pruner::new(c)
            .selection(Selection::ratio(0.5).scope(Scope::PerGroup))
            .one_shot(graph, Some(&set))
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
        assert!(
            heads(&outcome.graph) < 4,
            "{name} {criterion}: no head removed"
        );
        assert!(
            count(&outcome.graph).macs < count(graph).macs,
            "{name} {criterion}"
        );
        let bytes = export_onnx_bytes(&outcome.graph).unwrap();
        let back =
            import_onnx_bytes(&bytes, device).unwrap_or_else(|e| panic!("{name} {criterion}: {e}"));
        let again = back.forward(x.clone()).unwrap().to_vec();
        assert!(
            xprune_tests::rel_diff(&again, &pruned) < 1e-5,
            "{name} {criterion}: the re-imported pruned ViT differs"
        );
        if let (Some(dir), "lrp") = (export, criterion) {
            std::fs::write(dir.join(format!("{name}.pruned.onnx")), &bytes).unwrap();
            let own = run(&outcome.graph, &fd, &fx, device);
            write_output(&dir.join(format!("{name}.pruned.safetensors")), fd[0], &own);
        }
    }
}
