//! `attention`: multi-head scaled dot-product attention of query, key and value token
//! sequences, `softmax(Q K^T * scale) V` per head, the heads side by side in the channels
//! (PyTorch's `scaled_dot_product_attention` on `[N, heads, L, head_dim]` views of `[N, L, C]`
//! projections). The projections are `linear` nodes before it, the output projection a
//! `linear` node after it ([`GraphBuilder::self_attention`] builds all five).
//!
//! Channel `k` of the output is channel `k` of the values, and channels `k` of the queries,
//! keys and values belong to head `k / head_dim`: the kind ties them channel by channel, in
//! blocks of `head_dim`, so that the coupling analysis makes each head one prunable unit (its
//! query, key and value columns with its rows of the output projection). Removing a head
//! leaves the other heads' outputs unchanged, so the pruned model equals the masked one, and
//! the head count follows from the channels (`channels / head_dim`).
//!
//! Relevance: [`AttentionRule::Uniform`] is AttnLRP's (Achtibat et al. 2024): each of the two
//! products between activations gives half of each term's relevance to either factor, and the
//! softmax passes `R_in = x * (R_out - s * sum(R_out))` to its logits;
//! [`AttentionRule::ConstantWeights`] is CP-LRP (the attention weights held constant: all
//! relevance goes to the values).

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, keeps_batch, known_after_batch, reshape_target, unsupported};
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, Attr, AttentionLrp, AttentionRule, ChannelCut, ChannelFlow, ConstTensor, Counts,
    Fusion, Imported, Kind, KindSpec, LrpView, OpAttrs, OpGraph, OpImport, OpNode, OpWriter,
    ParamInfo, PERMUTED_SHAPE, RESHAPED_SHAPE,
};
use crate::registry::Layer;
use crate::shape::FeatureShape;
use crate::tensor_util::stabilize;
use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Multi-head scaled dot-product attention of three token inputs: queries, keys, values.
#[derive(Module, Debug)]
pub struct Attention {
    /// Channels per head.
    #[module(skip)]
    pub head_dim: usize,
    /// The factor of the query-key products (`1 / sqrt(head_dim)` in transformers).
    #[module(skip)]
    pub scale: f32,
}

/// Hyper-parameters of an attention node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttentionOp {
    /// Channels per head (the head count is the input channels over this).
    pub head_dim: usize,
    /// The factor of the query-key products.
    pub scale: f32,
}

impl AttentionOp {
    /// Heads of `head_dim` channels with the usual scale `1 / sqrt(head_dim)`.
    pub fn new(head_dim: usize) -> Self {
        Self {
            head_dim,
            scale: 1.0 / (head_dim.max(1) as f32).sqrt(),
        }
    }
}

fn tokens(shape: FeatureShape, what: &str) -> Result<[usize; 2], String> {
    match shape {
        FeatureShape::Tokens(t) => Ok(t),
        other => Err(format!(
            "attention's {what} must be a token sequence [L, C], got [{other}]"
        )),
    }
}

impl KindSpec for AttentionOp {
    type Layer = Attention;
    const NAME: &'static str = "attention";
    const ONNX_OPS: &'static [&'static str] = &[SDPA];
    const FUSIONS: &'static [Fusion] = &[
        Fusion {
            pattern: "heads(q) = Transpose(Reshape(q, [N, L, h, d]), [0, 2, 1, 3]); \
                      MatMul(Softmax(MatMul(heads(q), heads(k)^T) * scale), heads(v)) -> \
                      Transpose([0, 2, 1, 3]) -> Reshape([N, L, C])",
            reads: &["Reshape", "Transpose", "MatMul", "Mul", "Div", "Softmax"],
            produces: SDPA,
            internal: true,
            apply: fuse_attention,
        },
        Fusion {
            pattern: "torch.nn.MultiheadAttention (batch_first) as PyTorch exports it: \
                      Transpose([1, 0, 2]) -> in-projection MatMul -> Reshape, Unsqueeze, \
                      Transpose, Squeeze, Gather into q, k, v -> per-head Reshape, Transpose -> \
                      scaled_dot_product_attention (Mul by Sqrt of the scale, MatMul, Softmax, \
                      MatMul) -> Transpose, Reshape -> out-projection Gemm -> Reshape -> \
                      Transpose([1, 0, 2])",
            reads: &[
                "Transpose", "MatMul", "Gemm", "Reshape", "Unsqueeze", "Squeeze", "Gather",
                "Mul", "Sqrt", "Softmax",
            ],
            produces: SDPA,
            internal: true,
            apply: fuse_torch_mha,
        },
        Fusion {
            pattern: "a packed query-key-value projection, batch first, as timm's ViT \
                      `Attention` exports: MatMul (`[E, 3E]`) -> Reshape([N, L, 3, h, d]) -> \
                      Transpose([2, 0, 3, 1, 4]) -> Split and Squeeze (or Gather) into q, k, v \
                      -> [Mul] q and Transpose(k, [0, 1, 3, 2]) -> MatMul, Softmax, MatMul -> \
                      Transpose([0, 2, 1, 3]) -> Reshape([N, L, C])",
            reads: &[
                "MatMul", "Reshape", "Transpose", "SplitPart", "Squeeze", "Gather", "Mul",
                "Sqrt", "Softmax",
            ],
            produces: SDPA,
            internal: true,
            apply: fuse_packed_qkv,
        },
    ];

    fn arity(&self) -> Arity {
        (3, 3)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        let d = self.head_dim;
        if d == 0 {
            return Err("attention needs at least one channel per head".into());
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(format!(
                "attention's scale must be finite and positive, got {}",
                self.scale
            ));
        }
        let [lq, c] = tokens(inputs[0], "query")?;
        let [lk, ck] = tokens(inputs[1], "key")?;
        let [lv, cv] = tokens(inputs[2], "value")?;
        if ck != c || cv != c {
            return Err(format!(
                "attention's queries, keys and values need the same channels, got {c}, {ck} \
                 and {cv}"
            ));
        }
        if lk != lv {
            return Err(format!(
                "attention's keys and values need the same number of tokens, got {lk} and {lv}"
            ));
        }
        if c % d != 0 {
            return Err(format!(
                "attention's {c} channels are not a whole number of heads of {d}"
            ));
        }
        Ok(FeatureShape::Tokens([lq, c]))
    }

    fn counts(&self, inputs: &[FeatureShape], output: FeatureShape) -> Counts {
        // Q K^T: Lq x Lk products of head_dim per head; A V: Lq x C outputs of Lk terms.
        let lk = inputs.get(1).map_or(0, |s| s.dims()[0]) as u64;
        let [lq, c] = match output {
            FeatureShape::Tokens(t) => t.map(|v| v as u64),
            _ => [0, 0],
        };
        Counts {
            params: 0,
            buffers: 0,
            macs: 2 * lq * lk * c,
        }
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise {
            unit: self.head_dim,
        }
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> Attention {
        Attention {
            head_dim: self.head_dim,
            scale: self.scale,
        }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some((|| -> Result<Imported, ImportError> {
            node.check_attrs(&["scale", "heads_axis"])?;
            // The splits are [N, L, h, d] (heads_axis 2) or [N, h, L, d] (heads_axis 1).
            let heads_first = match node.attrs.int("heads_axis", 2)? {
                2 => false,
                1 => true,
                other => return Err(unsupported("heads_axis", other, "1 or 2")),
            };
            let mut acts = Vec::with_capacity(3);
            for (i, what) in ["queries", "keys", "values"].into_iter().enumerate() {
                acts.push(node.act(i, what)?);
            }
            let FeatureShape::Tokens([_, c]) = acts[0].1 else {
                return Err(format!("attention of queries of shape [{}]", acts[0].1).into());
            };
            // The three head splits [N, L, h, d] agree, and the merge is [N, L, C].
            let mut head_dim = None;
            for (i, what) in [(3, "query split"), (4, "key split"), (5, "value split")] {
                let t = reshape_target(node.input(i, what)?)?;
                let sizes = known_after_batch(&t);
                let hd = match sizes.as_deref() {
                    Some(&[a, b, d]) if keeps_batch(t.first(), node.batch) && d > 0
                        && (if heads_first { a } else { b }) > 0
                        && ((if heads_first { a } else { b }) * d) as usize == c => d as usize,
                    _ => {
                        return Err(format!(
                            "the {what} reshapes [N, L, {c}] to {t:?}, not to [N, L, heads, \
                             head_dim]"
                        )
                        .into());
                    }
                };
                if head_dim.is_some_and(|d| d != hd) {
                    return Err("queries, keys and values split into different heads".into());
                }
                head_dim = Some(hd);
            }
            let merge = reshape_target(node.input(6, "merge")?)?;
            let merged = known_after_batch(&merge);
            if !(keeps_batch(merge.first(), node.batch)
                && matches!(merged.as_deref(), Some(&[_, m]) if m == c as i64 || m == -1))
            {
                return Err(format!(
                    "the heads merge to {merge:?}, not to [N, L, {c}]"
                )
                .into());
            }
            // Without a scale, scaled_dot_product_attention's default 1 / sqrt(head_dim).
            let head_dim = head_dim.unwrap_or(c);
            let scale = node
                .attrs
                .float("scale", 1.0 / (head_dim as f32).sqrt())?;
            let layer = Attention { head_dim, scale };
            layer.spec().infer(&[acts[0].1, acts[1].1, acts[2].1])?;
            Ok(Imported::Node {
                layer: Layer::Attention(layer),
                inputs: acts.iter().map(|a| a.0).collect(),
            })
        })())
    }
}

