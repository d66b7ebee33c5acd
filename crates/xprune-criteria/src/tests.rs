//! Tests of the criteria on small networks whose answers are known by hand.

use crate::shapley::{
    CoalitionGame, GraphGame, NaiveGraphGame, SampleAggregate, ShapleyMethod, shapley_values,
};
use crate::*;
use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use xprune_graph::{Dataset, FeatureShape, Graph, GraphBuilder, Layer};
use xprune_surgery::ChannelGroups;

fn device() -> Device {
    Device::flex()
}

/// 2 -> 4 (relu) -> 3 MLP with the given weights (Burn layout `[in, out]`), zero biases.
fn mlp_with(w1: [[f32; 4]; 2], w2: [[f32; 3]; 4]) -> Graph {
    let d = device();
    let mut b = GraphBuilder::new(FeatureShape::flat(2), &d);
    let x = b.linear("fc1", b.input(), 4).unwrap();
    let x = b.relu("relu1", x).unwrap();
    let o = b.linear("fc2", x, 3).unwrap();
    let g = b.build(o).unwrap();
    let set = |g: &Graph, name: &str, w: Vec<f32>, dims: [usize; 2]| {
        let id = g.find(name).unwrap();
        let Layer::Linear(mut l) = g.layer(id).unwrap().clone() else {
            unreachable!()
        };
        l.weight = Param::from_tensor(Tensor::from_data(TensorData::new(w, dims), &d));
        l.bias = Some(Param::from_tensor(Tensor::zeros([dims[1]], &d)));
        g.with_layer(id, Layer::Linear(l)).unwrap()
    };
    let g = set(&g, "fc1", w1.iter().flatten().copied().collect(), [2, 4]);
    set(&g, "fc2", w2.iter().flatten().copied().collect(), [4, 3])
}

fn example() -> Graph {
    // Hidden unit 3 has no outgoing weights (dead), unit 2 has small ones.
    mlp_with(
        [[1.0, -0.5, 0.3, 2.0], [0.5, 1.0, -0.2, 1.0]],
        [
            [1.0, -1.0, 0.5],
            [-0.5, 1.0, 0.2],
            [0.1, 0.05, -0.1],
            [0.0, 0.0, 0.0],
        ],
    )
}

fn data() -> Dataset {
    Dataset::new(
        vec![1.0, 0.5, 0.2, 1.0, 1.5, -0.3, 0.7, 0.9, -0.4, 1.2, 1.0, 1.0],
        vec![0, 1, 2, 0, 1, 2],
        FeatureShape::flat(2),
        3,
    )
    .unwrap()
}

fn hidden_scores(c: &dyn Criterion, g: &Graph, d: &Dataset) -> Vec<f64> {
    let dev = device();
    let groups = ChannelGroups::new(g);
    let ctx = ScoringContext::new(g, &groups, &dev)
        .with_data(d)
        .with_batch_size(4);
    let s = c.score(&ctx).unwrap();
    s.check_complete(&groups).unwrap();
    s.by_name("fc1").unwrap().to_vec()
}

#[test]
fn weight_norms_by_hand() {
    let g = example();
    let l1 = hidden_scores(&WeightNorm::l1(), &g, &data());
    assert_eq!(l1.len(), 4);
    let expect = [1.5, 1.5, 0.5, 3.0];
    for (a, b) in l1.iter().zip(expect) {
        assert!((a - b).abs() < 1e-6, "{l1:?}");
    }
    let l2 = hidden_scores(&WeightNorm::l2(), &g, &data());
    assert!((l2[3] - 5f64.sqrt()).abs() < 1e-6);
}

