//! `elu`: Burn's exponential linear unit `x` for `x > 0`, `alpha * (exp(x) - 1)` otherwise
//! (`burn::nn::activation::Elu`), ONNX `Elu`.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, OpAttrs, OpGraph, OpNode};
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, Counts, Fusion, Imported, Kind, KindSpec, LrpView,
    OpImport, OpWriter, ParamInfo,
};
use crate::kinds::batch_norm::readable_f64;
use crate::kinds::util::{one, pass_slice};
use crate::map_activation;
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::nn::activation::Elu;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of an ELU.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EluOp {
    /// Scale of the negative part (ONNX and PyTorch default: 1).
    pub alpha: f64,
}

impl KindSpec for EluOp {
    type Layer = Elu;
    const NAME: &'static str = "elu";
    const ONNX_OPS: &'static [&'static str] = &["Elu"];
    const FUSIONS: &'static [Fusion] = &[ELU_PATTERN];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        if !self.alpha.is_finite() {
            return Err(format!("elu needs a finite alpha, got {}", self.alpha));
        }
        Ok(inputs[0])
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise { unit: 1 }
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> Elu {
        Elu { alpha: self.alpha }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some((|| -> Result<Imported, ImportError> {
            node.check_attrs(&["alpha"])?;
            let (x, _) = node.act(0, "X")?;
            let alpha = readable_f64(node.attrs.float("alpha", 1.0)?);
            Ok(Imported::Node {
                layer: Layer::Elu(Elu { alpha }),
                inputs: vec![x],
            })
        })())
    }
}

impl Kind for Elu {
    type Spec = EluOp;

    fn spec(&self) -> EluOp {
        EluOp { alpha: self.alpha }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = one(inputs, "elu")?;
        let alpha = self.alpha;
        Ok(map_activation!(x, t => burn::tensor::activation::elu(t, alpha)))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("elu", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        pass_slice(self.clone(), cut)
    }

    fn lrp(&self) -> LrpView<'_> {
        // As for every element-wise activation: relevance passes unchanged.
        LrpView::Pass
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        // Non-negative inputs stay non-negative (ELU is the identity on them).
        inputs[0]
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let x = w.input(0);
        w.op("Elu", vec![x], vec![("alpha", Attr::Float(self.alpha as f32))]);
        Ok(())
    }
}

impl GraphBuilder {
    /// Adds an ELU with the given alpha.
    pub fn elu(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        alpha: f64,
    ) -> crate::Result<NodeId> {
        self.add_op(name, EluOp { alpha }, &[input])
    }
}

/// ELU written out: `Where(LessOrEqual(x, 0), Mul(Sub(Exp(x), 1), alpha), x)`, which is how
/// Burn's `elu` records (`mask_where(x <= 0, alpha * (exp(x) - 1))`) and how some exporters
/// write it.
const ELU_PATTERN: Fusion = Fusion {
    pattern: "Where(LessOrEqual(x, 0), Mul(Sub(Exp(x), 1), alpha), x)",
    reads: &["Where", "LessOrEqual", "Exp", "Sub", "Mul"],
    produces: "Elu",
    internal: false,
    apply: fuse_elu,
};

/// The node producing `value` when it is `op` with `arity` inputs and read only once.
fn single(g: &OpGraph, value: &str, op: &str, arity: usize) -> Option<usize> {
    let k = g.producer(value)?;
    let n = &g.nodes[k];
    (n.op == op && n.inputs.len() == arity && g.single_use(k)).then_some(k)
}

/// Replaces each written-out ELU (see [`ELU_PATTERN`]) by one `Elu` node named after the
/// `Where`.
fn fuse_elu(g: &mut OpGraph) -> usize {
    let mut fused = 0;
    let mut k = 0;
    while k < g.nodes.len() {
        match match_elu(g, k) {
            Some((x, alpha, remove)) => {
                let w = &g.nodes[k];
                let node = OpNode {
                    name: w.name.clone(),
                    op: "Elu".into(),
                    inputs: vec![x],
                    outputs: w.outputs.clone(),
                    attrs: OpAttrs::new().with("alpha", Attr::Float(alpha)),
                };
                g.replace(&remove, node);
                fused += 1;
                k = 0;
            }
            None => k += 1,
        }
    }
    fused
}

/// `(x, alpha, nodes to replace)` when node `k` is the `Where` of a written-out ELU.
fn match_elu(g: &OpGraph, k: usize) -> Option<(String, f32, Vec<usize>)> {
    let w = &g.nodes[k];
    if w.op != "Where" || w.inputs.len() != 3 || w.output(0).is_none() {
        return None;
    }
    let (cond, value, x) = (w.input(0)?, w.input(1)?, w.input(2)?);
    let le = single(g, cond, "LessOrEqual", 2)?;
    let le_node = &g.nodes[le];
    if le_node.input(0)? != x || g.scalar(le_node.input(1)?)? != 0.0 {
        return None;
    }
    let mul = single(g, value, "Mul", 2)?;
    let mul_node = &g.nodes[mul];
    let (sub_out, alpha) = match (g.scalar(mul_node.input(1)?), g.scalar(mul_node.input(0)?)) {
        (Some(a), _) => (mul_node.input(0)?, a),
        (None, Some(a)) => (mul_node.input(1)?, a),
        _ => return None,
    };
    let sub = single(g, sub_out, "Sub", 2)?;
    let sub_node = &g.nodes[sub];
    if g.scalar(sub_node.input(1)?)? != 1.0 {
        return None;
    }
    let exp = single(g, sub_node.input(0)?, "Exp", 1)?;
    if g.nodes[exp].input(0)? != x || !alpha.is_finite() {
        return None;
    }
    Some((x.to_string(), alpha, vec![k, le, mul, sub, exp]))
}