/// The op type of a fused attention: not an ONNX op (ONNX's own `Attention`, opset 23, takes
/// other inputs).
const SDPA: &str = "ScaledDotProductAttention";

/// Matches the nodes of one attention from its output projection's input back to the three
/// token sequences; `None` when the nodes around `m2` (the second product) are not that.
struct AttentionMatch {
    nodes: Vec<usize>,
    sources: [String; 3],
    splits: [String; 3],
    merge: String,
    out: usize,
    /// `Shape` nodes reading the merged heads (rewritten to the shape of the queries' split).
    shapes: Vec<usize>,
    scale: f32,
}

fn perm_is(g: &OpGraph, k: usize, perm: &[i64]) -> bool {
    let n = &g.nodes[k];
    n.op == "Transpose" && matches!(n.attrs.get("perm"), Some(Attr::Ints(p)) if p == perm)
}

/// The producer of input `i` of node `k`, if it is read only there.
fn only_from(g: &OpGraph, k: usize, i: usize) -> Option<usize> {
    let p = g.producer(g.nodes[k].input(i)?)?;
    g.single_use(p).then_some(p)
}

/// A scalar factor node (`Mul` by a one-element constant, `Div` by one): the factor and the
/// index of the other input.
fn factor(g: &OpGraph, k: usize) -> Option<(f32, usize)> {
    let n = &g.nodes[k];
    let (a, b) = (n.input(0)?, n.input(1)?);
    match n.op.as_str() {
        "Mul" => match (g.scalar(a), g.scalar(b)) {
            (None, Some(f)) => Some((f, 0)),
            (Some(f), None) => Some((f, 1)),
            _ => None,
        },
        "Div" => g.scalar(b).filter(|&d| d != 0.0 && g.scalar(a).is_none()).map(|d| (1.0 / d, 0)),
        _ => None,
    }
}

/// Skips an optional scalar factor at node `k`: the node behind it and the factor.
fn skip_factor(g: &OpGraph, k: usize, nodes: &mut Vec<usize>) -> Option<(usize, f32)> {
    match factor(g, k) {
        Some((f, i)) => {
            nodes.push(k);
            Some((only_from(g, k, i)?, f))
        }
        None => Some((k, 1.0)),
    }
}

/// `Transpose(Reshape(x, split), perm)`: the reshape's data and target names.
fn split_heads(
    g: &OpGraph,
    t: usize,
    perm: &[i64],
    nodes: &mut Vec<usize>,
) -> Option<(String, String)> {
    if !perm_is(g, t, perm) {
        return None;
    }
    let r = only_from(g, t, 0)?;
    let rn = &g.nodes[r];
    if rn.op != "Reshape" || matches!(rn.attrs.get("allowzero"), Some(Attr::Int(1))) {
        return None;
    }
    nodes.extend([t, r]);
    Some((rn.input(0)?.to_string(), rn.input(1)?.to_string()))
}

