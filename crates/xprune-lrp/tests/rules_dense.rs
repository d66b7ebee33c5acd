//! Every rule on every layer kind against the dense float64 reference in `common`.

mod common;

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
use burn::nn::{Linear, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use common::*;
use xprune_lrp::prelude::*;
use xprune_lrp::{AffineChannels, Bound, IgnoreBias, LrpError};

fn device() -> Device {
    Device::flex()
}

/// The rules with their reference, z-box bounds given per channel (`channels` channels of
/// `positions` values each).
fn rules(channels: usize, positions: usize, rng: &mut Rng) -> Vec<(RefRule, Box<dyn Rule>)> {
    let low: Vec<f32> = rng.vec(channels, -2.0, -0.5);
    let high: Vec<f32> = rng.vec(channels, 0.5, 2.0);
    let expand = |v: &[f32]| -> Vec<f64> {
        (0..channels * positions)
            .map(|i| v[i / positions] as f64)
            .collect()
    };
    vec![
        (RefRule::Epsilon(1e-6), boxed(Epsilon::default())),
        (RefRule::Epsilon(0.25), boxed(Epsilon::new(0.25).unwrap())),
        (RefRule::Epsilon(1e-6), boxed(Norm)),
        (RefRule::ZPlus, boxed(ZPlus)),
        (
            RefRule::AlphaBeta(2.0, 1.0),
            boxed(AlphaBeta::new(2.0, 1.0).unwrap()),
        ),
        (
            RefRule::AlphaBeta(1.0, 0.0),
            boxed(AlphaBeta::new(1.0, 0.0).unwrap()),
        ),
        (RefRule::Gamma(0.25), boxed(Gamma::default())),
        (RefRule::Gamma(1.5), boxed(Gamma::new(1.5).unwrap())),
        (
            RefRule::ZBox(expand(&low), expand(&high)),
            boxed(
                ZBox::new(
                    Bound::PerChannel(low.clone()),
                    Bound::PerChannel(high.clone()),
                )
                .unwrap(),
            ),
        ),
        (RefRule::Flat, boxed(Flat)),
        (RefRule::WSquare, boxed(WSquare)),
    ]
}

fn boxed(rule: impl Rule + 'static) -> Box<dyn Rule> {
    Box::new(rule)
}

const TOL: f64 = 1e-4;

fn check(name: &str, rule: &dyn Rule, got: &[f64], want: &[f64]) {
    let err = rel_err(got, want);
    assert!(
        err < TOL,
        "{name}, rule {}: max |difference| / max |reference| = {err:e}",
        rule.name()
    );
}

fn conv(g: ConvGeom, bias: bool, rng: &mut Rng) -> (Conv2d, RefLayer) {
    let d = device();
    let cig = g.in_c / g.groups;
    let wv = rng.vec(g.out_c * cig * g.k[0] * g.k[1], -1.0, 1.0);
    let bv = rng.vec(g.out_c, -0.5, 0.5);
    let layer = Conv2d {
        weight: Param::from_tensor(tensor(wv.clone(), [g.out_c, cig, g.k[0], g.k[1]], &d)),
        bias: bias.then(|| Param::from_tensor(tensor(bv.clone(), [g.out_c], &d))),
        stride: g.stride,
        kernel_size: g.k,
        dilation: g.dil,
        groups: g.groups,
        padding: PaddingConfig2d::Explicit(g.pad[0], g.pad[1], g.pad[2], g.pad[3]),
    };
    let f64s = |v: &[f32]| v.iter().map(|x| *x as f64).collect::<Vec<_>>();
    let reference = conv_layer(f64s(&wv), bias.then(|| f64s(&bv)), g);
    (layer, reference)
}

fn conv_cases() -> Vec<(ConvGeom, bool)> {
    let g = |in_c,
             h,
             w,
             out_c,
             k: [usize; 2],
             stride: [usize; 2],
             pad: [usize; 4],
             dil: [usize; 2],
             groups| ConvGeom {
        in_c,
        h,
        w,
        out_c,
        k,
        stride,
        pad,
        dil,
        groups,
    };
    vec![
        (g(3, 6, 7, 4, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 1), true),
        (g(4, 7, 6, 6, [3, 2], [2, 1], [0, 1, 1, 0], [1, 1], 2), true),
        (
            g(4, 9, 9, 4, [3, 3], [2, 2], [2, 1, 1, 2], [2, 2], 4),
            false,
        ),
        (
            g(3, 5, 5, 2, [1, 1], [2, 2], [0, 0, 0, 0], [1, 1], 1),
            false,
        ),
        (g(2, 8, 8, 4, [4, 4], [3, 3], [1, 1, 1, 1], [1, 1], 2), true),
        (g(2, 6, 5, 3, [2, 3], [1, 2], [0, 2, 1, 0], [2, 1], 1), true),
    ]
}

#[test]
fn conv2d_every_rule_matches_dense_reference() {
    let d = device();
    let mut rng = Rng::new(11);
    for (case, (geom, bias)) in conv_cases().into_iter().enumerate() {
        let (layer, reference) = conv(geom, bias, &mut rng);
        let batch = 2;
        let (oh, ow) = geom.out_hw();
        let xv = rng.vec(batch * reference.inp, -1.0, 1.5);
        let rv = rng.vec(batch * reference.out, -1.0, 1.0);
        let x = tensor(xv.clone(), [batch, geom.in_c, geom.h, geom.w], &d);
        let xf: Vec<f64> = xv.iter().map(|v| *v as f64).collect();
        let rf: Vec<f64> = rv.iter().map(|v| *v as f64).collect();
        for (rref, rule) in rules(geom.in_c, geom.h * geom.w, &mut rng) {
            let r = tensor(rv.clone(), [batch, geom.out_c, oh, ow], &d);
            let got = layer.relevance(&x, r, rule.as_ref()).unwrap();
            assert_eq!(got.dims(), [batch, geom.in_c, geom.h, geom.w]);
            let want = reference_batch(&rref, &reference, &xf, &rf, batch, false);
            check(
                &format!("conv case {case} {geom:?} bias {bias}"),
                rule.as_ref(),
                &host(&got),
                &want,
            );
            // the same rule with biases ignored
            let r = tensor(rv.clone(), [batch, geom.out_c, oh, ow], &d);
            let nb = IgnoreBias(rule.as_ref());
            let got = layer.relevance(&x, r, &nb).unwrap();
            let want = reference_batch(&rref, &reference, &xf, &rf, batch, true);
            check(
                &format!("conv case {case} without bias"),
                &nb,
                &host(&got),
                &want,
            );
        }
    }
}

#[test]
fn linear_every_rule_matches_dense_reference() {
    let d = device();
    let mut rng = Rng::new(12);
    for bias in [true, false] {
        let (fin, fout, batch) = (7, 5, 3);
        let wv = rng.vec(fin * fout, -1.0, 1.0);
        let bv = rng.vec(fout, -0.5, 0.5);
        let layer = Linear {
            weight: Param::from_tensor(tensor(wv.clone(), [fin, fout], &d)),
            bias: bias.then(|| Param::from_tensor(tensor(bv.clone(), [fout], &d))),
        };
        let f64s = |v: &[f32]| v.iter().map(|x| *x as f64).collect::<Vec<_>>();
        let reference = linear_layer(f64s(&wv), bias.then(|| f64s(&bv)), fin, fout);
        let xv = rng.vec(batch * fin, -1.0, 1.5);
        let rv = rng.vec(batch * fout, -1.0, 1.0);
        let x = tensor(xv.clone(), [batch, fin], &d);
        for (rref, rule) in rules(fin, 1, &mut rng) {
            let got = layer
                .relevance(&x, tensor(rv.clone(), [batch, fout], &d), rule.as_ref())
                .unwrap();
            let want = reference_batch(&rref, &reference, &f64s(&xv), &f64s(&rv), batch, false);
            check(
                &format!("linear bias {bias}"),
                rule.as_ref(),
                &host(&got),
                &want,
            );
        }
    }
}

#[test]
fn batch_norm_every_rule_matches_dense_reference() {
    let d = device();
    let mut rng = Rng::new(13);
    let c = 4;
    let bn = xprune_graph::batch_norm(
        rng.vec(c, 0.5, 1.5),
        rng.vec(c, -0.5, 0.5),
        rng.vec(c, -0.3, 0.3),
        rng.vec(c, 0.5, 1.5),
        1e-5,
        0.1,
        &d,
    );
    let affine = AffineChannels::from_batch_norm(&bn);
    let scale = host(&affine.scale);
    let shift = host(affine.shift.as_ref().expect("a batch norm has a shift"));
    // spatial input
    let batch = 2;
    let positions = 6;
    let reference = affine_layer(scale.clone(), shift.clone(), positions);
    let xv = rng.vec(batch * c * positions, -1.0, 1.5);
    let rv = rng.vec(batch * c * positions, -1.0, 1.0);
    let xf: Vec<f64> = xv.iter().map(|v| *v as f64).collect();
    let rf: Vec<f64> = rv.iter().map(|v| *v as f64).collect();
    let x = tensor(xv.clone(), [batch, c, 2, 3], &d);
    let mut all = rules(c, positions, &mut rng);
    all.push((RefRule::Pass, boxed(Pass)));
    for (rref, rule) in all {
        let got = bn
            .relevance(&x, tensor(rv.clone(), [batch, c, 2, 3], &d), rule.as_ref())
            .unwrap();
        let want = reference_batch(&rref, &reference, &xf, &rf, batch, false);
        check("batch norm (spatial)", rule.as_ref(), &host(&got), &want);
    }
    // flat input
    let reference = affine_layer(scale, shift, 1);
    let x = tensor(xv[..batch * c].to_vec(), [batch, c], &d);
    for (rref, rule) in rules(c, 1, &mut rng) {
        let got = bn
            .relevance(
                &x,
                tensor(rv[..batch * c].to_vec(), [batch, c], &d),
                rule.as_ref(),
            )
            .unwrap();
        let want = reference_batch(
            &rref,
            &reference,
            &xf[..batch * c],
            &rf[..batch * c],
            batch,
            false,
        );
        check("batch norm (flat)", rule.as_ref(), &host(&got), &want);
    }
}

#[test]
fn average_pooling_every_rule_matches_dense_reference() {
    let d = device();
    let mut rng = Rng::new(14);
    // (c, h, w, kernel, stride, padding [t, l, b, r], count_include_pad, ceil_mode)
    // (c, h, w, kernel, stride, padding, count_include_pad, ceil_mode)
    type Case = (
        usize,
        usize,
        usize,
        [usize; 2],
        [usize; 2],
        [usize; 4],
        bool,
        bool,
    );
    let cases: Vec<Case> = vec![
        (2, 6, 6, [2, 2], [2, 2], [0, 0, 0, 0], true, false),
        (2, 7, 6, [3, 3], [2, 2], [1, 1, 1, 1], false, true),
        (3, 7, 7, [3, 3], [2, 2], [1, 1, 1, 1], true, true),
        (2, 6, 7, [3, 2], [2, 1], [1, 0, 0, 1], false, false),
        (2, 5, 6, [2, 2], [1, 2], [0, 0, 1, 1], true, true),
        (1, 8, 7, [3, 3], [3, 2], [1, 1, 0, 1], false, true),
    ];
    for (case, (c, h, w, k, s, p, cip, ceil)) in cases.into_iter().enumerate() {
        let pool = AvgPool2d {
            stride: s,
            kernel_size: k,
            padding: PaddingConfig2d::Explicit(p[0], p[1], p[2], p[3]),
            count_include_pad: cip,
            ceil_mode: ceil,
        };
        let reference = avg_pool_layer(c, h, w, k, s, p, cip, ceil);
        let batch = 2;
        let xv = rng.vec(batch * reference.inp, -1.0, 1.5);
        let x = tensor(xv.clone(), [batch, c, h, w], &d);
        // the forward pass must agree with the reference matrix
        let y = pool.forward(x.clone());
        let [_, _, oh, ow] = y.dims();
        assert_eq!(c * oh * ow, reference.out, "case {case}: output size");
        let m = reference.plain();
        let yref: Vec<f64> = (0..batch)
            .flat_map(|b| {
                let m = &m;
                let xv = &xv;
                (0..reference.out).map(move |j| {
                    (0..reference.inp)
                        .map(|i| m[j * reference.inp + i] * xv[b * reference.inp + i] as f64)
                        .sum::<f64>()
                })
            })
            .collect();
        assert!(
            rel_err(&host(&y), &yref) < 1e-5,
            "case {case}: forward differs from the reference"
        );
        let rv = rng.vec(batch * reference.out, -1.0, 1.0);
        let xf: Vec<f64> = xv.iter().map(|v| *v as f64).collect();
        let rf: Vec<f64> = rv.iter().map(|v| *v as f64).collect();
        for (rref, rule) in rules(c, h * w, &mut rng) {
            let got = pool
                .relevance(
                    &x,
                    tensor(rv.clone(), [batch, c, oh, ow], &d),
                    rule.as_ref(),
                )
                .unwrap();
            let want = reference_batch(&rref, &reference, &xf, &rf, batch, false);
            check(
                &format!("avg pool case {case}"),
                rule.as_ref(),
                &host(&got),
                &want,
            );
        }
    }
}

#[test]
fn adaptive_pooling_every_rule_matches_dense_reference() {
    let d = device();
    let mut rng = Rng::new(15);
    for (c, h, w, oh, ow) in [
        (2, 7, 5, 3, 2),
        (3, 6, 6, 1, 1),
        (2, 5, 4, 5, 4),
        (1, 4, 9, 3, 4),
    ] {
        let pool = AdaptiveAvgPool2d {
            output_size: [oh, ow],
        };
        let reference = adaptive_layer(c, h, w, oh, ow);
        let batch = 2;
        let xv = rng.vec(batch * reference.inp, -1.0, 1.5);
        let rv = rng.vec(batch * reference.out, -1.0, 1.0);
        let x = tensor(xv.clone(), [batch, c, h, w], &d);
        let xf: Vec<f64> = xv.iter().map(|v| *v as f64).collect();
        let rf: Vec<f64> = rv.iter().map(|v| *v as f64).collect();
        for (rref, rule) in rules(c, h * w, &mut rng) {
            let got = pool
                .relevance(
                    &x,
                    tensor(rv.clone(), [batch, c, oh, ow], &d),
                    rule.as_ref(),
                )
                .unwrap();
            let want = reference_batch(&rref, &reference, &xf, &rf, batch, false);
            check(
                &format!("adaptive pool {h}x{w} -> {oh}x{ow}"),
                rule.as_ref(),
                &host(&got),
                &want,
            );
        }
    }
}

#[test]
fn sums_every_rule_matches_dense_reference() {
    let d = device();
    let mut rng = Rng::new(16);
    for (k, dims) in [(2usize, vec![2usize, 3, 2, 2]), (3, vec![3, 4])] {
        let n: usize = dims[1..].iter().product();
        let batch = dims[0];
        let inputs: Vec<Vec<f32>> = (0..k).map(|_| rng.vec(batch * n, -1.0, 1.5)).collect();
        let rv = rng.vec(batch * n, -1.0, 1.0);
        let reference = sum_layer(n, k);
        // stacked per sample as [n, k]
        let xf: Vec<f64> = (0..batch)
            .flat_map(|b| {
                let inputs = &inputs;
                (0..n).flat_map(move |i| (0..k).map(move |t| inputs[t][b * n + i] as f64))
            })
            .collect();
        let rf: Vec<f64> = rv.iter().map(|v| *v as f64).collect();
        for (rref, rule) in rules(1, n * k, &mut rng) {
            let rref = match rref {
                // one bound for every value, chosen so that the denominator
                // sum_t (x_t - low - high) stays away from 0 (z-box on a sum is ill-conditioned
                // otherwise, whatever the implementation)
                RefRule::ZBox(..) => RefRule::ZBox(vec![-3.0; n * k], vec![0.5; n * k]),
                other => other,
            };
            let rule: Box<dyn Rule> = if let RefRule::ZBox(lo, hi) = &rref {
                boxed(ZBox::new(lo[0] as f32, hi[0] as f32).unwrap())
            } else {
                rule
            };
            let want = reference_batch(&rref, &reference, &xf, &rf, batch, false);
            let got: Vec<Vec<f64>> = if dims.len() == 4 {
                let dd = [dims[0], dims[1], dims[2], dims[3]];
                let xs: Vec<Tensor<4>> = inputs.iter().map(|v| tensor(v.clone(), dd, &d)).collect();
                sum_relevance(&xs, tensor(rv.clone(), dd, &d), rule.as_ref())
                    .unwrap()
                    .iter()
                    .map(host)
                    .collect()
            } else {
                let dd = [dims[0], dims[1]];
                let xs: Vec<Tensor<2>> = inputs.iter().map(|v| tensor(v.clone(), dd, &d)).collect();
                sum_relevance(&xs, tensor(rv.clone(), dd, &d), rule.as_ref())
                    .unwrap()
                    .iter()
                    .map(host)
                    .collect()
            };
            // interleave back to [batch, n, k]
            let got_stacked: Vec<f64> = (0..batch)
                .flat_map(|b| {
                    let got = &got;
                    (0..n).flat_map(move |i| (0..k).map(move |t| got[t][b * n + i]))
                })
                .collect();
            check(
                &format!("sum of {k} inputs {dims:?}"),
                rule.as_ref(),
                &got_stacked,
                &want,
            );
        }
    }
}

/// Reference winner-takes-all through a max pool (first maximum in window scan order).
fn max_pool_reference(
    x: &[f64],
    c: usize,
    h: usize,
    w: usize,
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 4],
    oh: usize,
    ow: usize,
    r: &[f64],
) -> Vec<f64> {
    let mut out = vec![0.0; c * h * w];
    for ch in 0..c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best: Option<(usize, f64)> = None;
                for ky in 0..k[0] {
                    for kx in 0..k[1] {
                        let iy = (oy * s[0] + ky) as isize - p[0] as isize;
                        let ix = (ox * s[1] + kx) as isize - p[1] as isize;
                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                            continue;
                        }
                        let idx = (ch * h + iy as usize) * w + ix as usize;
                        if best.is_none_or(|(_, v)| x[idx] > v) {
                            best = Some((idx, x[idx]));
                        }
                    }
                }
                if let Some((idx, _)) = best {
                    out[idx] += r[(ch * oh + oy) * ow + ox];
                }
            }
        }
    }
    out
}

