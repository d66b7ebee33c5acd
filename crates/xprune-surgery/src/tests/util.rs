//! Test helpers: a seeded generator, random inputs, random batch-norm statistics, random
//! plans and the masked-versus-pruned comparison.

use crate::{ChannelGroups, PrunePlan, count, prune};
use burn::module::Module;
use burn::tensor::{Device, TensorData};
use std::path::Path;
use xprune_graph::{Activation, FeatureShape, Graph};

/// SplitMix64: small, seeded and good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// `k` distinct values of `0..n`.
    pub fn choose(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..n).collect();
        for i in 0..k {
            let j = i + self.below(n - i);
            all.swap(i, j);
        }
        all.truncate(k);
        all
    }
}

/// A batch of `batch` random samples of `shape`.
pub fn input(shape: FeatureShape, batch: usize, seed: u64, device: &Device) -> Activation {
    let mut rng = Rng::new(seed);
    let dims = shape.batch_dims(batch);
    let values: Vec<f32> = (0..dims.iter().product::<usize>())
        .map(|_| rng.range(-1.0, 1.0))
        .collect();
    Activation::from_vec(values, &dims, device).expect("dims match")
}

/// The graph with random batch-norm statistics and affine parameters (and random layer-norm,
/// layer-scale and PReLU parameters), so that a batch norm does not map a zeroed channel to
/// zero and slicing mistakes of per-channel parameters show.
pub fn randomize_batch_norms(graph: &Graph, seed: u64) -> Graph {
    let mut rng = Rng::new(seed);
    let originals = graph.named_tensors();
    let device = graph.device();
    graph
        .with_tensors(
            |name| {
                let (_, data) = originals
                    .iter()
                    .find(|(n, _)| n == name)
                    .expect("known tensor");
                let dims = data.shape().as_slice().to_vec();
                let n: usize = dims.iter().product();
                let kind = name
                    .rsplit_once('.')
                    .and_then(|(node, _)| graph.find(node).ok())
                    .map(|id| graph.nodes()[id].op.kind_name());
                let values: Option<Vec<f32>> = if name.ends_with(".running_var") {
                    Some((0..n).map(|_| rng.range(0.5, 1.5)).collect())
                } else if name.ends_with(".gamma") {
                    Some((0..n).map(|_| rng.range(0.5, 1.5)).collect())
                } else if name.ends_with(".beta") || name.ends_with(".running_mean") {
                    Some((0..n).map(|_| rng.range(-0.5, 0.5)).collect())
                } else if name.ends_with(".alpha") {
                    Some((0..n).map(|_| rng.range(0.05, 0.5)).collect())
                } else if kind == Some("scale") {
                    Some((0..n).map(|_| rng.range(0.5, 1.5)).collect())
                } else {
                    None
                };
                Ok(match values {
                    Some(v) => TensorData::new(v, dims),
                    None => data.clone(),
                })
            },
            &device,
            Path::new("<test>"),
        )
        .expect("same shapes")
}

/// A random plan: each prunable group loses, with probability 0.8, a random number of
/// channels between 0 and all but one.
pub fn random_plan(groups: &ChannelGroups, seed: u64) -> PrunePlan {
    let mut rng = Rng::new(seed);
    let mut plan = PrunePlan::new();
    for g in groups.prunable() {
        if rng.unit() < 0.8 {
            let k = rng.below(g.channels());
            let mut chosen = rng.choose(g.channels(), k);
            // Keep a channel at every node (a group split across nodes could lose one part).
            loop {
                plan.insert(g.name(), chosen.clone());
                match plan.resolve(groups) {
                    Err(crate::SurgeryError::EmptyNode { .. }) if !chosen.is_empty() => {
                        chosen.pop();
                    }
                    _ => break,
                }
            }
        }
    }
    plan
}

/// `max |a - b| / max |b|`.
pub fn rel_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "output sizes differ");
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs() as f64)).max(1e-12);
    let diff = a
        .iter()
        .zip(b)
        .fold(0f64, |m, (x, y)| m.max((*x as f64 - *y as f64).abs()));
    diff / scale
}

/// Prunes `graph` with random plans and checks, for each seed: the pruned output equals the
/// masked output within 1e-5 relative; the pruned graph is smaller exactly when the plan
/// removes something; the original graph is unchanged. Returns the pruned graphs with their
/// plans for further checks.
pub fn check_random_plans(
    graph: &Graph,
    seeds: &[u64],
    device: &Device,
) -> Vec<(PrunePlan, Graph)> {
    let groups = ChannelGroups::new(graph);
    let x = input(graph.input_shape(), 3, 99, device);
    let before = graph.forward(x.clone()).unwrap().to_vec();
    let tensors_before = graph.named_tensors();
    let mut out = Vec::new();
    for &seed in seeds {
        let plan = random_plan(&groups, seed);
        let pruned = prune(graph, &groups, &plan).unwrap();
        let masks = plan.masks(graph, &groups, device).unwrap();
        let masked = graph.forward_masked(x.clone(), &masks).unwrap().to_vec();
        let got = pruned.forward(x.clone()).unwrap().to_vec();
        let rel = rel_diff(&got, &masked);
        assert!(
            rel <= 1e-5,
            "seed {seed}: pruned and masked outputs differ by {rel:e} (relative)\nplan: {plan:?}"
        );
        assert!(
            masked.iter().any(|v| *v != 0.0),
            "seed {seed}: masked output is all zero"
        );
        let (c0, c1) = (count(graph), count(&pruned));
        if plan.is_empty() {
            assert_eq!(c0, c1);
        } else {
            assert!(
                c1.params < c0.params,
                "seed {seed}: {c1} not smaller than {c0}"
            );
        }
        assert_eq!(
            (c1.params + c1.buffers) as usize,
            pruned.num_params(),
            "seed {seed}"
        );
        out.push((plan, pruned));
    }
    // The original is untouched.
    assert_eq!(graph.forward(x).unwrap().to_vec(), before);
    let tensors_after = graph.named_tensors();
    assert_eq!(tensors_before.len(), tensors_after.len());
    for ((n0, d0), (n1, d1)) in tensors_before.iter().zip(&tensors_after) {
        assert_eq!(n0, n1);
        assert_eq!(d0.as_bytes(), d1.as_bytes(), "tensor {n0} changed");
    }
    out
}

/// Kept channels of a group after a plan.
pub fn kept(groups: &ChannelGroups, plan: &PrunePlan, group: &str) -> u64 {
    let g = groups
        .find(group)
        .unwrap_or_else(|| panic!("no group `{group}`:\n{groups}"));
    let resolved = plan.resolve(groups).unwrap();
    (g.channels() - resolved.removed(g.id()).len()) as u64
}