fn match_attention(g: &OpGraph, m2: usize) -> Option<AttentionMatch> {
    let mut nodes = vec![m2];
    if g.nodes[m2].op != "MatMul" {
        return None;
    }
    let sm = only_from(g, m2, 0)?;
    let axis = g.nodes[sm].attrs.get("axis");
    if g.nodes[sm].op != "Softmax" || !matches!(axis, Some(Attr::Int(-1)) | Some(Attr::Int(3))) {
        return None;
    }
    nodes.push(sm);
    let (m1, mut scale) = skip_factor(g, only_from(g, sm, 0)?, &mut nodes)?;
    if g.nodes[m1].op != "MatMul" {
        return None;
    }
    nodes.push(m1);
    // queries: [Mul] <- Transpose [0, 2, 1, 3] <- Reshape
    let (tq, fq) = skip_factor(g, only_from(g, m1, 0)?, &mut nodes)?;
    let (q, q_split) = split_heads(g, tq, &[0, 2, 1, 3], &mut nodes)?;
    // keys: [Mul] <- Transpose [0, 2, 3, 1] <- Reshape, or [0, 1, 3, 2] <- [0, 2, 1, 3] <- Reshape
    let (tk, fk) = skip_factor(g, only_from(g, m1, 1)?, &mut nodes)?;
    let (k, k_split) = if perm_is(g, tk, &[0, 1, 3, 2]) {
        nodes.push(tk);
        split_heads(g, only_from(g, tk, 0)?, &[0, 2, 1, 3], &mut nodes)?
    } else {
        split_heads(g, tk, &[0, 2, 3, 1], &mut nodes)?
    };
    scale *= fq * fk;
    // values: Transpose [0, 2, 1, 3] <- Reshape
    let (v, v_split) = split_heads(g, only_from(g, m2, 1)?, &[0, 2, 1, 3], &mut nodes)?;
    // output: Transpose [0, 2, 1, 3] -> Reshape
    if !g.single_use(m2) {
        return None;
    }
    let &[t] = g.consumers(&g.nodes[m2].outputs[0]).as_slice() else {
        return None;
    };
    // The merged heads are read by the reshape and, in PyTorch's exports, by `Shape` nodes
    // computing its target (their value is the shape of the queries' split).
    if !perm_is(g, t, &[0, 2, 1, 3]) || g.nodes[t].outputs.len() != 1 {
        return None;
    }
    let merged = &g.nodes[t].outputs[0];
    if g.outputs.contains(merged) {
        return None;
    }
    let readers = g.consumers(merged);
    let (reshapes, shapes): (Vec<usize>, Vec<usize>) =
        readers.iter().partition(|&&r| g.nodes[r].op != "Shape");
    let &[out] = reshapes.as_slice() else {
        return None;
    };
    let on = &g.nodes[out];
    let reads_once = on.inputs.iter().filter(|i| *i == merged).count() == 1;
    if on.op != "Reshape" || on.input(0) != Some(merged.as_str()) || !reads_once {
        return None;
    }
    nodes.extend([t, out]);
    Some(AttentionMatch {
        nodes,
        sources: [q, k, v],
        splits: [q_split, k_split, v_split],
        merge: on.input(1)?.to_string(),
        out,
        shapes,
        scale,
    })
}

/// Replaces every attention pattern (see [`AttentionOp::FUSIONS`]) by one
/// `ScaledDotProductAttention(q, k, v, q_split, k_split, v_split, merge)` node with the
/// product of its scalar factors as `scale`; the import checks the reshapes. `Shape` nodes
/// reading the merged heads become `ReshapedShape(q, q_split)` (the same dims).
fn fuse_attention(g: &mut OpGraph) -> usize {
    let mut fused = 0;
    let mut k = 0;
    while k < g.nodes.len() {
        let Some(m) = match_attention(g, k) else {
            k += 1;
            continue;
        };
        let [q, kk, v] = m.sources;
        let [sq, sk, sv] = m.splits;
        // [N, L, h, d]: the shape of the merged heads before the reshape.
        for &r in &m.shapes {
            let n = &mut g.nodes[r];
            n.op = RESHAPED_SHAPE.into();
            n.inputs = vec![q.clone(), sq.clone()];
        }
        let node = OpNode {
            name: g.nodes[m.out].name.clone(),
            op: SDPA.into(),
            inputs: vec![q, kk, v, sq, sk, sv, m.merge],
            outputs: g.nodes[m.out].outputs.clone(),
            attrs: OpAttrs::new().with("scale", Attr::Float(m.scale)),
        };
        g.replace(&m.nodes, node);
        fused += 1;
        k = 0;
    }
    fused
}

/// The per-head tensors of one attention evaluation, `[N, heads, L, head_dim]` and the
/// `[N, heads, Lq, Lk]` logits and weights.
struct Heads {
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    logits: Tensor<4>,
    weights: Tensor<4>,
}

impl Attention {
    fn split(&self, t: Tensor<3>) -> Tensor<4> {
        let [n, l, c] = t.dims();
        t.reshape([n, l, c / self.head_dim, self.head_dim])
            .swap_dims(1, 2)
    }

    fn merge(t: Tensor<4>) -> Tensor<3> {
        let [n, h, l, d] = t.dims();
        t.swap_dims(1, 2).reshape([n, l, h * d])
    }

    fn token_inputs(inputs: Vec<Activation>) -> Result<[Tensor<3>; 3], String> {
        let mut it = inputs.into_iter().map(|a| {
            a.into_tokens()
                .ok_or_else(|| "attention's inputs must be token sequences".to_string())
        });
        match (it.next(), it.next(), it.next(), it.next()) {
            (Some(q), Some(k), Some(v), None) => Ok([q?, k?, v?]),
            _ => Err("attention takes three inputs: queries, keys, values".into()),
        }
    }

    fn heads(&self, [q, k, v]: [Tensor<3>; 3]) -> Heads {
        let (q, k, v) = (self.split(q), self.split(k), self.split(v));
        let logits = q.clone().matmul(k.clone().swap_dims(2, 3)).mul_scalar(self.scale);
        let weights = softmax(logits.clone(), 3);
        Heads {
            q,
            k,
            v,
            logits,
            weights,
        }
    }
}

/// The nodes of one `nn.MultiheadAttention` export (see [`fuse_torch_mha`]).
struct TorchMha {
    /// Every node of the pattern (removed).
    nodes: Vec<usize>,
    /// The input sequence `[N, L, E]`.
    x: String,
    /// The in-projection: weight `[E, 3E]` (MatMul layout) and bias `[3E]`.
    in_w: String,
    in_b: String,
    /// The query split's target, `[N, h, L, d]`.
    split: String,
    /// The out-projection: weight `[out, in]` when `transposed` (Gemm with transB) and bias.
    out_w: String,
    out_b: String,
    transposed: bool,
    /// `Shape` nodes reading the first transpose (rewritten to `PermutedShape(x)`).
    shapes: Vec<usize>,
    /// The last node (its output is the attention's).
    last: usize,
    /// The in-projection node's name.
    name: String,
}

/// The output of node `k` is read by `reader` and otherwise only by `Shape` nodes (not a graph
/// output).
fn read_by(g: &OpGraph, k: usize, reader: usize) -> bool {
    let n = &g.nodes[k];
    n.outputs.len() == 1
        && !g.outputs.contains(&n.outputs[0])
        && g.consumers(&n.outputs[0])
            .iter()
            .all(|&r| r == reader || g.nodes[r].op == "Shape")
        && g.nodes[reader].inputs.iter().filter(|i| **i == n.outputs[0]).count() == 1
}

/// The producer of input `i` of `k`, when it is read there and otherwise only by `Shape`.
fn from_shaped(g: &OpGraph, k: usize, i: usize) -> Option<usize> {
    let p = g.producer(g.nodes[k].input(i)?)?;
    read_by(g, p, k).then_some(p)
}

fn op_is(g: &OpGraph, k: usize, op: &str) -> bool {
    g.nodes[k].op == op
}

/// The only reader of node `k`'s output besides `Shape` nodes.
fn next_of(g: &OpGraph, k: usize) -> Option<usize> {
    let out = g.nodes[k].output(0)?;
    let readers: Vec<usize> = g
        .consumers(out)
        .into_iter()
        .filter(|&r| g.nodes[r].op != "Shape")
        .collect();
    let &[r] = readers.as_slice() else {
        return None;
    };
    read_by(g, k, r).then_some(r)
}

