//! Independent float64 references for the LRP tests: every layer as a dense per-sample matrix
//! built in plain loops, every rule as its textbook formula over that matrix.
#![allow(dead_code)]

use burn::tensor::{Device, Tensor, TensorData};

/// A deterministic generator (SplitMix64) for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }

    pub fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
}

pub fn tensor<const D: usize>(values: Vec<f32>, dims: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, dims), device)
}

pub fn host<const D: usize>(t: &Tensor<D>) -> Vec<f64> {
    xprune_graph::tensor_util::to_vec(t)
        .into_iter()
        .map(|v| v as f64)
        .collect()
}

/// Builds a layer's `[out, in]` matrix with every weight value mapped by the given function.
pub type MatrixFn = Box<dyn Fn(&dyn Fn(f64) -> f64) -> Vec<f64>>;

/// A layer as the rules see it: `y = M(w) x + b`, per sample.
pub struct RefLayer {
    /// The matrix with mapped weights (parameter-free layers ignore the map).
    pub matrix: MatrixFn,
    pub bias: Vec<f64>,
    pub inp: usize,
    pub out: usize,
}

impl RefLayer {
    pub fn plain(&self) -> Vec<f64> {
        (self.matrix)(&|w| w)
    }
}

/// `[in, out]` weights (Burn's layout) -> `[out, in]` matrix.
pub fn linear_layer(w: Vec<f64>, bias: Option<Vec<f64>>, fin: usize, fout: usize) -> RefLayer {
    RefLayer {
        matrix: Box::new(move |f| {
            let mut m = vec![0.0; fout * fin];
            for i in 0..fin {
                for j in 0..fout {
                    m[j * fin + i] = f(w[i * fout + j]);
                }
            }
            m
        }),
        bias: bias.unwrap_or_else(|| vec![0.0; fout]),
        inp: fin,
        out: fout,
    }
}

/// Convolution geometry.
#[derive(Clone, Copy, Debug)]
pub struct ConvGeom {
    pub in_c: usize,
    pub h: usize,
    pub w: usize,
    pub out_c: usize,
    pub k: [usize; 2],
    pub stride: [usize; 2],
    /// top, left, bottom, right
    pub pad: [usize; 4],
    pub dil: [usize; 2],
    pub groups: usize,
}

impl ConvGeom {
    pub fn out_hw(&self) -> (usize, usize) {
        let oh = (self.h + self.pad[0] + self.pad[2] - self.dil[0] * (self.k[0] - 1) - 1)
            / self.stride[0]
            + 1;
        let ow = (self.w + self.pad[1] + self.pad[3] - self.dil[1] * (self.k[1] - 1) - 1)
            / self.stride[1]
            + 1;
        (oh, ow)
    }
}

