//! Relevance through vision transformers: the attention kind's two rules (AttnLRP's uniform
//! rule, CP-LRP's constant weights) against dense float64 loops, the token rearrangements'
//! conservation, and a whole torchvision ViT against the float64 reference of
//! `tests/fixtures/vit/make_fixtures.py` (logits within 1e-5; input relevance within 2e-3 of
//! the largest |R| for the composites `attnlrp` and `cp-lrp`: the epsilon rules' divisions by
//! small sums make this relevance sensitive to rounding, and the same reference evaluated in
//! float32 is 8.5e-4 and 6.0e-4 from its float64 values, as the script prints).

mod common;

use burn::tensor::{DType, Device, Distribution, Int, Tensor, TensorData};
use common::{Rng, host, rel_err, tensor};
use safetensors::SafeTensors;
use std::path::PathBuf;
use xprune_graph::kind::{AttentionRule, Kind};
use xprune_graph::kinds::attention::Attention;
use xprune_graph::{Activation, FeatureShape, LrpView, map_activation};
use xprune_lrp::{Attributor, Composite, Target};
use xprune_models::{VitConfig, vit};

const EPS: f64 = 1e-6;

fn stab(z: f64) -> f64 {
    z + if z >= 0.0 { EPS } else { -EPS }
}

/// Queries, keys, values `[n, l, c]` as host vectors, heads of `d` channels: the output and
/// the relevance of each input for `rule`, by loops in float64.
#[allow(clippy::too_many_arguments)]
fn dense(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    r: &[f64],
    [n, l, c]: [usize; 3],
    d: usize,
    rule: AttentionRule,
) -> (Vec<f64>, [Vec<f64>; 3]) {
    let at = |b: usize, i: usize, ch: usize| (b * l + i) * c + ch;
    let scale = 1.0 / (d as f64).sqrt();
    let mut out = vec![0.0; n * l * c];
    let (mut rq, mut rk, mut rv) = (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
    for b in 0..n {
        for h in 0..c / d {
            let ch = |e: usize| h * d + e;
            for i in 0..l {
                let logits: Vec<f64> = (0..l)
                    .map(|j| {
                        scale
                            * (0..d)
                                .map(|e| q[at(b, i, ch(e))] * k[at(b, j, ch(e))])
                                .sum::<f64>()
                    })
                    .collect();
                let max = logits.iter().cloned().fold(f64::MIN, f64::max);
                let total: f64 = logits.iter().map(|z| (z - max).exp()).sum();
                let a: Vec<f64> = logits.iter().map(|z| (z - max).exp() / total).collect();
                let o: Vec<f64> = (0..d)
                    .map(|e| (0..l).map(|j| a[j] * v[at(b, j, ch(e))]).sum())
                    .collect();
                for e in 0..d {
                    out[at(b, i, ch(e))] = o[e];
                }
                let s: Vec<f64> = (0..d).map(|e| r[at(b, i, ch(e))] / stab(o[e])).collect();
                let share = match rule {
                    AttentionRule::Uniform => 0.5,
                    AttentionRule::ConstantWeights => 1.0,
                };
                let mut ra = vec![0.0; l];
                for j in 0..l {
                    for e in 0..d {
                        let term = a[j] * v[at(b, j, ch(e))] * s[e];
                        rv[at(b, j, ch(e))] += share * term;
                        ra[j] += 0.5 * term;
                    }
                }
                if rule == AttentionRule::ConstantWeights {
                    continue;
                }
                let row: f64 = ra.iter().sum();
                for j in 0..l {
                    let r_logit = logits[j] * (ra[j] - a[j] * row);
                    let t = r_logit / stab(logits[j]);
                    for e in 0..d {
                        let term = scale * q[at(b, i, ch(e))] * k[at(b, j, ch(e))] * t;
                        rq[at(b, i, ch(e))] += 0.5 * term;
                        rk[at(b, j, ch(e))] += 0.5 * term;
                    }
                }
            }
        }
    }
    (out, [rq, rk, rv])
}

#[test]
fn attention_matches_dense_loops_for_both_rules() {
    let dev = Device::flex();
    let mut rng = Rng::new(7);
    let (n, l, c, d) = (2, 5, 12, 4);
    let make = |rng: &mut Rng| rng.vec(n * l * c, -1.5, 1.5);
    let (q, k, v, r) = (
        make(&mut rng),
        make(&mut rng),
        make(&mut rng),
        make(&mut rng),
    );
    let act = |x: &[f32]| Activation::Tokens(tensor(x.to_vec(), [n, l, c], &dev));
    let f64s = |x: &[f32]| x.iter().map(|&y| y as f64).collect::<Vec<_>>();
    let layer = Attention {
        head_dim: d,
        scale: 1.0 / (d as f32).sqrt(),
    };
    let inputs = [act(&q), act(&k), act(&v)];
    let got_out = layer.forward(inputs.to_vec(), false).unwrap().to_vec();
    let LrpView::Attention(lrp) = layer.lrp() else {
        panic!("attention's view")
    };
    for rule in [AttentionRule::Uniform, AttentionRule::ConstantWeights] {
        let (out, want) = dense(
            &f64s(&q),
            &f64s(&k),
            &f64s(&v),
            &f64s(&r),
            [n, l, c],
            d,
            rule,
        );
        let err = rel_err(&f64s(&got_out), &out);
        assert!(err < 1e-5, "output: {err:e}");
        let refs: Vec<&Activation> = inputs.iter().collect();
        let got = lrp.relevance(&refs, act(&r), rule, EPS as f32).unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            match g {
                Some(g) => {
                    let err = rel_err(&f64s(&g.to_vec()), w);
                    assert!(err < 1e-4, "{rule:?} input {i}: {err:e}");
                }
                None => assert!(
                    rule == AttentionRule::ConstantWeights && i < 2 && w.iter().all(|x| *x == 0.0),
                    "{rule:?}: input {i} got no relevance"
                ),
            }
        }
        if rule == AttentionRule::ConstantWeights {
            // With the weights constant the product conserves: all relevance reaches the values.
            let total: f64 = f64s(&r).iter().sum();
            let sum = got[2].as_ref().unwrap().sum();
            assert!(
                (sum - total).abs() < 1e-3 * total.abs().max(1.0),
                "{sum} vs {total}"
            );
        }
    }
}