/// `Reshape(x, _)` -> `Transpose([1, 0, 2])` -> `Reshape(_, split)` from a `Gather` of part
/// `part` of the packed projections: returns the gather and the nodes.
fn torch_head(g: &OpGraph, r2: usize, part: i64, nodes: &mut Vec<usize>) -> Option<usize> {
    if !op_is(g, r2, "Reshape") {
        return None;
    }
    let t = from_shaped(g, r2, 0)?;
    let r = from_shaped(g, t, 0)?;
    if !perm_is(g, t, &[1, 0, 2]) || !op_is(g, r, "Reshape") {
        return None;
    }
    let gather = from_shaped(g, r, 0)?;
    let gn = &g.nodes[gather];
    let index = gn.input(1).and_then(|i| g.constant(i));
    let axis_zero = matches!(gn.attrs.get("axis"), None | Some(Attr::Int(0)));
    let is_part = index.is_some_and(|i| i.dims.is_empty() && i.as_i64() == Some(&[part][..]));
    if gn.op != "Gather" || !axis_zero || !is_part {
        return None;
    }
    nodes.extend([r2, t, r, gather]);
    Some(gather)
}

/// A `Mul` by the square root of scaled_dot_product_attention's default scale (computed from
/// a `Shape` in the export): the other input.
fn sdpa_scaled(g: &OpGraph, m: usize, nodes: &mut Vec<usize>) -> Option<usize> {
    let n = &g.nodes[m];
    if n.op != "Mul" || n.inputs.len() != 2 {
        return None;
    }
    let by_sqrt = |i: usize| {
        g.producer(n.input(i)?)
            .filter(|&p| op_is(g, p, "Sqrt"))
            .map(|_| 1 - i)
    };
    let data = by_sqrt(1).or_else(|| by_sqrt(0))?;
    nodes.push(m);
    from_shaped(g, m, data)
}

/// `MatMul(Softmax(MatMul(q, k) * f), v)` around the softmax node `sm` (over the last axis;
/// the factor `f` optional): the first product, the second and `f`. The three nodes (and the
/// factor's) are added to `nodes`.
fn softmax_products(g: &OpGraph, sm: usize, nodes: &mut Vec<usize>) -> Option<(usize, usize, f32)> {
    let axis = g.nodes[sm].attrs.get("axis");
    if !op_is(g, sm, "Softmax") || !matches!(axis, Some(Attr::Int(-1)) | Some(Attr::Int(3))) {
        return None;
    }
    nodes.push(sm);
    let (m1, f) = skip_factor(g, only_from(g, sm, 0)?, nodes)?;
    let m2 = next_of(g, sm)?;
    if !op_is(g, m1, "MatMul") || !op_is(g, m2, "MatMul") || g.nodes[m2].input(0) != g.nodes[sm].output(0) {
        return None;
    }
    nodes.extend([m1, m2]);
    Some((m1, m2, f))
}

fn match_torch_mha(g: &OpGraph, sm: usize) -> Option<TorchMha> {
    let mut nodes = Vec::new();
    // scaled_dot_product_attention scales the queries and keys, not the logits
    let (m1, m2, f) = softmax_products(g, sm, &mut nodes)?;
    if f != 1.0 {
        return None;
    }
    // queries: Mul(Reshape(Transpose(Reshape(Gather(qkv, 0)))), sqrt(scale))
    let q2 = sdpa_scaled(g, only_from(g, m1, 0)?, &mut nodes)?;
    let split = g.nodes[q2].input(1)?.to_string();
    let gq = torch_head(g, q2, 0, &mut nodes)?;
    // keys: Mul(Transpose(Reshape(..), [0, 1, 3, 2]), sqrt(scale))
    let tk = sdpa_scaled(g, only_from(g, m1, 1)?, &mut nodes)?;
    if !perm_is(g, tk, &[0, 1, 3, 2]) {
        return None;
    }
    nodes.push(tk);
    let gk = torch_head(g, from_shaped(g, tk, 0)?, 1, &mut nodes)?;
    let gv = torch_head(g, from_shaped(g, m2, 1)?, 2, &mut nodes)?;
    // The three parts come from one squeeze of the packed projections.
    let packed = g.nodes[gq].input(0)?;
    if g.nodes[gk].input(0)? != packed || g.nodes[gv].input(0)? != packed {
        return None;
    }
    let sq = g.producer(packed)?;
    let readers = g.consumers(packed);
    if !op_is(g, sq, "Squeeze") || readers.len() != 3 || g.outputs.iter().any(|o| o == packed) {
        return None;
    }
    let t1 = from_shaped(g, sq, 0)?;
    let un = from_shaped(g, t1, 0)?;
    let r = from_shaped(g, un, 0)?;
    if !perm_is(g, t1, &[3, 1, 2, 0, 4]) || !op_is(g, un, "Unsqueeze") || !op_is(g, r, "Reshape") {
        return None;
    }
    let proj = from_shaped(g, r, 0)?;
    let t0 = from_shaped(g, proj, 0)?;
    let pn = &g.nodes[proj];
    if !op_is(g, proj, "MatMul") || pn.inputs.len() != 3 || !perm_is(g, t0, &[1, 0, 2]) {
        return None;
    }
    nodes.extend([sq, t1, un, r, proj, t0]);
    // output: Transpose([2, 0, 1, 3]) -> Reshape -> Gemm / MatMul -> Reshape -> Transpose([1, 0, 2])
    let t6 = next_of(g, m2)?;
    let r9 = next_of(g, t6)?;
    let out = next_of(g, r9)?;
    let r10 = next_of(g, out)?;
    let t7 = next_of(g, r10)?;
    let on = &g.nodes[out];
    let gemm_ok = on.op == "Gemm"
        && matches!(on.attrs.get("transB"), Some(Attr::Int(1)))
        && !matches!(on.attrs.get("transA"), Some(Attr::Int(1)))
        && [("alpha", 1.0), ("beta", 1.0)]
            .iter()
            .all(|(a, v)| on.attrs.get(a).is_none_or(|x| *x == Attr::Float(*v)));
    let matmul_ok = on.op == "MatMul" && on.attrs.iter().next().is_none();
    let shapes_ok = perm_is(g, t6, &[2, 0, 1, 3])
        && op_is(g, r9, "Reshape")
        && op_is(g, r10, "Reshape")
        && perm_is(g, t7, &[1, 0, 2])
        && on.input(0) == g.nodes[r9].output(0)
        && on.inputs.len() == 3
        && (gemm_ok || matmul_ok);
    if !shapes_ok {
        return None;
    }
    nodes.extend([t6, r9, out, r10, t7]);
    let shapes = g
        .consumers(g.nodes[t0].output(0)?)
        .into_iter()
        .filter(|&r| op_is(g, r, "Shape"))
        .collect();
    Some(TorchMha {
        nodes,
        x: g.nodes[t0].input(0)?.to_string(),
        in_w: pn.input(1)?.to_string(),
        in_b: pn.input(2)?.to_string(),
        split,
        out_w: on.input(1)?.to_string(),
        out_b: on.input(2)?.to_string(),
        transposed: gemm_ok,
        shapes,
        last: t7,
        name: pn.name.clone(),
    })
}