/// dL/da for the example, computed by hand in f64: a = relu(x W1), z = a W2,
/// dL/da = (softmax(z) - onehot(y)) W2^T.
fn manual_grad_taylor(g_sum: &mut [f64; 4], t_sum: &mut [f64; 4]) {
    let w1 = [[1.0, -0.5, 0.3, 2.0], [0.5, 1.0, -0.2, 1.0]];
    let w2 = [
        [1.0, -1.0, 0.5],
        [-0.5, 1.0, 0.2],
        [0.1, 0.05, -0.1],
        [0.0, 0.0, 0.0],
    ];
    let d = data();
    for n in 0..d.len() {
        let x = d.sample(n);
        let a: Vec<f64> = (0..4)
            .map(|j| (x[0] as f64 * w1[0][j] + x[1] as f64 * w1[1][j]).max(0.0))
            .collect();
        let z: Vec<f64> = (0..3)
            .map(|k| (0..4).map(|j| a[j] * w2[j][k]).sum())
            .collect();
        let m = z.iter().cloned().fold(f64::MIN, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        let y = d.labels()[n] as usize;
        for j in 0..4 {
            let grad: f64 = (0..3)
                .map(|k| (e[k] / s - if k == y { 1.0 } else { 0.0 }) * w2[j][k])
                .sum();
            g_sum[j] += grad;
            t_sum[j] += grad * a[j];
        }
    }
}

#[test]
fn gradient_and_taylor_match_hand_derivatives() {
    let g = example();
    let (mut gs, mut ts) = ([0.0; 4], [0.0; 4]);
    manual_grad_taylor(&mut gs, &mut ts);
    let n = data().len() as f64;
    let grad = hidden_scores(&Gradient::default(), &g, &data());
    let taylor = hidden_scores(&Taylor::default(), &g, &data());
    for j in 0..4 {
        assert!(
            (grad[j] - (gs[j] / n).abs()).abs() < 1e-5,
            "gradient {grad:?} vs {gs:?}"
        );
        assert!(
            (taylor[j] - (ts[j] / n).abs()).abs() < 1e-5,
            "taylor {taylor:?} vs {ts:?}"
        );
    }
    assert_eq!(taylor[3], 0.0, "a dead unit has zero Taylor score");
}

#[test]
fn random_is_seeded() {
    let g = example();
    let groups = ChannelGroups::new(&g);
    let dev = device();
    let a = RandomCriterion
        .score(&ScoringContext::new(&g, &groups, &dev).with_seed(3))
        .unwrap();
    let b = RandomCriterion
        .score(&ScoringContext::new(&g, &groups, &dev).with_seed(3))
        .unwrap();
    let c = RandomCriterion
        .score(&ScoringContext::new(&g, &groups, &dev).with_seed(4))
        .unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn data_criteria_need_data() {
    let g = example();
    let groups = ChannelGroups::new(&g);
    let dev = device();
    let err = Taylor::default()
        .score(&ScoringContext::new(&g, &groups, &dev))
        .unwrap_err();
    assert!(matches!(err, CriterionError::NeedsData(_)), "{err}");
    let wrong = Dataset::new(vec![0.0; 3], vec![0], FeatureShape::flat(3), 3).unwrap();
    let err = Taylor::default()
        .score(&ScoringContext::new(&g, &groups, &dev).with_data(&wrong))
        .unwrap_err();
    assert!(
        err.to_string().contains("[3]") && err.to_string().contains("[2]"),
        "{err}"
    );
}

#[test]
fn batched_game_equals_naive_game_and_shapley_is_exact() {
    let g = example();
    let groups = ChannelGroups::new(&g);
    let group = groups.find("fc1").unwrap();
    let d = data();
    let dev = device();
    let mut fast = GraphGame::new(&g, group, &d, 4, &dev).unwrap();
    let mut naive = NaiveGraphGame::new(&g, group, &d, 4, &dev).unwrap();
    let coalitions: Vec<Vec<bool>> = (0..16)
        .map(|m| (0..4).map(|i| m >> i & 1 == 1).collect())
        .collect();
    let a = fast.values(&coalitions).unwrap();
    let b = naive.values(&coalitions).unwrap();
    for (ra, rb) in a.iter().zip(&b) {
        for (x, y) in ra.iter().zip(rb) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }
    let exact = shapley_values(
        &mut fast,
        &ShapleyMethod::Exact,
        SampleAggregate::Mean,
        16,
        0,
    )
    .unwrap();
    // The dead unit changes nothing: its Shapley value is exactly zero.
    assert!(exact.values[3].abs() < 1e-9, "{:?}", exact.values);
    let sum: f64 = exact.values.iter().sum();
    assert!((sum - (exact.full - exact.empty)).abs() < 1e-9);
    // The criterion uses exact enumeration for small groups.
    let s = hidden_scores(&Shapley::default(), &g, &d);
    for (x, y) in s.iter().zip(&exact.values) {
        assert!((x - y).abs() < 1e-6);
    }
}

/// Hidden activations and logits of the example, by hand.
fn forward_by_hand(x: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let w1 = [[1.0, -0.5, 0.3, 2.0], [0.5, 1.0, -0.2, 1.0]];
    let w2 = [
        [1.0, -1.0, 0.5],
        [-0.5, 1.0, 0.2],
        [0.1, 0.05, -0.1],
        [0.0, 0.0, 0.0],
    ];
    let a: Vec<f64> = (0..4)
        .map(|j| (x[0] as f64 * w1[0][j] + x[1] as f64 * w1[1][j]).max(0.0))
        .collect();
    let z: Vec<f64> = (0..3)
        .map(|k| (0..4).map(|j| a[j] * w2[j][k]).sum())
        .collect();
    (a, z)
}

const W2: [[f64; 3]; 4] = [
    [1.0, -1.0, 0.5],
    [-0.5, 1.0, 0.2],
    [0.1, 0.05, -0.1],
    [0.0, 0.0, 0.0],
];

#[test]
fn lrp_scores_by_hand() {
    // Epsilon on the output layer with the label logit as initial relevance and zero biases:
    // R_j = a_j * w2[j, y] / z_y * z_y = a_j * w2[j, y].
    let d = data();
    let mut expect = [0.0f64; 4];
    for n in 0..d.len() {
        let (a, _) = forward_by_hand(d.sample(n));
        let y = d.labels()[n] as usize;
        for j in 0..4 {
            expect[j] += a[j] * W2[j][y];
        }
    }
    let s = hidden_scores(&LrpCriterion::default(), &example(), &d);
    for j in 0..4 {
        assert!(
            (s[j] - expect[j]).abs() < 1e-4 * (1.0 + expect[j].abs()),
            "{s:?} vs {expect:?}"
        );
    }
    assert_eq!(s[3], 0.0);
    let abs = LrpCriterion {
        aggregation: Aggregation::Absolute,
        ..LrpCriterion::default()
    };
    let sa = hidden_scores(&abs, &example(), &d);
    assert!(sa.iter().zip(&s).all(|(a, b)| *a >= b.abs() - 1e-6));
}

#[test]
fn feature_relevance_by_hand() {
    // One-hot initial relevance, epsilon on linear layers: R_j = a_j * w2[j, y] / z_y.
    let d = data();
    let mut per_class = [[0.0f64; 4]; 3];
    let mut seen = [0usize; 3];
    let mut correct = [0usize; 3];
    for n in 0..d.len() {
        let (a, z) = forward_by_hand(d.sample(n));
        let y = d.labels()[n] as usize;
        seen[y] += 1;
        let pred = (0..3).max_by(|i, j| z[*i].total_cmp(&z[*j])).unwrap();
        if pred == y {
            correct[y] += 1;
        }
        for j in 0..4 {
            per_class[y][j] += a[j] * W2[j][y] / z[y];
        }
    }
    let acc: Vec<f64> = (0..3).map(|c| correct[c] as f64 / seen[c] as f64).collect();
    let max = acc.iter().cloned().fold(0.0, f64::max);
    let mut s = [0.0f64; 4];
    for c in 0..3 {
        let w = class_weight(acc[c], max);
        for j in 0..4 {
            s[j] += w * per_class[c][j] / seen[c] as f64;
        }
    }
    let norm = s.iter().map(|v| v * v).sum::<f64>().sqrt();
    let expect: Vec<f64> = s.iter().map(|v| v.abs() / norm).collect();
    let got = hidden_scores(&FeatureRelevance::default(), &example(), &d);
    for j in 0..4 {
        assert!((got[j] - expect[j]).abs() < 1e-4, "{got:?} vs {expect:?}");
    }
    assert!((class_weight(1.0, 1.0) - 1.0 / (1.0 + (-1.0f64).exp())).abs() < 1e-12);
    assert_eq!(class_weight(0.0, 1.0), 1.0);
}

/// A criterion written by a user in a few lines: the mean absolute activation of each
/// channel (Hu et al.'s APoZ family), using the library's helpers.
struct MeanActivation;

impl Criterion for MeanActivation {
    fn name(&self) -> String {
        "mean-activation".into()
    }
    fn needs(&self) -> Needs {
        Needs::Data
    }
    fn score(&self, ctx: &ScoringContext<'_>) -> Result<Scores> {
        let data = ctx.require_data("mean-activation")?;
        let rec = ctx
            .graph
            .forward_recorded(data.to_batch(ctx.device)?.inputs)?;
        let mut scores = Scores::new(self.name());
        for g in ctx.groups.prunable() {
            let mut s = vec![0.0; g.channels()];
            for slot in sites::consumer_sites(ctx.graph, g) {
                let a = xprune_graph::map_activation!(
                    rec.get(slot.node).expect("recorded").clone(),
                    t => t.abs()
                );
                let sums = sites::channel_sums(&a, &slot, g.channels()).sum_dim(0);
                for (acc, v) in s.iter_mut().zip(xprune_graph::tensor_util::to_vec(&sums)) {
                    *acc += v as f64;
                }
            }
            scores.insert(ctx.groups, g.id(), s)?;
        }
        Ok(scores)
    }
}

#[test]
fn a_custom_criterion_plugs_in() {
    let d = data();
    let s = hidden_scores(&MeanActivation, &example(), &d);
    let mut expect = [0.0f64; 4];
    for n in 0..d.len() {
        let (a, _) = forward_by_hand(d.sample(n));
        for j in 0..4 {
            expect[j] += a[j];
        }
    }
    for j in 0..4 {
        assert!((s[j] - expect[j]).abs() < 1e-4, "{s:?} vs {expect:?}");
    }
}

#[test]
fn batched_game_equals_naive_game_on_conv_and_residual_groups() {
    // The cached game resumes after a group's first masked node (its cached value is masked by
    // the resumed run): check it against full masked passes on every group of a small ResNet
    // (residual groups masked at several nodes, and conv groups).
    let dev = device();
    let g = xprune_models::resnet_cifar(
        xprune_models::ResNetCifarDepth::ResNet20,
        FeatureShape::spatial(3, 8, 8),
        3,
        0.25,
        &dev,
        5,
    )
    .unwrap();
    let n = 5;
    let features: Vec<f32> = (0..n * 3 * 64)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 3).collect();
    let d = Dataset::new(features, labels, FeatureShape::spatial(3, 8, 8), 3).unwrap();
    let groups = ChannelGroups::new(&g);
    let mut checked = 0;
    for group in groups.prunable() {
        let c = group.channels();
        let coalitions: Vec<Vec<bool>> = (0..5)
            .map(|m| (0..c).map(|i| (i * 7 + m * 3) % 5 < m).collect())
            .collect();
        let a = GraphGame::new(&g, group, &d, 2, &dev)
            .unwrap()
            .values(&coalitions)
            .unwrap();
        let b = NaiveGraphGame::new(&g, group, &d, 2, &dev)
            .unwrap()
            .values(&coalitions)
            .unwrap();
        for (ra, rb) in a.iter().zip(&b) {
            for (x, y) in ra.iter().zip(rb) {
                assert!((x - y).abs() < 1e-4, "group {}: {x} vs {y}", group.name());
            }
        }
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} groups");
}