#[test]
fn attention_rejects_relevance_of_another_shape() {
    let dev = Device::flex();
    let x = Activation::Tokens(Tensor::random(
        [1, 3, 8],
        Distribution::Normal(0.0, 1.0),
        &dev,
    ));
    let bad = Activation::Tokens(Tensor::zeros([1, 4, 8], &dev));
    let layer = Attention {
        head_dim: 4,
        scale: 0.5,
    };
    let LrpView::Attention(lrp) = layer.lrp() else {
        panic!("attention's view")
    };
    let err = lrp
        .relevance(&[&x, &x, &x], bad, AttentionRule::Uniform, 1e-6)
        .unwrap_err();
    assert!(err.contains("relevance has shape"), "{err}");
}

fn tiny_config() -> VitConfig {
    VitConfig {
        patch: 4,
        dim: 16,
        depth: 2,
        heads: 2,
        mlp_dim: 32,
    }
}

#[test]
fn token_rearrangements_conserve_and_the_class_token_keeps_its_share() {
    let dev = Device::flex();
    let g = vit(FeatureShape::spatial(3, 16, 16), 5, tiny_config(), &dev, 3).unwrap();
    let x: Tensor<4> = Tensor::random([2, 3, 16, 16], Distribution::Normal(0.0, 1.0), &dev);
    let rec = g.forward_recorded(x).unwrap();
    let mut seen = Vec::new();
    for (id, node) in g.nodes().iter().enumerate() {
        let LrpView::Redistribute(r) = g.layers()[id].lrp() else {
            continue;
        };
        let inputs: Vec<&Activation> = node.inputs.iter().map(|&i| rec.get(i).unwrap()).collect();
        let out = rec.get(id).unwrap();
        let rel = map_activation!(out.clone(), t => t.random_like(Distribution::Uniform(0.0, 1.0)));
        let back = r.redistribute(&inputs, out, rel.clone()).unwrap();
        let back = back[0].as_ref().unwrap();
        assert_eq!(back.dims(), inputs[0].dims(), "`{}`", node.name);
        let kind = node.op.kind_name();
        let (got, want) = match kind {
            "tokens" | "select_token" => (back.sum(), rel.sum()),
            // The class token (position 0) keeps its relevance, as a bias would.
            "class_token" => {
                let t = rel.as_tokens().unwrap();
                let [_, l, _] = t.dims();
                (
                    back.sum(),
                    Activation::Tokens(t.clone().narrow(1, 1, l - 1)).sum(),
                )
            }
            // x / (x + p) of each value's relevance.
            "position_embedding" => {
                let (xv, ov, rv) = (inputs[0].to_vec(), out.to_vec(), rel.to_vec());
                let want: f64 = xv
                    .iter()
                    .zip(&ov)
                    .zip(&rv)
                    .map(|((x, o), r)| *x as f64 * *r as f64 / stab(*o as f64))
                    .sum();
                (back.sum(), want)
            }
            other => panic!("unexpected redistribution in a ViT: {other}"),
        };
        assert!(
            (got - want).abs() < 1e-3 * want.abs().max(1.0),
            "`{}` ({kind}): {got} vs {want}",
            node.name
        );
        seen.push(kind);
    }
    for kind in [
        "tokens",
        "class_token",
        "position_embedding",
        "select_token",
    ] {
        assert!(seen.contains(&kind), "no {kind} in the ViT: {seen:?}");
    }
}

