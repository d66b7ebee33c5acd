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

/// dL_n/da for the example, computed by hand in f64 per sample: a = relu(x W1), z = a W2,
/// dL_n/da = (softmax(z) - onehot(y)) W2^T. Returns `(g, a * g)`, `[sample][unit]`.
fn manual_grad_taylor() -> (Vec<[f64; 4]>, Vec<[f64; 4]>) {
    let w1 = [[1.0, -0.5, 0.3, 2.0], [0.5, 1.0, -0.2, 1.0]];
    let w2 = [
        [1.0, -1.0, 0.5],
        [-0.5, 1.0, 0.2],
        [0.1, 0.05, -0.1],
        [0.0, 0.0, 0.0],
    ];
    let d = data();
    let (mut gs, mut ts) = (Vec::new(), Vec::new());
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
        let (mut g, mut t) = ([0.0; 4], [0.0; 4]);
        for j in 0..4 {
            g[j] = (0..3)
                .map(|k| (e[k] / s - if k == y { 1.0 } else { 0.0 }) * w2[j][k])
                .sum();
            t[j] = g[j] * a[j];
        }
        gs.push(g);
        ts.push(t);
    }
    (gs, ts)
}

#[test]
fn gradient_and_taylor_match_hand_derivatives() {
    let g = example();
    let (gs, ts) = manual_grad_taylor();
    let n = gs.len() as f64;
    let per_sample = |v: &[[f64; 4]], j: usize| v.iter().map(|s| s[j].abs()).sum::<f64>() / n;
    let of_mean = |v: &[[f64; 4]], j: usize| (v.iter().map(|s| s[j]).sum::<f64>() / n).abs();
    let grad = hidden_scores(&Gradient::default(), &g, &data());
    let taylor = hidden_scores(&Taylor::default(), &g, &data());
    let grad_batch = hidden_scores(&Gradient::batch(), &g, &data());
    let taylor_batch = hidden_scores(&Taylor::batch(), &g, &data());
    let mut differ = 0;
    for j in 0..4 {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-5;
        assert!(
            close(grad[j], per_sample(&gs, j)),
            "gradient {grad:?} vs {gs:?}"
        );
        assert!(
            close(taylor[j], per_sample(&ts, j)),
            "taylor {taylor:?} vs {ts:?}"
        );
        assert!(
            close(grad_batch[j], of_mean(&gs, j)),
            "{grad_batch:?} vs {gs:?}"
        );
        assert!(close(taylor_batch[j], of_mean(&ts, j)), "{taylor_batch:?}");
        if (per_sample(&ts, j) - of_mean(&ts, j)).abs() > 1e-3 {
            differ += 1;
        }
    }
    assert!(
        differ >= 2,
        "the data must make the two forms differ: {ts:?}"
    );
    assert_eq!(taylor[3], 0.0, "a dead unit has zero Taylor score");
    assert_eq!(Taylor::default().name(), "taylor");
    assert_eq!(Taylor::batch().name(), "taylor-batch");
    assert_eq!(Gradient::batch().name(), "gradient-batch");
}

/// A tiny ResNet (batch norms, convolutions, residual groups) and `n` reference samples.
fn small_resnet(n: usize) -> (Graph, Dataset) {
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
    let features: Vec<f32> = (0..n * 3 * 64)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 3).collect();
    let d = Dataset::new(features, labels, FeatureShape::spatial(3, 8, 8), 3).unwrap();
    (g, d)
}

