//! Unit tests of graph construction, execution, masks and storage.

use crate::*;
use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};

fn device() -> Device {
    Device::flex()
}

/// conv-bn-relu, a residual block, a concat, pooling, flatten, linear.
fn small_graph(seed: u64) -> Graph {
    let d = device();
    let mut b = GraphBuilder::new(FeatureShape::spatial(3, 8, 8), &d).seed(seed);
    let x = b
        .conv2d("conv1", b.input(), Conv2dSpec::new(4, 3).padding(1))
        .unwrap();
    let x = b.batch_norm("bn1", x).unwrap();
    let x = b.relu("relu1", x).unwrap();
    let y = b
        .conv2d("conv2", x, Conv2dSpec::new(4, 3).padding(1))
        .unwrap();
    let s = b.add("add", &[x, y]).unwrap();
    let z = b.conv2d("conv3", s, Conv2dSpec::new(2, 1)).unwrap();
    let c = b.concat("cat", &[s, z]).unwrap();
    let p = b.max_pool2d("pool", c, 2, 2).unwrap();
    let f = b.flatten("flat", p).unwrap();
    let o = b.linear("fc", f, 5).unwrap();
    b.build(o).unwrap()
}

fn input(batch: usize) -> Tensor<4> {
    Tensor::random([batch, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device())
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn shapes_are_inferred() {
    let g = small_graph(0);
    assert_eq!(
        g.node(g.find("cat").unwrap()).unwrap().shape,
        FeatureShape::spatial(6, 8, 8)
    );
    assert_eq!(
        g.node(g.find("flat").unwrap()).unwrap().shape,
        FeatureShape::flat(96)
    );
    assert_eq!(g.output_shape(), FeatureShape::flat(5));
    let out = g.forward(input(2)).unwrap();
    assert_eq!(out.dims(), vec![2, 5]);
}

#[test]
fn mismatches_are_errors_naming_the_node() {
    let d = device();
    let mut b = GraphBuilder::new(FeatureShape::spatial(3, 8, 8), &d);
    let x = b.conv2d("c1", b.input(), Conv2dSpec::new(4, 3)).unwrap();
    let y = b
        .conv2d("c2", b.input(), Conv2dSpec::new(4, 3).padding(1))
        .unwrap();
    let err = b.add("sum", &[x, y]).unwrap_err().to_string();
    assert!(
        err.contains("`sum`") && err.contains("4, 6, 6") && err.contains("4, 8, 8"),
        "{err}"
    );
    let err = b.linear("fc", x, 3);
    // linear on a map reads numel: allowed only after a flatten
    assert!(err.unwrap_err().to_string().contains("flatten"));
    let err = b.conv2d("c1", x, Conv2dSpec::new(4, 3)).unwrap_err();
    assert!(matches!(err, GraphError::DuplicateName(_)));
    let g = small_graph(0);
    let err = g
        .forward(Tensor::<4>::zeros([1, 3, 9, 8], &d))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[1, 3, 9, 8]") && err.contains("3, 8, 8"),
        "{err}"
    );
    assert!(
        g.find("nope")
            .unwrap_err()
            .to_string()
            .contains("unknown node `nope`")
    );
}

#[test]
fn same_seed_same_weights() {
    let a = small_graph(3).forward(input(1)).unwrap();
    let x = input(2);
    let a2 = small_graph(3).forward(x.clone()).unwrap().to_vec();
    let b2 = small_graph(3).forward(x.clone()).unwrap().to_vec();
    let c2 = small_graph(4).forward(x).unwrap().to_vec();
    assert_eq!(a.dims(), vec![1, 5]);
    assert_eq!(a2, b2);
    assert!(max_abs_diff(&a2, &c2) > 1e-4);
}

#[test]
fn recorded_forward_keeps_every_node() {
    let g = small_graph(1);
    let x = input(2);
    let rec = g.forward_recorded(x.clone()).unwrap();
    for id in 0..g.len() {
        let v = rec.get(id).expect("recorded");
        assert_eq!(v.feature_shape(), g.node(id).unwrap().shape);
    }
    let plain = g.forward(x).unwrap().to_vec();
    assert_eq!(rec.output().to_vec(), plain);
}

#[test]
fn masks_zero_channels_and_resume_matches_full_run() {
    let g = small_graph(2);
    let d = device();
    let x = input(3);
    let relu = g.find("relu1").unwrap();
    let mut masks = ChannelMasks::new();
    masks
        .insert_keep(&g, relu, &[true, false, true, true], &d)
        .unwrap();
    let rec = g.run(x.clone()).masks(&masks).record().execute().unwrap();
    let r = rec.get(relu).unwrap().as_spatial().unwrap().clone();
    let ch1: f32 = r.narrow(1, 1, 1).abs().sum().into_scalar();
    assert_eq!(ch1, 0.0);

    // Resuming from a clean recording at the masked node with the same mask gives the
    // masked output.
    let clean = g.forward_recorded(x.clone()).unwrap();
    let resumed = g
        .resume(&clean, relu)
        .masks(&masks)
        .execute()
        .unwrap()
        .into_output()
        .to_vec();
    let masked = g.forward_masked(x.clone(), &masks).unwrap().to_vec();
    assert!(max_abs_diff(&resumed, &masked) < 1e-5);

    // Per-sample masks over a repeated batch evaluate two coalitions in one pass.
    let keep_all = Tensor::<2>::ones([3, 4], &d);
    let drop_one = Tensor::<2>::from_floats([[1.0, 0.0, 1.0, 1.0]; 3], &d);
    let mut batched = ChannelMasks::new();
    batched.insert(relu, Tensor::cat(vec![keep_all, drop_one], 0));
    let both = g
        .resume(&clean, relu)
        .repeat(2)
        .masks(&batched)
        .execute()
        .unwrap()
        .into_output()
        .to_vec();
    let full = g.forward(x.clone()).unwrap().to_vec();
    assert!(max_abs_diff(&both[..15], &full) < 1e-5);
    assert!(max_abs_diff(&both[15..], &masked) < 1e-5);

    // Resuming after the masked node applies its mask to the cached value: the same outputs
    // without recomputing the node.
    let after = g
        .resume(&clean, relu + 1)
        .masks(&masks)
        .execute()
        .unwrap()
        .into_output()
        .to_vec();
    assert!(max_abs_diff(&after, &masked) < 1e-5);
    let after_both = g
        .resume(&clean, relu + 1)
        .repeat(2)
        .masks(&batched)
        .execute()
        .unwrap()
        .into_output()
        .to_vec();
    assert!(max_abs_diff(&after_both[..15], &full) < 1e-5);
    assert!(max_abs_diff(&after_both[15..], &masked) < 1e-5);

    // A mask with the wrong channel count is an error naming the node.
    let mut bad = ChannelMasks::new();
    bad.insert(relu, Tensor::ones([1, 3], &d));
    let err = g.forward_masked(input(1), &bad).unwrap_err().to_string();
    assert!(err.contains("relu1") && err.contains("3 channels"), "{err}");
}

#[test]
fn spec_round_trip() {
    let g = small_graph(5);
    let json = g.spec().to_json();
    let spec = GraphSpec::from_json(&json).unwrap();
    assert_eq!(spec, g.spec());
    let g2 = Graph::from_spec(&spec, &device(), 9).unwrap();
    assert_eq!(g2.spec(), g.spec());
    assert_eq!(g2.num_params(), g.num_params());
}

#[test]
fn save_load_round_trips_exactly() {
    let g = small_graph(6);
    let dir = std::env::temp_dir().join(format!("xprune-graph-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    g.save(&path).unwrap();
    let g2 = Graph::load(&path, &device()).unwrap();
    let x = input(2);
    assert_eq!(
        g.forward(x.clone()).unwrap().to_vec(),
        g2.forward(x).unwrap().to_vec()
    );

    // Truncated file: an error naming the file.
    let bytes = std::fs::read(&path).unwrap();
    let bad = dir.join("truncated.safetensors");
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let err = Graph::load(&bad, &device()).unwrap_err().to_string();
    assert!(err.contains("truncated.safetensors"), "{err}");
    let err = Graph::load(dir.join("missing.safetensors"), &device())
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.safetensors"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn trains_with_burn_optimizers() {
    use burn::module::Module;
    use burn::optim::{GradientsParams, SgdConfig};
    let ad = device().autodiff();
    let mut b = GraphBuilder::new(FeatureShape::flat(2), &ad).seed(1);
    let x = b.linear("l1", b.input(), 16).unwrap();
    let x = b.relu("r1", x).unwrap();
    let x = b.linear("l2", x, 2).unwrap();
    let mut g = b.build(x).unwrap();
    let inputs =
        Tensor::<2>::from_floats([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]], &ad);
    let targets = Tensor::<1, burn::tensor::Int>::from_ints([0, 0, 1, 1], &ad);
    let mut optim = SgdConfig::new().init();
    let loss_of = |g: &Graph| {
        let logits = g.forward_train(inputs.clone()).unwrap().flatten();
        burn::nn::loss::CrossEntropyLossConfig::new()
            .init(&ad)
            .forward(logits, targets.clone())
    };
    let first: f32 = loss_of(&g).into_scalar();
    for _ in 0..100 {
        let loss = loss_of(&g);
        let grads = GradientsParams::from_grads(loss.backward(), &g);
        g = optim.step(0.1, g, grads);
    }
    let last: f32 = loss_of(&g).into_scalar();
    assert!(last < first * 0.5, "loss {first} -> {last}");
    assert!(g.num_params() > 0);
}

#[test]
fn from_nodes_rejects_bad_structures() {
    let g = small_graph(0);
    let (input, mut defs, out) = g.to_node_defs();
    defs[3].inputs = vec![5];
    assert!(matches!(
        Graph::from_nodes(input, defs, out),
        Err(GraphError::NotTopological { .. })
    ));
    let (input, defs, _) = g.to_node_defs();
    assert!(matches!(
        Graph::from_nodes(input, defs, 99),
        Err(GraphError::InvalidNodeId { .. })
    ));
}

#[test]
fn dataset_checks_and_batches() {
    let ds = Dataset::new(vec![0.0; 12], vec![0, 1, 2], FeatureShape::flat(4), 3).unwrap();
    assert_eq!(ds.len(), 3);
    assert!(Dataset::new(vec![0.0; 11], vec![0, 1, 2], FeatureShape::flat(4), 3).is_err());
    assert!(
        Dataset::new(vec![0.0; 12], vec![0, 1, 3], FeatureShape::flat(4), 3)
            .unwrap_err()
            .to_string()
            .contains("label 3")
    );
    let b = ds.batch(&[2, 0], &device()).unwrap();
    assert_eq!(b.inputs.dims(), vec![2, 4]);
    assert_eq!(tensor_util::to_vec_int(&b.labels), vec![2, 0]);
    let pc = ds.per_class(1, 0).unwrap();
    assert_eq!(pc.class_counts(), vec![1, 1, 1]);
    let sel = ds.select_classes(&[2, 1]).unwrap();
    assert_eq!(sel.labels(), &[1, 0]);
}

#[test]
fn output_hook_sees_and_replaces_values() {
    let g = small_graph(7);
    let d = device();
    let x = input(2);
    let relu = g.find("relu1").unwrap();
    let mut seen = Vec::new();
    let mut hook = |id: NodeId, a: Activation| {
        seen.push(id);
        if id == relu {
            a.scale_channels(Tensor::<2>::full([1, 4], 2.0, &d))
        } else {
            a
        }
    };
    let hooked = g
        .run(x.clone())
        .hook(&mut hook)
        .execute()
        .unwrap()
        .into_output()
        .to_vec();
    assert_eq!(seen, (0..g.len()).collect::<Vec<_>>());
    let mut masks = ChannelMasks::new();
    masks.insert(relu, Tensor::full([1, 4], 2.0, &d));
    let masked = g.forward_masked(x.clone(), &masks).unwrap().to_vec();
    assert!(max_abs_diff(&hooked, &masked) < 1e-5);
    // A hook that changes a shape is an error naming the node.
    let mut bad = |id: NodeId, a: Activation| if id == relu { a.repeat_batch(2) } else { a };
    let err = g.run(x).hook(&mut bad).execute().unwrap_err().to_string();
    assert!(err.contains("relu1"), "{err}");
}

/// Writes a graph file whose structure is `nodes` (JSON) and output `output`, without tensors.
fn structure_file(path: &std::path::Path, nodes: &str, output: &str) {
    let spec = format!(r#"{{"format":"{SPEC_FORMAT}","nodes":{nodes},"output":"{output}"}}"#);
    let meta = std::collections::HashMap::from([(STRUCTURE_KEY.to_string(), spec)]);
    let none: Vec<(String, safetensors::tensor::TensorView)> = Vec::new();
    std::fs::write(path, safetensors::serialize(none, Some(meta)).unwrap()).unwrap();
}

#[test]
fn huge_but_consistent_structures_are_errors_before_anything_is_allocated() {
    let dir = std::env::temp_dir().join(format!("xprune-graph-huge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("huge.safetensors");
    // Parameter-free nodes whose sizes fit together: a shuffle of 13.5e9 channels (its
    // permutation alone would take 108 GB), a flatten of 13.5e9 values, shapes whose value
    // count overflows, and many nodes whose channels add up beyond the bound.
    let cases = [
        (
            r#"[{"name":"input","op":"input","shape":{"spatial":[13500000000,1,1]}},
                {"name":"shuffle","op":"channel_shuffle","groups":2,"inputs":["input"]}]"#,
            "shuffle",
            "`input`",
        ),
        (
            r#"[{"name":"input","op":"input","shape":{"spatial":[3,60000,75000]}},
                {"name":"flatten","op":"flatten","inputs":["input"]}]"#,
            "flatten",
            "`input`",
        ),
        (
            r#"[{"name":"input","op":"input","shape":{"spatial":[1,4294967296,4294967296]}},
                {"name":"relu","op":"relu","inputs":["input"]}]"#,
            "relu",
            "`input`",
        ),
    ];
    for (nodes, output, named) in cases {
        structure_file(&path, nodes, output);
        let err = Graph::load(&path, &device()).unwrap_err().to_string();
        assert!(
            err.contains(named) && err.contains("values per sample"),
            "{err}"
        );
    }
    // 80 relus of a 2^20-channel flat input: each fits, together they exceed the bound.
    let mut nodes = vec![r#"{"name":"input","op":"input","shape":{"flat":1048576}}"#.to_string()];
    for i in 0..80 {
        let prev = if i == 0 {
            "input".to_string()
        } else {
            format!("r{}", i - 1)
        };
        nodes.push(format!(
            r#"{{"name":"r{i}","op":"relu","inputs":["{prev}"]}}"#
        ));
    }
    structure_file(&path, &format!("[{}]", nodes.join(",")), "r79");
    let err = Graph::load(&path, &device()).unwrap_err().to_string();
    assert!(err.contains(&MAX_GRAPH_CHANNELS.to_string()), "{err}");
    // The bounds are far above real models: a 224x224 ImageNet input and a wide map fit.
    assert!(FeatureShape::spatial(3, 224, 224).check_size().is_ok());
    assert!(FeatureShape::spatial(256, 512, 512).check_size().is_ok());
    assert!(FeatureShape::spatial(257, 1024, 1024).check_size().is_err());
    std::fs::remove_dir_all(&dir).ok();
}
