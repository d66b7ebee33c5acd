//! `hard_swish`: Burn's hard swish `x * relu6(x + 3) / 6` (`burn::nn::activation::HardSwish`), as in
//! MobileNetV3. ONNX `HardSwish` (opset 14), and `x * HardSigmoid(x)` with PyTorch's
//! constants (older exports) through a fusion.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::kind::onnx::{Attr, OpGraph, OpNode};

activation_kind! {
    /// Hyper-parameters of a hard swish (none).
    HardSwishOp for burn::nn::activation::HardSwish, name "hard_swish", onnx "HardSwish",
    forward |t| burn::tensor::activation::hard_swish(t),
    nonnegative |_inputs| false,
    new burn::nn::activation::HardSwish,
    fusions [HARD_SWISH_PATTERN],
    export |_s, w| {
        w.require_opset(14);
        let x = w.input(0);
        w.op("HardSwish", vec![x], vec![]);
        Ok(())
    }
}

/// The hard swish pattern of exports before opset 14.
const HARD_SWISH_PATTERN: crate::kind::Fusion = crate::kind::Fusion {
    pattern: "Mul(x, HardSigmoid(x; alpha = 1/6, beta = 1/2))",
    reads: &["HardSigmoid", "Mul"],
    produces: "HardSwish",
    internal: false,
    apply: fuse_hard_swish,
};

/// `Mul(x, HardSigmoid(x; alpha = 1/6, beta = 1/2))` (either order) becomes `HardSwish(x)`.
pub(crate) fn fuse_hard_swish(g: &mut OpGraph) -> usize {
    let mut fused = 0;
    let mut k = 0;
    while k < g.nodes.len() {
        let n = &g.nodes[k];
        let alpha = match n.attrs.get("alpha") {
            Some(Attr::Float(a)) => *a,
            None => 0.2,
            _ => -1.0,
        };
        let beta = match n.attrs.get("beta") {
            Some(Attr::Float(b)) => *b,
            None => 0.5,
            _ => -1.0,
        };
        let pytorch = (alpha - 1.0 / 6.0).abs() < 1e-6 && (beta - 0.5).abs() < 1e-6;
        let (Some(x), Some(out)) = (n.input(0), n.output(0)) else {
            k += 1;
            continue;
        };
        if n.op != "HardSigmoid" || n.inputs.len() != 1 || !pytorch || !g.single_use(k) {
            k += 1;
            continue;
        }
        let (x, out) = (x.to_string(), out.to_string());
        let Some(&m) = g.consumers(&out).first() else {
            k += 1;
            continue;
        };
        let mul = &g.nodes[m];
        let other = mul.inputs.iter().find(|i| **i != out);
        if mul.op != "Mul" || mul.inputs.len() != 2 || other != Some(&x) || mul.output(0).is_none() {
            k += 1;
            continue;
        }
        let node = OpNode {
            name: mul.name.clone(),
            op: "HardSwish".into(),
            inputs: vec![x],
            outputs: mul.outputs.clone(),
            attrs: Default::default(),
        };
        g.replace(&[k, m], node);
        fused += 1;
    }
    fused
}

impl GraphBuilder {
    /// Adds a hard swish.
    pub fn hard_swish(&mut self, name: impl Into<String>, input: NodeId) -> crate::Result<NodeId> {
        self.add_op(name, HardSwishOp {}, &[input])
    }
}