/// Weights `[out_c, in_c/groups, kh, kw]`.
pub fn conv_layer(wt: Vec<f64>, bias: Option<Vec<f64>>, g: ConvGeom) -> RefLayer {
    let (oh, ow) = g.out_hw();
    let inp = g.in_c * g.h * g.w;
    let out = g.out_c * oh * ow;
    let cig = g.in_c / g.groups;
    let cog = g.out_c / g.groups;
    RefLayer {
        matrix: Box::new(move |f| {
            let mut m = vec![0.0; out * inp];
            for oc in 0..g.out_c {
                let grp = oc / cog;
                for oy in 0..oh {
                    for ox in 0..ow {
                        let row = (oc * oh + oy) * ow + ox;
                        for icg in 0..cig {
                            let ic = grp * cig + icg;
                            for ky in 0..g.k[0] {
                                for kx in 0..g.k[1] {
                                    let iy = (oy * g.stride[0] + ky * g.dil[0]) as isize
                                        - g.pad[0] as isize;
                                    let ix = (ox * g.stride[1] + kx * g.dil[1]) as isize
                                        - g.pad[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let col = (ic * g.h + iy as usize) * g.w + ix as usize;
                                    let wv = wt[((oc * cig + icg) * g.k[0] + ky) * g.k[1] + kx];
                                    m[row * inp + col] = f(wv);
                                }
                            }
                        }
                    }
                }
            }
            m
        }),
        bias: bias.map_or_else(
            || vec![0.0; out],
            |b| (0..out).map(|r| b[r / (oh * ow)]).collect(),
        ),
        inp,
        out,
    }
}

/// Per-channel affine map over `positions` values per channel.
pub fn affine_layer(scale: Vec<f64>, shift: Vec<f64>, positions: usize) -> RefLayer {
    let c = scale.len();
    let n = c * positions;
    RefLayer {
        matrix: Box::new(move |f| {
            let mut m = vec![0.0; n * n];
            for i in 0..n {
                m[i * n + i] = f(scale[i / positions]);
            }
            m
        }),
        bias: (0..n).map(|i| shift[i / positions]).collect(),
        inp: n,
        out: n,
    }
}

/// PyTorch average pooling generalised to asymmetric padding `[top, left, bottom, right]`:
/// windows clipped to the padded input; divided by the clipped window size, or by the number of
/// real values when padding does not count.
pub fn avg_pool_layer(
    c: usize,
    h: usize,
    w: usize,
    k: [usize; 2],
    s: [usize; 2],
    pad: [usize; 4],
    cip: bool,
    ceil: bool,
) -> RefLayer {
    let out_len = |size: usize, pb: usize, pe: usize, k: usize, s: usize| {
        let room = size + pb + pe - k;
        let mut o = if ceil {
            room.div_ceil(s) + 1
        } else {
            room / s + 1
        };
        if ceil && o > 1 && (o - 1) * s >= size + pb {
            o -= 1;
        }
        o
    };
    let oh = out_len(h, pad[0], pad[2], k[0], s[0]);
    let ow = out_len(w, pad[1], pad[3], k[1], s[1]);
    let inp = c * h * w;
    let out = c * oh * ow;
    let mut m = vec![0.0; out * inp];
    for ch in 0..c {
        for oy in 0..oh {
            for ox in 0..ow {
                let hs = (oy * s[0]) as isize - pad[0] as isize;
                let ws = (ox * s[1]) as isize - pad[1] as isize;
                let he = (hs + k[0] as isize).min((h + pad[2]) as isize);
                let we = (ws + k[1] as isize).min((w + pad[3]) as isize);
                let size = ((he - hs) * (we - ws)) as f64;
                let (hs2, ws2) = (hs.max(0), ws.max(0));
                let (he2, we2) = (he.min(h as isize), we.min(w as isize));
                let real = ((he2 - hs2) * (we2 - ws2)) as f64;
                let div = if cip { size } else { real };
                let row = (ch * oh + oy) * ow + ox;
                for iy in hs2..he2 {
                    for ix in ws2..we2 {
                        let col = (ch * h + iy as usize) * w + ix as usize;
                        m[row * inp + col] = 1.0 / div;
                    }
                }
            }
        }
    }
    RefLayer {
        matrix: Box::new(move |_| m.clone()),
        bias: vec![0.0; out],
        inp,
        out,
    }
}

/// PyTorch adaptive average pooling.
pub fn adaptive_layer(c: usize, h: usize, w: usize, oh: usize, ow: usize) -> RefLayer {
    let inp = c * h * w;
    let out = c * oh * ow;
    let mut m = vec![0.0; out * inp];
    for ch in 0..c {
        for oy in 0..oh {
            let (hs, he) = (oy * h / oh, ((oy + 1) * h).div_ceil(oh));
            for ox in 0..ow {
                let (ws, we) = (ox * w / ow, ((ox + 1) * w).div_ceil(ow));
                let div = ((he - hs) * (we - ws)) as f64;
                let row = (ch * oh + oy) * ow + ox;
                for iy in hs..he {
                    for ix in ws..we {
                        m[row * inp + (ch * h + iy) * w + ix] = 1.0 / div;
                    }
                }
            }
        }
    }
    RefLayer {
        matrix: Box::new(move |_| m.clone()),
        bias: vec![0.0; out],
        inp,
        out,
    }
}

/// Sum of `k` inputs of `n` values, input stacked as `[n, k]` (k fastest).
pub fn sum_layer(n: usize, k: usize) -> RefLayer {
    let mut m = vec![0.0; n * n * k];
    for j in 0..n {
        for i in 0..k {
            m[j * (n * k) + j * k + i] = 1.0;
        }
    }
    RefLayer {
        matrix: Box::new(move |_| m.clone()),
        bias: vec![0.0; n],
        inp: n * k,
        out: n,
    }
}

/// The rules, as the reference computes them.
#[derive(Clone, Debug)]
pub enum RefRule {
    Epsilon(f64),
    ZPlus,
    AlphaBeta(f64, f64),
    Gamma(f64),
    /// low and high per input value
    ZBox(Vec<f64>, Vec<f64>),
    Flat,
    WSquare,
    Pass,
}

fn stab(z: f64, e: f64) -> f64 {
    z + e * if z >= 0.0 { 1.0 } else { -1.0 }
}

fn pos(v: f64) -> f64 {
    v.max(0.0)
}

fn neg(v: f64) -> f64 {
    v.min(0.0)
}

/// Relevance of one sample's input `x` given the relevance `r` of the layer's output.
/// `ignore_bias` sets every bias term to zero (the gamma gate still uses the biased output).
pub fn reference(
    rule: &RefRule,
    l: &RefLayer,
    x: &[f64],
    r: &[f64],
    ignore_bias: bool,
) -> Vec<f64> {
    let (n_in, n_out) = (l.inp, l.out);
    assert_eq!(x.len(), n_in);
    assert_eq!(r.len(), n_out);
    let m = l.plain();
    let b: Vec<f64> = if ignore_bias {
        vec![0.0; n_out]
    } else {
        l.bias.clone()
    };
    let out: Vec<f64> = (0..n_out)
        .map(|j| (0..n_in).map(|i| m[j * n_in + i] * x[i]).sum::<f64>() + l.bias[j])
        .collect();
    let mut rin = vec![0.0; n_in];
    // Distributes r_j / z_j over contributions c(i, j).
    let mut spread = |c: &dyn Fn(usize, usize) -> f64,
                      zb: &dyn Fn(usize) -> f64,
                      eps: f64,
                      coef: f64,
                      gate: &dyn Fn(usize) -> bool| {
        for j in 0..n_out {
            if !gate(j) {
                continue;
            }
            let z: f64 = (0..n_in).map(|i| c(i, j)).sum::<f64>() + zb(j);
            let s = r[j] / stab(z, eps);
            for i in 0..n_in {
                rin[i] += coef * c(i, j) * s;
            }
        }
    };
    let all = |_: usize| true;
    match rule {
        RefRule::Pass => return r.to_vec(),
        RefRule::Epsilon(e) => {
            spread(&|i, j| x[i] * m[j * n_in + i], &|j| b[j], *e, 1.0, &all);
        }
        RefRule::ZPlus => {
            let (mp, mn) = ((l.matrix)(&pos), (l.matrix)(&neg));
            let c =
                |i: usize, j: usize| pos(x[i]) * mp[j * n_in + i] + neg(x[i]) * mn[j * n_in + i];
            spread(&c, &|j| pos(b[j]), 1e-6, 1.0, &all);
        }
        RefRule::AlphaBeta(alpha, beta) => {
            let (mp, mn) = ((l.matrix)(&pos), (l.matrix)(&neg));
            let cp =
                |i: usize, j: usize| pos(x[i]) * mp[j * n_in + i] + neg(x[i]) * mn[j * n_in + i];
            let cn =
                |i: usize, j: usize| pos(x[i]) * mn[j * n_in + i] + neg(x[i]) * mp[j * n_in + i];
            spread(&cp, &|j| pos(b[j]), 1e-6, *alpha, &all);
            spread(&cn, &|j| neg(b[j]), 1e-6, -*beta, &all);
        }
        RefRule::Gamma(g) => {
            let g = *g;
            let mup = (l.matrix)(&|w| w + g * pos(w));
            let mdn = (l.matrix)(&|w| w + g * neg(w));
            let cp =
                |i: usize, j: usize| pos(x[i]) * mup[j * n_in + i] + neg(x[i]) * mdn[j * n_in + i];
            let cn =
                |i: usize, j: usize| pos(x[i]) * mdn[j * n_in + i] + neg(x[i]) * mup[j * n_in + i];
            spread(&cp, &|j| b[j] + g * pos(b[j]), 1e-6, 1.0, &|j| out[j] > 0.0);
            spread(&cn, &|j| b[j] + g * neg(b[j]), 1e-6, 1.0, &|j| out[j] < 0.0);
        }
        RefRule::ZBox(lo, hi) => {
            let (mp, mn) = ((l.matrix)(&pos), (l.matrix)(&neg));
            let c = |i: usize, j: usize| {
                x[i] * m[j * n_in + i] - lo[i] * mp[j * n_in + i] - hi[i] * mn[j * n_in + i]
            };
            spread(&c, &|j| b[j] - pos(b[j]) - neg(b[j]), 1e-6, 1.0, &all);
        }
        RefRule::Flat => {
            let m1 = (l.matrix)(&|_| 1.0);
            spread(&|i, j| m1[j * n_in + i], &|_| 0.0, 1e-6, 1.0, &all);
        }
        RefRule::WSquare => {
            let m2 = (l.matrix)(&|w| w * w);
            spread(&|i, j| m2[j * n_in + i], &|j| b[j] * b[j], 1e-6, 1.0, &all);
        }
    }
    rin
}

/// Applies `reference` to every sample of a batch (`x`: `[batch, inp]`, `r`: `[batch, out]`).
pub fn reference_batch(
    rule: &RefRule,
    l: &RefLayer,
    x: &[f64],
    r: &[f64],
    batch: usize,
    ignore_bias: bool,
) -> Vec<f64> {
    (0..batch)
        .flat_map(|s| {
            reference(
                rule,
                l,
                &x[s * l.inp..(s + 1) * l.inp],
                &r[s * l.out..(s + 1) * l.out],
                ignore_bias,
            )
        })
        .collect()
}

/// Largest absolute difference divided by the largest absolute reference value.
pub fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "lengths differ");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
        / scale
}