/// Per-sample Taylor and gradient scores of conv and residual groups (batch norm in eval
/// mode, batches of 4 of 6 samples), against independent computations: one backward pass
/// per sample (a context of one sample, where both forms agree), and for Taylor also central
/// finite differences of masked forward passes (`sum_p a dL_n/da` of sample `n` is the
/// derivative of its loss with respect to a scale of channel `k` at the site). The old batch
/// formula fails this test.
#[test]
fn per_sample_taylor_and_gradient_match_finite_differences_and_single_samples() {
    use crate::loss::per_sample_cross_entropy;
    use xprune_graph::ChannelMasks;
    use xprune_graph::tensor_util::to_vec;
    let dev = device();
    let (g, d) = small_resnet(6);
    let groups = ChannelGroups::new(&g);
    let ctx = ScoringContext::new(&g, &groups, &dev)
        .with_data(&d)
        .with_batch_size(4);
    let taylor = Taylor::default().score(&ctx).unwrap();
    let taylor_batch = Taylor::batch().score(&ctx).unwrap();
    let grad = Gradient::default().score(&ctx).unwrap();
    let singles: Vec<Scores> = (0..d.len())
        .map(|n| {
            let one = d.subset(&[n]).unwrap();
            Gradient::batch()
                .score(&ScoringContext::new(&g, &groups, &dev).with_data(&one))
                .unwrap()
        })
        .collect();
    let singles_t: Vec<Scores> = (0..d.len())
        .map(|n| {
            let one = d.subset(&[n]).unwrap();
            Taylor::batch()
                .score(&ScoringContext::new(&g, &groups, &dev).with_data(&one))
                .unwrap()
        })
        .collect();
    let batch = d.to_batch(&dev).unwrap();
    let loss = |masks: &ChannelMasks| -> Vec<f64> {
        let logits = g
            .forward_masked(batch.inputs.clone(), masks)
            .unwrap()
            .flatten();
        to_vec(&per_sample_cross_entropy(logits, batch.labels.clone()))
            .iter()
            .map(|v| *v as f64)
            .collect()
    };
    let h = 1e-3f32;
    let (mut checked, mut differ, mut close_to_fd) = (0, 0, 0);
    for group in groups.prunable().take(4) {
        let c = group.channels();
        let slots = sites::consumer_sites(&g, group);
        for k in 0..c {
            let mut expect = 0.0;
            for slot in &slots {
                let channels = g.node(slot.node).unwrap().shape.channels();
                let scaled = |f: f32| {
                    let mut m = vec![1.0f32; channels];
                    for i in slot.indices(k) {
                        m[i] = f;
                    }
                    let mut masks = ChannelMasks::new();
                    masks.insert(
                        slot.node,
                        Tensor::from_data(TensorData::new(m, [1, channels]), &dev),
                    );
                    loss(&masks)
                };
                let (up, down) = (scaled(1.0 + h), scaled(1.0 - h));
                let positions = sites::values_per_channel(&g, slot) as f64;
                expect += up
                    .iter()
                    .zip(&down)
                    .map(|(u, v)| ((u - v) / (2.0 * h as f64) / positions).abs())
                    .sum::<f64>()
                    / d.len() as f64;
            }
            let got = taylor.get(group.id()).unwrap()[k];
            let single_t = singles_t
                .iter()
                .map(|s| s.get(group.id()).unwrap()[k])
                .sum::<f64>()
                / d.len() as f64;
            assert!(
                (got - single_t).abs() <= 1e-9 + 1e-6 * single_t,
                "group {} channel {k}: taylor {got} vs per-sample passes {single_t}",
                group.name()
            );
            // Central differences straddle ReLU kinks now and then (they converge to the
            // derivative as h shrinks, until f32 rounding takes over): most channels agree.
            if (got - expect).abs() <= 1e-5 + 0.03 * expect {
                close_to_fd += 1;
            }
            if (taylor_batch.get(group.id()).unwrap()[k] - expect).abs() > 0.1 * expect + 1e-4 {
                differ += 1;
            }
            let single = singles
                .iter()
                .map(|s| s.get(group.id()).unwrap()[k])
                .sum::<f64>()
                / d.len() as f64;
            let got = grad.get(group.id()).unwrap()[k];
            assert!(
                (got - single).abs() <= 1e-5 + 1e-4 * single,
                "group {} channel {k}: gradient {got} vs per-sample passes {single}",
                group.name()
            );
            checked += 1;
        }
    }
    assert!(checked >= 16, "only {checked} channels");
    assert!(
        close_to_fd * 10 >= checked * 8,
        "only {close_to_fd} of {checked} channels match finite differences"
    );
    assert!(
        differ * 4 >= checked,
        "the batch form differs on only {differ} of {checked}"
    );
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
    let (g, d) = small_resnet(5);
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

/// conv(1->12, 3x3) - relu - max pool - flatten - linear(3) on 6x6 inputs, and 8 samples.
fn small_cnn() -> (Graph, Dataset) {
    use xprune_graph::Conv2dSpec;
    let dev = device();
    let mut b = GraphBuilder::new(FeatureShape::spatial(1, 6, 6), &dev).seed(3);
    let x = b
        .conv2d("conv1", b.input(), Conv2dSpec::new(12, 3).padding(1))
        .unwrap();
    let x = b.relu("relu1", x).unwrap();
    let x = b.max_pool2d("pool1", x, 2, 2).unwrap();
    let x = b.flatten("flatten", x).unwrap();
    let o = b.linear("fc", x, 3).unwrap();
    let g = b.build(o).unwrap();
    let n = 8;
    let features: Vec<f32> = (0..n * 36)
        .map(|i| ((i * 53 % 97) as f32 / 48.0) - 1.0)
        .collect();
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 3).collect();
    (
        g,
        Dataset::new(features, labels, FeatureShape::spatial(1, 6, 6), 3).unwrap(),
    )
}