/// Column block `j` of `parts` of a `[rows, cols]` matrix.
fn columns(t: &ConstTensor, parts: usize, j: usize) -> Option<ConstTensor> {
    let [rows, cols] = t.dims[..] else {
        return None;
    };
    let v = t.to_f32();
    let w = cols / parts;
    let mut out = Vec::with_capacity(rows * w);
    for r in 0..rows {
        out.extend_from_slice(&v[r * cols + j * w..r * cols + (j + 1) * w]);
    }
    Some(ConstTensor::f32(vec![rows, w], out))
}

/// `nn.MultiheadAttention(batch_first=True)` of a token sequence as PyTorch exports it
/// (sequence-first inside, batch and heads packed into one axis; torchvision's ViT) becomes
/// separate query, key and value projections (`<module>/q`, `/k`, `/v`, split from the
/// packed in-projection), a `ScaledDotProductAttention` with the default scale and the
/// out-projection (`<module>/out_proj`). `Shape` nodes reading the first transpose become
/// `PermutedShape(x)`; the other shape computations of the pattern are then unread.
fn fuse_torch_mha(g: &mut OpGraph) -> usize {
    let mut fused = 0;
    let mut k = 0;
    while k < g.nodes.len() {
        let Some(m) = match_torch_mha(g, k).and_then(|m| torch_mha_nodes(g, &m).map(|n| (m, n)))
        else {
            k += 1;
            continue;
        };
        let (m, new) = m;
        for &r in &m.shapes {
            let n = &mut g.nodes[r];
            n.op = PERMUTED_SHAPE.into();
            n.inputs = vec![m.x.clone()];
            n.attrs = n.attrs.clone().with("perm", Attr::Ints(vec![1, 0, 2]));
        }
        g.replace_with_nodes(&m.nodes, new);
        fused += 1;
        k = 0;
    }
    fused
}

/// Splits a packed `[E, 3C]` projection (with its `[3C]` bias) of `x` into three `MatMul`
/// nodes `<prefix>/q`, `/k`, `/v` (their weights and biases added to `g` under names derived
/// from `out_name`); returns the nodes and their output names. `None` when a column block
/// cannot be taken.
fn split_projection(
    g: &mut OpGraph,
    (x, w, b): (&str, &ConstTensor, &ConstTensor),
    out_name: &str,
    prefix: &str,
) -> Option<(Vec<OpNode>, Vec<String>)> {
    let c = b.len() / 3;
    let bias = b.to_f32();
    let mut nodes = Vec::with_capacity(3);
    let mut outs = Vec::with_capacity(3);
    for (j, part) in ["q", "k", "v"].into_iter().enumerate() {
        let wn = format!("{out_name}::{part}.weight");
        let bn = format!("{out_name}::{part}.bias");
        g.consts.insert(wn.clone(), std::sync::Arc::new(columns(w, 3, j)?));
        let bj = bias[j * c..(j + 1) * c].to_vec();
        g.consts.insert(bn.clone(), std::sync::Arc::new(ConstTensor::f32(vec![c], bj)));
        let o = format!("{out_name}::{part}");
        nodes.push(OpNode {
            name: format!("{prefix}/{part}"),
            op: "MatMul".into(),
            inputs: vec![x.to_string(), wn, bn],
            outputs: vec![o.clone()],
            attrs: OpAttrs::new(),
        });
        outs.push(o);
    }
    Some((nodes, outs))
}

/// The replacement nodes of one match (and their constants, added to `g`); `None` when the
/// projections' constants do not have the shapes of one.
fn torch_mha_nodes(g: &mut OpGraph, m: &TorchMha) -> Option<Vec<OpNode>> {
    let (w, b) = (g.constant(&m.in_w)?, g.constant(&m.in_b)?);
    let (ow, ob) = (g.constant(&m.out_w)?, g.constant(&m.out_b)?);
    let e = *w.dims.first()?;
    if w.dims != [e, 3 * e] || b.len() != 3 * e || ow.dims != [e, e] || ob.len() != e {
        return None;
    }
    let out_name = g.nodes[m.last].outputs[0].clone();
    let prefix = m.name.rsplit_once('/').map_or(m.name.as_str(), |p| p.0).to_string();
    let (mut new, outs) = split_projection(g, (&m.x, &w, &b), &out_name, &prefix)?;
    let merge = format!("{out_name}::merge");
    g.consts.insert(
        merge.clone(),
        std::sync::Arc::new(ConstTensor::i64(vec![3], vec![0, 0, e as i64])),
    );
    let attention = format!("{out_name}::attention");
    let mut inputs = outs;
    inputs.extend([m.split.clone(), m.split.clone(), m.split.clone(), merge]);
    new.push(OpNode {
        name: format!("{prefix}/attention"),
        op: SDPA.into(),
        inputs,
        outputs: vec![attention.clone()],
        attrs: OpAttrs::new().with("heads_axis", Attr::Int(1)),
    });
    let out_w = if m.transposed {
        let v = ow.to_f32();
        let t: Vec<f32> = (0..e * e).map(|i| v[(i % e) * e + i / e]).collect();
        let name = format!("{out_name}::out_proj.weight");
        g.consts
            .insert(name.clone(), std::sync::Arc::new(ConstTensor::f32(vec![e, e], t)));
        name
    } else {
        m.out_w.clone()
    };
    new.push(OpNode {
        name: format!("{prefix}/out_proj"),
        op: "MatMul".into(),
        inputs: vec![attention, out_w, m.out_b.clone()],
        outputs: vec![out_name],
        attrs: OpAttrs::new(),
    });
    Some(new)
}

/// The nodes of one attention on a packed, batch-first query-key-value projection (see
/// [`fuse_packed_qkv`]).
struct PackedQkv {
    /// Every node of the pattern (removed).
    nodes: Vec<usize>,
    /// The input sequence `[N, L, E]`.
    x: String,
    /// The packed projection: weight `[E, 3C]` (MatMul layout) and bias `[3C]`.
    w: String,
    b: String,
    /// Heads and channels per head (from the packed reshape's target).
    heads: i64,
    head_dim: i64,
    /// The merge's target, `[N, L, C]`.
    merge: String,
    /// The factor of the logits (the default `1 / sqrt(d)` when the export computes it).
    scale: f32,
    /// The merge (its output is the attention's).
    last: usize,
    /// The packed projection node's name.
    name: String,
}

/// The last `n` values of a reshape target: a constant, or a `Concat` whose last `n` inputs
/// are one-value constants (PyTorch's export of `reshape(B, N, 3, h, d)` with `B` and `N`
/// read from a `Shape`).
fn target_tail(g: &OpGraph, target: &str, n: usize) -> Option<Vec<i64>> {
    if let Some(t) = g.constant(target) {
        let v = t.as_i64()?;
        return (v.len() >= n).then(|| v[v.len() - n..].to_vec());
    }
    let c = &g.nodes[g.producer(target)?];
    if c.op != "Concat" || c.inputs.len() < n {
        return None;
    }
    c.inputs[c.inputs.len() - n..]
        .iter()
        .map(|i| match g.constant(i)?.as_i64()? {
            &[v] => Some(v),
            _ => None,
        })
        .collect()
}

