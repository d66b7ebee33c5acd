//! [`SoftMacs`]: the fraction of MACs a gated graph keeps, differentiable in the gates and
//! computed from the same per-kind counting function as every other count in xprune
//! ([`KindSpec::counts`](xprune_graph::KindSpec::counts), through `OpSpec::counts`).
//!
//! How: the channels a node keeps at its output are `v = F - sum_k (1 - g_k) * w_k` over the
//! gated channels `k` it holds (`w_k` of its indices belong to channel `k`: 1 for most nodes,
//! `H * W` after a flatten, a whole convolution group's worth for grouped convolutions), so
//! they are linear in the gates. The MACs of a node are a function of the kept counts of its
//! inputs and of its output, and for every kind xprune has it is *multilinear* in them
//! (a convolution: `positions * c_out * c_in / groups * kh * kw`; a linear layer: `in * out`;
//! a depthwise convolution: linear in `c`); a count that is both the input and the output of a
//! node (a convolution inside a residual group) enters squared. [`SoftMacs::new`] evaluates
//! each node's counting function on the grid of `0..=d` removed steps of every variable (`d`
//! its multiplicity, the step the amount by which that count changes), turns the values into
//! the coefficients of a polynomial in the removed steps (in float64), and checks that form
//! one step beyond the grid; the MACs for any gate values are then that polynomial, exact
//! wherever the gates are 0 or 1 (then equal to `count_after` of the corresponding plan) and
//! smooth in between.

use crate::layout::GateLayout;
use crate::{IspError, Result};
use burn::tensor::Tensor;
use xprune_graph::{FeatureShape, Graph, NodeId};
use xprune_surgery::ChannelGroups;

/// At most this many gated counts may enter one node's MACs, and at most `2^6` grid points.
const MAX_VARIABLES: usize = 6;

/// One gated count: the channels kept at a node's output.
#[derive(Clone, Debug)]
struct Variable {
    /// The node whose output channel count this is.
    node: NodeId,
    /// Its full channel count.
    full: usize,
    /// The step in which the count changes (gcd of the indices per gated channel).
    step: usize,
    /// Per gated group (index into the layout): indices of this node per group channel.
    parts: Vec<(usize, Vec<u32>)>,
}

/// The MACs of one node with gated counts, as a polynomial in the removed steps `t_j` of its
/// variables: `sum_e a_e prod_j t_j^(e_j)` with `e_j <= d_j`.
#[derive(Clone, Debug)]
struct Term {
    /// The variables, indices into `SoftMacs::variables`.
    vars: Vec<usize>,
    /// The degree in every variable.
    degree: Vec<usize>,
    /// The coefficients `a_e`, by mixed-radix exponent index (the first variable varies
    /// fastest); computed in float64 from the counts on the grid, so that float32 evaluation
    /// far from the grid does not cancel large numbers.
    coeffs: Vec<f64>,
}