/// The cached game of the Shapley criterion, recording every coalition it is asked for.
struct Recorded {
    game: GraphGame,
    asked: Vec<(Vec<bool>, Vec<f64>)>,
}

impl CoalitionGame for Recorded {
    type Error = CriterionError;
    fn players(&self) -> usize {
        self.game.players()
    }
    fn samples(&self) -> usize {
        self.game.samples()
    }
    fn values(&mut self, coalitions: &[Vec<bool>]) -> Result<Vec<Vec<f64>>> {
        let v = self.game.values(coalitions)?;
        self.asked
            .extend(coalitions.iter().cloned().zip(v.iter().cloned()));
        Ok(v)
    }
}

/// Permutation sampling on a 12-channel convolution against exact enumeration of the same
/// game (4096 coalitions): every estimate is within 4 standard errors of the exact value and
/// the rankings agree; every coalition the sampler asked the cached game for (with and
/// without truncation) has the value of a fresh masked forward pass of the whole network.
#[test]
fn shapley_sampling_matches_exact_enumeration_and_fresh_masked_passes() {
    let dev = device();
    let (g, d) = small_cnn();
    let groups = ChannelGroups::new(&g);
    let group = groups.find("conv1").unwrap();
    let mut game = GraphGame::new(&g, group, &d, 8, &dev).unwrap();
    let exact = shapley_values(
        &mut game,
        &ShapleyMethod::Exact,
        SampleAggregate::Mean,
        64,
        0,
    )
    .unwrap();
    let spread = {
        let v = &exact.values;
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt()
    };
    assert!(spread > 1e-4, "a degenerate game: {:?}", exact.values);
    let ctx = ScoringContext::new(&g, &groups, &dev)
        .with_data(&d)
        .with_seed(2);
    let sampled = Shapley {
        permutations: 64,
        tolerance: None,
        exact_max_channels: 0,
        ..Shapley::default()
    }
    .score(&ctx)
    .unwrap();
    let values = sampled.get(group.id()).unwrap();
    let u = sampled.uncertainty(group.id()).unwrap();
    assert_eq!(u.draws, 64);
    let se = u.std_errors.as_ref().unwrap();
    for k in 0..12 {
        assert!(
            (values[k] - exact.values[k]).abs() <= 4.0 * se[k] + 1e-9,
            "channel {k}: {} vs exact {} (SE {})",
            values[k],
            exact.values[k],
            se[k]
        );
    }
    let order = |v: &[f64]| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|a, b| v[*a].total_cmp(&v[*b]));
        idx
    };
    let (a, b) = (order(values), order(&exact.values));
    let same_bottom_half = a[..6].iter().filter(|k| b[..6].contains(k)).count();
    assert!(same_bottom_half >= 5, "{a:?} vs exact {b:?}");
    // Exact enumeration reports zero standard errors through the criterion too.
    let exact_scores = Shapley {
        exact_max_channels: 12,
        ..Shapley::default()
    }
    .score(&ScoringContext::new(&g, &groups, &dev).with_data(&d))
    .unwrap();
    let u = exact_scores.uncertainty(group.id()).unwrap();
    assert_eq!((u.draws, u.std_errors.clone()), (0, Some(vec![0.0; 12])));
    // The coalitions the sampler evaluates, against fresh masked passes.
    let mut naive = NaiveGraphGame::new(&g, group, &d, 8, &dev).unwrap();
    for truncation in [None, Some(0.05)] {
        let mut recorded = Recorded {
            game: GraphGame::new(&g, group, &d, 3, &dev).unwrap(),
            asked: Vec::new(),
        };
        let method = ShapleyMethod::Permutations {
            permutations: 3,
            antithetic: true,
            truncation,
        };
        shapley_values(&mut recorded, &method, SampleAggregate::Mean, 5, 4).unwrap();
        assert!(recorded.asked.len() > 12, "{}", recorded.asked.len());
        let coalitions: Vec<Vec<bool>> = recorded.asked.iter().map(|(c, _)| c.clone()).collect();
        let fresh = naive.values(&coalitions).unwrap();
        for ((c, v), f) in recorded.asked.iter().zip(&fresh) {
            for (x, y) in v.iter().zip(f) {
                assert!(
                    (x - y).abs() < 1e-5,
                    "coalition {c:?}: cached {x} vs fresh {y}"
                );
            }
        }
    }
}