struct Fixture {
    bytes: Vec<u8>,
}

impl Fixture {
    fn data(&self, name: &str) -> TensorData {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let view = st
            .tensor(name)
            .unwrap_or_else(|_| panic!("vit_tiny.safetensors: no tensor `{name}`"));
        let dtype = match view.dtype() {
            safetensors::Dtype::F32 => DType::F32,
            safetensors::Dtype::I64 => DType::I64,
            other => panic!("unexpected dtype {other:?}"),
        };
        TensorData::from_bytes_vec(view.data().to_vec(), view.shape().to_vec(), dtype)
    }

    fn f64s(&self, name: &str) -> Vec<f64> {
        self.data(name)
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect()
    }
}

#[test]
fn torchvision_vit_logits_and_relevance_match_the_float64_reference() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/vit/vit_tiny.safetensors");
    let f = Fixture {
        bytes: std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    };
    let dev = Device::flex();
    let graph = vit(FeatureShape::spatial(3, 16, 16), 5, tiny_config(), &dev, 0)
        .unwrap()
        .with_tensors(|name| Ok(f.data(name)), &dev, &path)
        .unwrap();
    let x: Tensor<4> = Tensor::from_data(f.data("input"), &dev);
    let labels: Tensor<1, Int> = Tensor::from_data(f.data("labels"), &dev);
    let logits = host(&graph.logits(x.clone()).unwrap());
    let err = rel_err(&logits, &f.f64s("logits"));
    assert!(
        err < 1e-5,
        "logits differ from torchvision's (relative {err:e})"
    );
    for name in ["attnlrp", "cp-lrp"] {
        let composite = Composite::named(name).unwrap();
        let a = Attributor::new(&graph, &composite)
            .unwrap()
            .attribute(x.clone(), Target::LabelLogits(labels.clone()))
            .unwrap();
        let got: Vec<f64> = a.input.to_vec().iter().map(|v| *v as f64).collect();
        let err = rel_err(&got, &f.f64s(&format!("relevance.{name}")));
        println!("{name}: relative error {err:.2e}");
        assert!(
            err < 2e-3,
            "{name}: max |R - R_ref| / max |R_ref| = {err:e}"
        );
    }
}