/// The kept-MAC fraction of a gated graph as a differentiable function of its gates.
#[derive(Clone, Debug)]
pub struct SoftMacs {
    original: u64,
    constant: f64,
    variables: Vec<Variable>,
    terms: Vec<Term>,
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl SoftMacs {
    /// The MAC model of `graph` gated as `layout` says.
    ///
    /// # Errors
    ///
    /// When a node's MACs depend on more than six gated counts, or are not a polynomial in
    /// them (then no exact differentiable form exists for it); both name the node.
    pub fn new(graph: &Graph, groups: &ChannelGroups, layout: &GateLayout) -> Result<Self> {
        let nodes = graph.nodes();
        let mut var_of: Vec<Option<usize>> = vec![None; nodes.len()];
        let mut variables: Vec<Variable> = Vec::new();
        for (gi, gated) in layout.groups().iter().enumerate() {
            let group = groups
                .get(gated.id)
                .ok_or_else(|| IspError(format!("no group #{} in the groups", gated.id)))?;
            for slot in group.mask_nodes() {
                let weights: Vec<u32> = (0..gated.channels)
                    .map(|k| slot.indices(k).count() as u32)
                    .collect();
                let v = match var_of[slot.node] {
                    Some(v) => v,
                    None => {
                        variables.push(Variable {
                            node: slot.node,
                            full: nodes[slot.node].shape.channels(),
                            step: 0,
                            parts: Vec::new(),
                        });
                        var_of[slot.node] = Some(variables.len() - 1);
                        variables.len() - 1
                    }
                };
                let var = &mut variables[v];
                for &w in &weights {
                    var.step = gcd(var.step, w as usize);
                }
                var.parts.push((gi, weights));
            }
        }
        // A count that cannot change by one step without reaching zero stays constant.
        for v in variables.iter_mut() {
            if v.step == 0 || v.step >= v.full {
                v.parts.clear();
            }
            v.parts.sort();
        }
        // Counts that are the same function of the gates are one variable (a depthwise
        // convolution's input and output: its MACs are linear in that one count, not a
        // function of two independent ones).
        let mut canonical: Vec<usize> = Vec::with_capacity(variables.len());
        for (i, v) in variables.iter().enumerate() {
            let same = (0..i).find(|&j| {
                canonical[j] == j && variables[j].full == v.full && variables[j].parts == v.parts
            });
            canonical.push(same.unwrap_or(i));
        }
        for v in var_of.iter_mut().flatten() {
            *v = canonical[*v];
        }
        let full_shapes: Vec<FeatureShape> = nodes.iter().map(|n| n.shape).collect();
        let mut constant = 0.0f64;
        let mut terms = Vec::new();
        for (id, node) in nodes.iter().enumerate() {
            // Every gated count the node reads or writes, with its multiplicity (a count that
            // is both the input and the output of a convolution enters its MACs squared).
            let mut vars: Vec<usize> = Vec::new();
            let mut degree: Vec<usize> = Vec::new();
            for &n in node.inputs.iter().chain(std::iter::once(&id)) {
                if let Some(v) = var_of[n].filter(|&v| !variables[v].parts.is_empty()) {
                    match vars.iter().position(|&x| x == v) {
                        Some(j) => degree[j] += 1,
                        None => {
                            vars.push(v);
                            degree.push(1);
                        }
                    }
                }
            }
            let eval = |steps: &[usize]| -> u64 {
                let shape_of = |n: NodeId| -> FeatureShape {
                    match var_of[n].and_then(|v| vars.iter().position(|&x| x == v)) {
                        Some(j) => {
                            let var = &variables[vars[j]];
                            full_shapes[n].with_channels(var.full - steps[j] * var.step)
                        }
                        None => full_shapes[n],
                    }
                };
                let ins: Vec<FeatureShape> = node.inputs.iter().map(|&i| shape_of(i)).collect();
                node.op.counts(&ins, shape_of(id)).macs
            };
            if vars.is_empty() {
                constant += eval(&[]) as f64;
                continue;
            }
            let points: usize = degree.iter().map(|d| d + 1).product();
            if vars.len() > MAX_VARIABLES || points > 1 << MAX_VARIABLES {
                return Err(IspError(format!(
                    "the MACs of node `{}` depend on {} gated channel counts (at most \
                     {MAX_VARIABLES} are supported)",
                    node.name,
                    vars.len()
                )));
            }
            // Degree d_j in variable j: interpolate on the grid t_j in 0..=d_j (removed steps;
            // a count that cannot go that low is evaluated at fewer points and has a lower
            // degree).
            for (j, d) in degree.iter_mut().enumerate() {
                let var = &variables[vars[j]];
                *d = (*d).min((var.full - 1) / var.step);
            }
            let term = Term::interpolate(vars.clone(), &degree, |steps| eval(steps) as f64);
            // Check the form one step beyond the grid, for every variable that allows it.
            let beyond: Vec<usize> = degree
                .iter()
                .enumerate()
                .map(|(j, &d)| {
                    let var = &variables[vars[j]];
                    if var.full > (d + 1) * var.step {
                        d + 1
                    } else {
                        d
                    }
                })
                .collect();
            if beyond != degree {
                let exact = eval(&beyond) as f64;
                let t: Vec<f64> = beyond.iter().map(|&b| b as f64).collect();
                let interpolated = term.value_f64(&t);
                if (interpolated - exact).abs() > 0.5 + 1e-9 * exact.abs() {
                    return Err(IspError(format!(
                        "the MACs of node `{}` (kind {}) are not a polynomial of degree \
                         {degree:?} in its channel counts ({exact} counted, {interpolated} \
                         interpolated), so ISP cannot make them differentiable",
                        node.name,
                        node.op.kind_name()
                    )));
                }
            }
            if term.coeffs[1..].iter().all(|&c| c == 0.0) {
                constant += term.coeffs[0];
            } else {
                terms.push(term);
            }
        }
        Ok(Self {
            original: graph.macs(),
            constant,
            variables,
            terms,
        })
    }

    /// The MACs per sample of the ungated graph.
    pub fn original(&self) -> u64 {
        self.original
    }

    /// The MACs per sample the gated graph keeps, `[1]`, differentiable in `gates` (one
    /// `[channels]` vector per gated group, values in `[0, 1]`).
    pub fn kept(&self, gates: &[Tensor<1>]) -> Result<Tensor<1>> {
        let device = gates
            .first()
            .map(|g| g.device())
            .ok_or_else(|| IspError("no gates".into()))?;
        // Removed steps of every variable: sum (1 - g) * w / step.
        let removed: Vec<Option<Tensor<1>>> = self
            .variables
            .iter()
            .map(|var| -> Result<Option<Tensor<1>>> {
                let mut total: Option<Tensor<1>> = None;
                for (gi, weights) in &var.parts {
                    let g = gates.get(*gi).ok_or_else(|| {
                        IspError(format!(
                            "gate vector {gi} is missing ({} given)",
                            gates.len()
                        ))
                    })?;
                    if g.dims()[0] != weights.len() {
                        return Err(IspError(format!(
                            "gate vector {gi} has {} values for {} channels",
                            g.dims()[0],
                            weights.len()
                        )));
                    }
                    let w: Vec<f32> = weights.iter().map(|&w| w as f32).collect();
                    let w = Tensor::<1>::from_floats(w.as_slice(), &device);
                    let part = (g.clone().neg().add_scalar(1.0) * w)
                        .sum()
                        .div_scalar(var.step as f64);
                    total = Some(match total {
                        Some(t) => t + part,
                        None => part,
                    });
                }
                Ok(total)
            })
            .collect::<Result<_>>()?;
        let mut kept = Tensor::<1>::from_floats([self.constant as f32], &device);
        for term in &self.terms {
            let t: Vec<Tensor<1>> = term
                .vars
                .iter()
                .map(|&v| {
                    removed[v]
                        .clone()
                        .unwrap_or_else(|| Tensor::zeros([1], &device))
                })
                .collect();
            for (e, &a) in term.coeffs.iter().enumerate() {
                if a == 0.0 {
                    continue;
                }
                let mut w = Tensor::<1>::from_floats([a as f32], &device);
                for (tj, x) in t.iter().zip(Term::digits(&term.degree, e)) {
                    for _ in 0..x {
                        w = w * tj.clone();
                    }
                }
                kept = kept + w;
            }
        }
        Ok(kept)
    }

    /// The fraction of the original MACs the gated graph keeps, `[1]`, differentiable in the
    /// gates.
    pub fn fraction(&self, gates: &[Tensor<1>]) -> Result<Tensor<1>> {
        Ok(self.kept(gates)?.div_scalar(self.original.max(1) as f64))
    }

    /// The nodes whose MACs depend on the gates.
    pub fn gated_nodes(&self) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = self
            .variables
            .iter()
            .filter(|v| !v.parts.is_empty())
            .map(|v| v.node)
            .collect();
        nodes.sort_unstable();
        nodes
    }
}