#[test]
fn max_pooling_passes_relevance_to_the_winner() {
    let d = device();
    let mut rng = Rng::new(17);
    // (c, h, w, kernel, stride, padding, ceil_mode)
    type Case = (
        usize,
        usize,
        usize,
        [usize; 2],
        [usize; 2],
        [usize; 4],
        bool,
    );
    let cases: Vec<Case> = vec![
        (2, 6, 6, [2, 2], [2, 2], [0, 0, 0, 0], false),
        (2, 7, 7, [3, 3], [2, 2], [1, 1, 1, 1], false),
        (2, 6, 5, [3, 2], [1, 2], [1, 0, 0, 1], false),
        (3, 7, 7, [2, 2], [2, 2], [0, 0, 0, 0], true),
    ];
    for (case, (c, h, w, k, s, p, ceil)) in cases.into_iter().enumerate() {
        let pool = MaxPool2d {
            stride: s,
            kernel_size: k,
            padding: PaddingConfig2d::Explicit(p[0], p[1], p[2], p[3]),
            dilation: [1, 1],
            ceil_mode: ceil,
        };
        let batch = 2;
        let xv = rng.vec(batch * c * h * w, -1.0, 1.0);
        let x = tensor(xv.clone(), [batch, c, h, w], &d);
        let [_, _, oh, ow] = pool.forward(x.clone()).dims();
        let rv = rng.vec(batch * c * oh * ow, -1.0, 1.0);
        let got = pool
            .relevance(&x, tensor(rv.clone(), [batch, c, oh, ow], &d))
            .unwrap();
        let n_in = c * h * w;
        let n_out = c * oh * ow;
        let want: Vec<f64> = (0..batch)
            .flat_map(|b| {
                let xs: Vec<f64> = xv[b * n_in..(b + 1) * n_in]
                    .iter()
                    .map(|v| *v as f64)
                    .collect();
                let rs: Vec<f64> = rv[b * n_out..(b + 1) * n_out]
                    .iter()
                    .map(|v| *v as f64)
                    .collect();
                max_pool_reference(&xs, c, h, w, k, s, p, oh, ow, &rs)
            })
            .collect();
        assert!(rel_err(&host(&got), &want) < 1e-6, "max pool case {case}");
        let err = pool
            .relevance(&x, tensor(vec![0.0; 2], [1, 1, 1, 2], &d))
            .unwrap_err();
        assert!(err.to_string().contains("max_pool2d"), "{err}");
    }
}