/// A `Squeeze` of axis 0: its input.
fn squeezed(g: &OpGraph, k: usize) -> Option<&str> {
    let n = &g.nodes[k];
    let axes = match n.input(1) {
        Some(a) => g.constant(a)?.as_i64()?.to_vec(),
        None => match n.attrs.get("axes") {
            Some(Attr::Ints(a)) => a.clone(),
            _ => return None,
        },
    };
    (n.op == "Squeeze" && axes == [0]).then_some(n.input(0))?
}

/// Part `part` of three of the packed heads `[3, N, h, L, d]`: `Squeeze(SplitPart(t, axis 0),
/// 0)` or `Gather(t, part, axis 0)`. Returns the packed heads' producer.
fn packed_part(g: &OpGraph, k: usize, part: i64, nodes: &mut Vec<usize>) -> Option<usize> {
    let n = &g.nodes[k];
    let axis_zero = matches!(n.attrs.get("axis"), None | Some(Attr::Int(0)));
    match n.op.as_str() {
        "Gather" => {
            let index = g.constant(n.input(1)?)?;
            if !axis_zero || !index.dims.is_empty() || index.as_i64() != Some(&[part][..]) {
                return None;
            }
            nodes.push(k);
            g.producer(n.input(0)?)
        }
        "Squeeze" => {
            let sp = g.producer(squeezed(g, k)?)?;
            let pn = &g.nodes[sp];
            let equal = match pn.input(1) {
                Some(s) => g.constant(s)?.as_i64()? == [1, 1, 1],
                None => true,
            };
            let is_part = pn.op == "SplitPart"
                && matches!(pn.attrs.get("axis"), Some(Attr::Int(0)))
                && matches!(pn.attrs.get("part"), Some(Attr::Int(p)) if *p == part)
                && matches!(pn.attrs.get("parts"), Some(Attr::Int(3)));
            if !is_part || !equal || !read_by(g, sp, k) {
                return None;
            }
            nodes.extend([k, sp]);
            g.producer(pn.input(0)?)
        }
        _ => None,
    }
}

/// An optional factor on the queries or keys at node `k`: a `Mul` by a one-value constant or a
/// `Div` by one (`Some(f)` and the data's producer), or a `Mul` by the square root of
/// scaled_dot_product_attention's default scale (`None` and the data's producer); no factor:
/// `Some(1)` and `k` itself.
fn qk_factor(g: &OpGraph, k: usize, nodes: &mut Vec<usize>) -> Option<(usize, Option<f32>)> {
    if let Some((f, i)) = factor(g, k) {
        nodes.push(k);
        return Some((from_shaped(g, k, i)?, Some(f)));
    }
    if g.nodes[k].op == "Mul" {
        return sdpa_scaled(g, k, nodes).map(|p| (p, None));
    }
    Some((k, Some(1.0)))
}

fn match_packed_qkv(g: &OpGraph, sm: usize) -> Option<PackedQkv> {
    let mut nodes = Vec::new();
    let (m1, m2, f_logits) = softmax_products(g, sm, &mut nodes)?;
    let (q, fq) = qk_factor(g, from_shaped(g, m1, 0)?, &mut nodes)?;
    let (tk, fk) = qk_factor(g, from_shaped(g, m1, 1)?, &mut nodes)?;
    if !perm_is(g, tk, &[0, 1, 3, 2]) {
        return None;
    }
    nodes.push(tk);
    let k = from_shaped(g, tk, 0)?;
    let v = from_shaped(g, m2, 1)?;
    let t = packed_part(g, q, 0, &mut nodes)?;
    if packed_part(g, k, 1, &mut nodes)? != t || packed_part(g, v, 2, &mut nodes)? != t {
        return None;
    }
    // The packed heads are read by the three parts only (and by `Shape` nodes).
    let parts: Vec<usize> = g
        .consumers(g.nodes[t].output(0)?)
        .into_iter()
        .filter(|&r| !op_is(g, r, "Shape"))
        .collect();
    if parts.len() != 3 || !parts.iter().all(|p| nodes.contains(p)) || !perm_is(g, t, &[2, 0, 3, 1, 4]) {
        return None;
    }
    let r = from_shaped(g, t, 0)?;
    let proj = from_shaped(g, r, 0)?;
    let pn = &g.nodes[proj];
    if !op_is(g, r, "Reshape") || !op_is(g, proj, "MatMul") || pn.inputs.len() != 3 {
        return None;
    }
    let &[three, heads, head_dim] = target_tail(g, g.nodes[r].input(1)?, 3)?.as_slice() else {
        return None;
    };
    if three != 3 || heads <= 0 || head_dim <= 0 {
        return None;
    }
    nodes.extend([t, r, proj]);
    // output: Transpose([0, 2, 1, 3]) -> Reshape([N, L, C])
    let t2 = next_of(g, m2)?;
    let r2 = next_of(g, t2)?;
    if !perm_is(g, t2, &[0, 2, 1, 3]) || !op_is(g, r2, "Reshape") || g.nodes[r2].input(0) != g.nodes[t2].output(0) {
        return None;
    }
    nodes.extend([t2, r2]);
    let scale = match (fq, fk) {
        (Some(a), Some(b)) => a * b,
        (None, None) => 1.0 / (head_dim as f32).sqrt(),
        // one factor computed from a shape, the other not: not scaled_dot_product_attention
        _ => return None,
    } * f_logits;
    Some(PackedQkv {
        nodes,
        x: pn.input(0)?.to_string(),
        w: pn.input(1)?.to_string(),
        b: pn.input(2)?.to_string(),
        heads,
        head_dim,
        merge: g.nodes[r2].input(1)?.to_string(),
        scale,
        last: r2,
        name: pn.name.clone(),
    })
}

/// Attention on a packed query-key-value projection, batch first, as timm's ViT exports it
/// (`qkv(x).reshape(B, N, 3, h, d).permute(2, 0, 3, 1, 4).unbind(0)`, then
/// `scaled_dot_product_attention` or its explicit form) becomes separate query, key and value
/// projections (`<module>/q`, `/k`, `/v`, split from the packed one) and a
/// `ScaledDotProductAttention`; the output projection after it is left as it is. The shape
/// computations of the pattern are then unread.
fn fuse_packed_qkv(g: &mut OpGraph) -> usize {
    let mut fused = 0;
    let mut k = 0;
    while k < g.nodes.len() {
        let Some((m, new)) =
            match_packed_qkv(g, k).and_then(|m| packed_qkv_nodes(g, &m).map(|n| (m, n)))
        else {
            k += 1;
            continue;
        };
        g.replace_with_nodes(&m.nodes, new);
        fused += 1;
        k = 0;
    }
    fused
}