impl Term {
    /// The exponent (or grid point) vector of mixed-radix index `i`.
    fn digits(degree: &[usize], mut i: usize) -> Vec<usize> {
        degree
            .iter()
            .map(|&d| {
                let x = i % (d + 1);
                i /= d + 1;
                x
            })
            .collect()
    }

    /// The polynomial through `f` on the grid `t_j in 0..=degree[j]`.
    fn interpolate(vars: Vec<usize>, degree: &[usize], f: impl Fn(&[usize]) -> f64) -> Self {
        let n: usize = degree.iter().map(|d| d + 1).product();
        // Monomial coefficients of the Lagrange basis L_{d, i}(t) on 0..=d, per degree.
        let basis = |d: usize, i: usize| -> Vec<f64> {
            let mut c = vec![1.0f64];
            for m in (0..=d).filter(|&m| m != i) {
                let denom = i as f64 - m as f64;
                let mut next = vec![0.0; c.len() + 1];
                for (k, &ck) in c.iter().enumerate() {
                    next[k + 1] += ck / denom;
                    next[k] -= ck * m as f64 / denom;
                }
                c = next;
            }
            c
        };
        let mut coeffs = vec![0.0f64; n];
        for p in 0..n {
            let point = Self::digits(degree, p);
            let value = f(&point);
            if value == 0.0 {
                continue;
            }
            let bases: Vec<Vec<f64>> = point
                .iter()
                .zip(degree)
                .map(|(&i, &d)| basis(d, i))
                .collect();
            for (e, c) in coeffs.iter_mut().enumerate() {
                let exps = Self::digits(degree, e);
                *c += value * exps.iter().zip(&bases).map(|(&x, b)| b[x]).product::<f64>();
            }
        }
        Self {
            vars,
            degree: degree.to_vec(),
            coeffs,
        }
    }

    /// The polynomial at removed steps `t` (one per variable), in float64.
    fn value_f64(&self, t: &[f64]) -> f64 {
        self.coeffs
            .iter()
            .enumerate()
            .map(|(e, &a)| {
                a * Self::digits(&self.degree, e)
                    .iter()
                    .zip(t)
                    .map(|(&x, &tj)| tj.powi(x as i32))
                    .product::<f64>()
            })
            .sum()
    }
}