#[test]
fn wrong_shapes_and_inapplicable_rules_are_errors() {
    let d = device();
    let mut rng = Rng::new(18);
    let (layer, _) = conv(conv_cases()[0].0, true, &mut rng);
    let x = tensor(rng.vec(2 * 3 * 6 * 7, -1.0, 1.0), [2, 3, 6, 7], &d);
    let err = layer
        .relevance(
            &x,
            Tensor::<4>::zeros([2, 4, 5, 7], &d),
            &Epsilon::default(),
        )
        .unwrap_err();
    assert!(matches!(err, LrpError::Shape { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("conv2d") && msg.contains("[2, 4, 5, 7]") && msg.contains("[2, 4, 6, 7]"),
        "{msg}"
    );
    let wrong_input = tensor(vec![0.0; 2 * 2 * 6 * 7], [2, 2, 6, 7], &d);
    let msg = layer
        .relevance(
            &wrong_input,
            Tensor::<4>::zeros([2, 4, 6, 7], &d),
            &Epsilon::default(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("2 channels") && msg.contains("expects 3"),
        "{msg}"
    );
    let msg = layer
        .relevance(&x, Tensor::<4>::zeros([2, 4, 6, 7], &d), &Pass)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("pass") && msg.contains("shapes differ"),
        "{msg}"
    );
    let bounds = ZBox::new(
        Bound::PerChannel(vec![0.0; 5]),
        Bound::PerChannel(vec![1.0; 5]),
    )
    .unwrap();
    let msg = layer
        .relevance(&x, Tensor::<4>::zeros([2, 4, 6, 7], &d), &bounds)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("5 values") && msg.contains("3 channels"),
        "{msg}"
    );
}