/// The replacement nodes of one packed match (and their constants, added to `g`); `None` when
/// the projection's constants do not have the shapes of one.
fn packed_qkv_nodes(g: &mut OpGraph, m: &PackedQkv) -> Option<Vec<OpNode>> {
    let (w, b) = (g.constant(&m.w)?, g.constant(&m.b)?);
    let e = *w.dims.first()?;
    let c = (m.heads * m.head_dim) as usize;
    if w.dims != [e, 3 * c] || b.len() != 3 * c {
        return None;
    }
    let out_name = g.nodes[m.last].outputs[0].clone();
    let prefix = m.name.rsplit_once('/').map_or(m.name.as_str(), |p| p.0).to_string();
    let (mut new, mut inputs) = split_projection(g, (&m.x, &w, &b), &out_name, &prefix)?;
    let split = format!("{out_name}::split");
    g.consts.insert(
        split.clone(),
        std::sync::Arc::new(ConstTensor::i64(vec![4], vec![0, 0, m.heads, m.head_dim])),
    );
    inputs.extend([split.clone(), split.clone(), split, m.merge.clone()]);
    new.push(OpNode {
        name: format!("{prefix}/attention"),
        op: SDPA.into(),
        inputs,
        outputs: vec![out_name],
        attrs: OpAttrs::new().with("scale", Attr::Float(m.scale)),
    });
    Some(new)
}

impl Kind for Attention {
    type Spec = AttentionOp;

    fn spec(&self) -> AttentionOp {
        AttentionOp {
            head_dim: self.head_dim,
            scale: self.scale,
        }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let h = self.heads(Self::token_inputs(inputs)?);
        Ok(Activation::Tokens(Self::merge(h.weights.matmul(h.v))))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("attention", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        cut.check_elementwise()?;
        let d = self.head_dim;
        let removed = cut.removed_output;
        // Whole heads only: every removed channel's head is removed entirely.
        for block in removed.chunk_by(|a, b| a / d == b / d) {
            let head = block[0] / d;
            if block.len() != d || block[0] != head * d {
                return Err(format!(
                    "attention loses channels {block:?} of head {head}; heads of {d} channels \
                     are removed whole"
                ));
            }
        }
        Ok(Layer::Attention(Attention {
            head_dim: d,
            scale: self.scale,
        }))
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Attention(self)
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        false
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let FeatureShape::Tokens([_, c]) = w.input_shape(0) else {
            return Err("attention of values that are not token sequences".into());
        };
        let (h, d) = ((c / self.head_dim) as i64, self.head_dim as i64);
        // [N, L, C] -> [N, L, h, d]; queries and values to [N, h, L, d], keys to [N, h, d, L].
        let split = w.constant("split_shape", ConstTensor::i64(vec![4], vec![0, 0, h, d]));
        let merge = w.constant("merge_shape", ConstTensor::i64(vec![3], vec![0, 0, h * d]));
        let scale = w.constant("scale", ConstTensor::scalar(self.scale));
        let mut heads = Vec::with_capacity(3);
        for (i, perm) in [(0, [0, 2, 1, 3]), (1, [0, 2, 3, 1]), (2, [0, 2, 1, 3])] {
            let x = w.input(i);
            let r = w.op("Reshape", vec![x, split.clone()], vec![]);
            heads.push(w.op("Transpose", vec![r], vec![("perm", Attr::Ints(perm.to_vec()))]));
        }
        let logits = w.op("MatMul", vec![heads[0].clone(), heads[1].clone()], vec![]);
        let logits = w.op("Mul", vec![logits, scale], vec![]);
        let weights = w.op("Softmax", vec![logits], vec![("axis", Attr::Int(-1))]);
        w.require_opset(13);
        let out = w.op("MatMul", vec![weights, heads[2].clone()], vec![]);
        let out = w.op(
            "Transpose",
            vec![out],
            vec![("perm", Attr::Ints(vec![0, 2, 1, 3]))],
        );
        w.op("Reshape", vec![out, merge], vec![]);
        Ok(())
    }
}

impl AttentionLrp for Attention {
    fn relevance(
        &self,
        inputs: &[&Activation],
        relevance: Activation,
        rule: AttentionRule,
        epsilon: f32,
    ) -> Result<Vec<Option<Activation>>, String> {
        let acts = Self::token_inputs(inputs.iter().map(|a| (*a).clone()).collect())?;
        let r = relevance
            .into_tokens()
            .ok_or("attention's relevance must be a token sequence")?;
        let h = self.heads(acts);
        let out = h.weights.clone().matmul(h.v.clone());
        if r.dims() != Self::merge(out.clone()).dims() {
            return Err(format!(
                "relevance has shape {:?}, attention's output {:?}",
                r.dims(),
                Self::merge(out).dims()
            ));
        }
        // The product O = A V: s = R / O; a term A_ij V_jk gets A_ij V_jk s_ik.
        let s = self.split(r) / stabilize(out, epsilon.into());
        let to_values = h.weights.clone().swap_dims(2, 3).matmul(s.clone());
        let tokens = |t: Tensor<4>| Some(Activation::Tokens(Self::merge(t)));
        match rule {
            AttentionRule::ConstantWeights => Ok(vec![None, None, tokens(h.v * to_values)]),
            AttentionRule::Uniform => {
                let r_v = (h.v.clone() * to_values).mul_scalar(0.5);
                let r_a = (h.weights.clone() * s.matmul(h.v.swap_dims(2, 3))).mul_scalar(0.5);
                // Softmax: R_in = x * (R_out - s * sum(R_out)) over each row of weights.
                let row = r_a.clone().sum_dim(3);
                let r_logits = h.logits.clone() * (r_a - h.weights * row);
                // The product scale * Q K^T, halves to either factor.
                let t = r_logits / stabilize(h.logits, epsilon.into());
                let half = 0.5 * self.scale;
                let r_q = (h.q.clone() * t.clone().matmul(h.k.clone())).mul_scalar(half);
                let r_k = (h.k * t.swap_dims(2, 3).matmul(h.q)).mul_scalar(half);
                Ok(vec![tokens(r_q), tokens(r_k), tokens(r_v)])
            }
        }
    }
}

impl GraphBuilder {
    /// Adds multi-head attention of `queries`, `keys` and `values` (token sequences of the
    /// same channels) in heads of `head_dim` channels, scaled by `1 / sqrt(head_dim)`.
    pub fn attention(
        &mut self,
        name: impl Into<String>,
        queries: NodeId,
        keys: NodeId,
        values: NodeId,
        head_dim: usize,
    ) -> crate::Result<NodeId> {
        self.add_op(name, AttentionOp::new(head_dim), &[queries, keys, values])
    }

