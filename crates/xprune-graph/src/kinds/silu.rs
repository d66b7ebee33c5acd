//! `silu`: Burn's sigmoid linear unit `x * sigmoid(x)` (`burn::nn::activation::SiLU`), as in
//! EfficientNet. ONNX has no SiLU operator: exporters write `Mul(x, Sigmoid(x))`, which a
//! fusion turns back into one node, and export writes that pair.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::kind::onnx::{OpGraph, OpNode};

activation_kind! {
    /// Hyper-parameters of a SiLU (none).
    SiluOp for burn::nn::activation::SiLU, name "silu", onnx "SiLU",
    forward |t| burn::tensor::activation::silu(t),
    nonnegative |_inputs| false,
    new burn::nn::activation::SiLU,
    fusions [SILU_PATTERN],
    export |_s, w| {
        let x = w.input(0);
        let s = w.op("Sigmoid", vec![x.clone()], vec![]);
        w.op("Mul", vec![x, s], vec![]);
        Ok(())
    }
}

/// The SiLU pattern of ONNX exports.
const SILU_PATTERN: crate::kind::Fusion = crate::kind::Fusion {
    pattern: "Mul(x, Sigmoid(x))",
    reads: &["Sigmoid", "Mul"],
    produces: "SiLU",
    internal: true,
    apply: fuse_silu,
};

/// `Mul(x, Sigmoid(x))` (either order, the sigmoid read only by the product) becomes one
/// `SiLU(x)` node named after the product.
pub(crate) fn fuse_silu(g: &mut OpGraph) -> usize {
    let mut fused = 0;
    let mut k = 0;
    while k < g.nodes.len() {
        let n = &g.nodes[k];
        let (Some(x), Some(out)) = (n.input(0), n.output(0)) else {
            k += 1;
            continue;
        };
        if n.op != "Sigmoid" || n.inputs.len() != 1 || !g.single_use(k) {
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
            op: "SiLU".into(),
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
    /// Adds a SiLU.
    pub fn silu(&mut self, name: impl Into<String>, input: NodeId) -> crate::Result<NodeId> {
        self.add_op(name, SiluOp {}, &[input])
    }
}