    /// Adds multi-head self-attention of the token sequence `x` with `heads` heads: query,
    /// key and value projections (`<name>.q`, `<name>.k`, `<name>.v`, linear layers with bias
    /// from the input's channels to themselves), the attention (`<name>.attention`) and the
    /// output projection (`<name>.out`), as PyTorch's `nn.MultiheadAttention` computes it.
    pub fn self_attention(
        &mut self,
        name: impl Into<String>,
        x: NodeId,
        heads: usize,
    ) -> crate::Result<NodeId> {
        let name = name.into();
        let c = self.shape(x)?.channels();
        if heads == 0 || c % heads != 0 {
            return Err(crate::GraphError::Shape {
                node: name,
                message: format!("{c} channels do not split into {heads} heads"),
            });
        }
        let q = self.linear(format!("{name}.q"), x, c)?;
        let k = self.linear(format!("{name}.k"), x, c)?;
        let v = self.linear(format!("{name}.v"), x, c)?;
        let a = self.attention(format!("{name}.attention"), q, k, v, c / heads)?;
        self.linear(format!("{name}.out"), a, c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn node(op: &str, inputs: &[&str], output: &str, attrs: OpAttrs) -> OpNode {
        OpNode {
            name: format!("/attn/{output}"),
            op: op.into(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: vec![output.into()],
            attrs,
        }
    }

    fn perm(p: &[i64]) -> OpAttrs {
        OpAttrs::new().with("perm", Attr::Ints(p.to_vec()))
    }

    /// timm's explicit attention on `x` `[N, 3, 4]` (2 heads of 2 channels): the packed
    /// projection, its split into q, k, v, `q * q_factor`, `k^T` (times `k_factor` when given),
    /// the products and the merge. `q_factor` / `k_factor` are constants, or `"sqrt"` for a
    /// `Mul` by a `Sqrt` node (scaled_dot_product_attention's computed scale).
    fn timm_attention(packed: [i64; 3], q_factor: &str, k_factor: Option<&str>) -> OpGraph {
        let mut g = OpGraph::default();
        let c = |v: ConstTensor| Arc::new(v);
        let w: Vec<f32> = (0..4 * 12).map(|i| i as f32 / 48.0).collect();
        g.consts.insert("w".into(), c(ConstTensor::f32(vec![4, 12], w)));
        g.consts.insert("b".into(), c(ConstTensor::f32(vec![12], vec![0.1; 12])));
        let [three, h, d] = packed;
        let target = ConstTensor::i64(vec![5], vec![0, 0, three, h, d]);
        g.consts.insert("target".into(), c(target));
        g.consts.insert("axes".into(), c(ConstTensor::i64(vec![1], vec![0])));
        g.consts.insert("ones".into(), c(ConstTensor::i64(vec![3], vec![1, 1, 1])));
        g.consts.insert("scale".into(), c(ConstTensor::scalar(0.5)));
        g.consts.insert("half".into(), c(ConstTensor::scalar(0.7)));
        g.consts.insert("merge".into(), c(ConstTensor::i64(vec![3], vec![0, 0, 4])));
        let mut n = vec![
            node("MatMul", &["x", "w", "b"], "qkv", OpAttrs::new()),
            node("Reshape", &["qkv", "target"], "r", OpAttrs::new()),
            node("Transpose", &["r"], "t", perm(&[2, 0, 3, 1, 4])),
        ];
        for (j, part) in ["q0", "k0", "v0"].into_iter().enumerate() {
            let attrs = OpAttrs::new()
                .with("axis", Attr::Int(0))
                .with("part", Attr::Int(j as i64))
                .with("parts", Attr::Int(3));
            n.push(node("SplitPart", &["t", "ones"], &format!("{part}s"), attrs));
            let squeezed = &format!("{part}s");
            n.push(node("Squeeze", &[squeezed, "axes"], part, OpAttrs::new()));
        }
        n.push(node("Sqrt", &["half"], "root", OpAttrs::new()));
        let factor = |f: &str| if f == "sqrt" { "root" } else { "scale" };
        n.push(node("Mul", &["q0", factor(q_factor)], "q", OpAttrs::new()));
        n.push(node("Transpose", &["k0"], "kt", perm(&[0, 1, 3, 2])));
        let keys = match k_factor {
            Some(f) => {
                n.push(node("Mul", &["kt", factor(f)], "ks", OpAttrs::new()));
                "ks"
            }
            None => "kt",
        };
        n.extend([
            node("MatMul", &["q", keys], "logits", OpAttrs::new()),
            node(
                "Softmax",
                &["logits"],
                "weights",
                OpAttrs::new().with("axis", Attr::Int(-1)),
            ),
            node("MatMul", &["weights", "v0"], "heads", OpAttrs::new()),
            node("Transpose", &["heads"], "merged", perm(&[0, 2, 1, 3])),
            node("Reshape", &["merged", "merge"], "out", OpAttrs::new()),
        ]);
        g.nodes = n;
        g.outputs = vec!["out".into()];
        g
    }

    fn fused(mut g: OpGraph) -> Option<OpGraph> {
        (fuse_packed_qkv(&mut g) == 1).then_some(g)
    }

    #[test]
    fn timm_explicit_attention_fuses_with_its_constant_scale() {
        let g = fused(timm_attention([3, 2, 2], "scale", None)).expect("fuses");
        let ops: Vec<&str> = g.nodes.iter().map(|n| n.op.as_str()).collect();
        // the replacement where the merge was; the Sqrt of the unused factor stays until
        // unread nodes are dropped
        assert_eq!(ops, ["Sqrt", "MatMul", "MatMul", "MatMul", SDPA], "{ops:?}");
        let sdpa = g.nodes.last().unwrap();
        assert_eq!(sdpa.outputs, ["out"]);
        assert_eq!(sdpa.attrs.get("scale"), Some(&Attr::Float(0.5)));
        // the query projection is the packed one's first four columns
        assert_eq!(g.nodes[1].name, "/attn/q");
        assert_eq!(g.nodes[1].inputs[0], "x");
        let q = g.constant(&g.nodes[1].inputs[1]).unwrap();
        assert_eq!(q.dims, [4, 4]);
        assert_eq!(q.to_f32()[4..8], [12.0 / 48.0, 13.0 / 48.0, 14.0 / 48.0, 15.0 / 48.0]);
        assert_eq!(g.constant(&sdpa.inputs[3]).unwrap().as_i64(), Some(&[0, 0, 2, 2][..]));
    }

    #[test]
    fn the_computed_default_scale_on_both_factors_is_one_over_the_root_of_the_head_dim() {
        let g = fused(timm_attention([3, 2, 2], "sqrt", Some("sqrt"))).expect("fuses");
        let scale = g.nodes.last().unwrap().attrs.get("scale").cloned();
        assert_eq!(scale, Some(Attr::Float(1.0 / 2f32.sqrt())));
    }

    #[test]
    fn what_is_not_timm_attention_stays_unfused() {
        // the computed scale on the queries only: not scaled_dot_product_attention
        assert!(fused(timm_attention([3, 2, 2], "sqrt", None)).is_none());
        assert!(fused(timm_attention([3, 2, 2], "sqrt", Some("scale"))).is_none());
        // a packed reshape that is not [N, L, 3, h, d]
        assert!(fused(timm_attention([2, 2, 2], "scale", None)).is_none());
        // heads * head_dim not the projection's width
        assert!(fused(timm_attention([3, 2, 3], "scale", None)).is_none());
    }
}
