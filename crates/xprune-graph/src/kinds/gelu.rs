//! `gelu`: Burn's Gaussian error linear unit (`burn::nn::Gelu`), exact or with the tanh
//! approximation, as in ConvNeXt and vision transformers. ONNX has `Gelu` only from opset 20:
//! exporters write `x * 0.5 * (1 + erf(x / sqrt 2))`, which a fusion turns back into one
//! node; export writes that pattern (opset 13) for the exact form and `Gelu` (opset 20) for
//! the approximation.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, unsupported};
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, ConstTensor, Counts, Fusion, Imported, Kind, KindSpec,
    LrpView, OpAttrs, OpGraph, OpImport, OpNode, OpWriter, ParamInfo,
};
use crate::kinds::util::{one, pass_slice};
use crate::map_activation;
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::nn::Gelu;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of a GELU.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GeluOp {
    /// Whether the tanh approximation is used.
    #[serde(default)]
    pub approximate: bool,
}

impl KindSpec for GeluOp {
    type Layer = Gelu;
    const NAME: &'static str = "gelu";
    const ONNX_OPS: &'static [&'static str] = &["Gelu"];
    const FUSIONS: &'static [Fusion] = &[Fusion {
        pattern: "x * 0.5 * (1 + Erf(x / sqrt(2))) (Div or Mul by 1/sqrt(2); the products in either order)",
        reads: &["Div", "Mul", "Erf", "Add"],
        produces: "Gelu",
        internal: false,
        apply: fuse_erf_gelu,
    }];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        Ok(inputs[0])
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise { unit: 1 }
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> Gelu {
        Gelu {
            approximate: self.approximate,
        }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some((|| -> Result<Imported, ImportError> {
            node.check_attrs(&["approximate"])?;
            let (x, _) = node.act(0, "X")?;
            let approximate = match node.attrs.string("approximate")?.as_deref() {
                None | Some("none") => false,
                Some("tanh") => true,
                Some(other) => return Err(unsupported("approximate", other, "none or tanh")),
            };
            Ok(Imported::Node {
                layer: Layer::Gelu(Gelu { approximate }),
                inputs: vec![x],
            })
        })())
    }
}

/// Whether `value` is a one-element constant within `1e-4` of `want`.
fn is_const(g: &OpGraph, value: &str, want: f32) -> bool {
    g.scalar(value).is_some_and(|v| (v - want).abs() < 1e-4)
}

/// The node reading `value`, if `value` is read by exactly one node.
fn only_reader(g: &OpGraph, value: &str) -> Option<usize> {
    let readers = g.consumers(value);
    (readers.len() == 1 && g.uses(value) == 1).then(|| readers[0])
}

/// The input of a binary node that is not `value`.
fn other_input<'a>(n: &'a OpNode, value: &str) -> Option<&'a String> {
    (n.inputs.len() == 2)
        .then(|| n.inputs.iter().find(|i| *i != value))
        .flatten()
}

/// `x * 0.5 * (1 + erf(x / sqrt 2))` as PyTorch exports it (`Div` or a `Mul` by `1/sqrt 2`,
/// `Erf`, `Add` of 1, then `Mul` by `x` and by `0.5` in either order) becomes `Gelu(x)`.
fn fuse_erf_gelu(g: &mut OpGraph) -> usize {
    let mut fused = 0;
    let mut k = 0;
    'next: while k < g.nodes.len() {
        if g.nodes[k].op != "Erf" {
            k += 1;
            continue;
        }
        let erf = k;
        let Some(scale) = g.nodes[erf].input(0).and_then(|v| g.producer(v)) else {
            k += 1;
            continue;
        };
        let sn = &g.nodes[scale];
        if sn.inputs.len() != 2 || sn.input(0).is_none() || sn.input(1).is_none() {
            k += 1;
            continue;
        }
        let x = match sn.op.as_str() {
            "Div" if is_const(g, &sn.inputs[1], std::f32::consts::SQRT_2) => sn.inputs[0].clone(),
            "Mul" => {
                let [a, b] = [&sn.inputs[0], &sn.inputs[1]];
                if is_const(g, b, std::f32::consts::FRAC_1_SQRT_2) {
                    a.clone()
                } else if is_const(g, a, std::f32::consts::FRAC_1_SQRT_2) {
                    b.clone()
                } else {
                    k += 1;
                    continue;
                }
            }
            _ => {
                k += 1;
                continue;
            }
        };
        let chain = || -> Option<(Vec<usize>, usize)> {
            only_reader(g, &sn.outputs[0]).filter(|&r| r == erf)?;
            let add = only_reader(g, &g.nodes[erf].outputs[0])?;
            let an = &g.nodes[add];
            if an.op != "Add" || !is_const(g, other_input(an, &g.nodes[erf].outputs[0])?, 1.0) {
                return None;
            }
            let m1 = only_reader(g, &an.outputs[0])?;
            let mn = &g.nodes[m1];
            if mn.op != "Mul" {
                return None;
            }
            let other = other_input(mn, &an.outputs[0])?;
            if *other == x {
                // x * (1 + erf) then * 0.5
                let m2 = only_reader(g, &mn.outputs[0])?;
                let n2 = &g.nodes[m2];
                (n2.op == "Mul" && is_const(g, other_input(n2, &mn.outputs[0])?, 0.5))
                    .then(|| (vec![scale, erf, add, m1, m2], m2))
            } else {
                // (x * 0.5) * (1 + erf)
                let h = g.producer(other)?;
                let hn = &g.nodes[h];
                let half = hn.op == "Mul"
                    && hn.inputs.contains(&x)
                    && other_input(hn, &x).is_some_and(|c| is_const(g, c, 0.5));
                (half && only_reader(g, &hn.outputs[0]) == Some(m1))
                    .then(|| (vec![scale, erf, add, h, m1], m1))
            }
        };
        let Some((nodes, last)) = chain() else {
            k += 1;
            continue 'next;
        };
        let node = OpNode {
            name: g.nodes[last].name.clone(),
            op: "Gelu".into(),
            inputs: vec![x],
            outputs: g.nodes[last].outputs.clone(),
            attrs: OpAttrs::new(),
        };
        g.replace(&nodes, node);
        fused += 1;
        k = 0;
    }
    fused
}

impl Kind for Gelu {
    type Spec = GeluOp;

    fn spec(&self) -> GeluOp {
        GeluOp {
            approximate: self.approximate,
        }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = one(inputs, "gelu")?;
        Ok(map_activation!(x, t => self.forward(t)))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("gelu", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        pass_slice(self.clone(), cut)
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Pass
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        false
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let x = w.input(0);
        if self.approximate {
            w.require_opset(20);
            w.op(
                "Gelu",
                vec![x],
                vec![("approximate", Attr::Str("tanh".into()))],
            );
            return Ok(());
        }
        let sqrt2 = w.constant("sqrt2", ConstTensor::scalar(std::f32::consts::SQRT_2));
        let one_c = w.constant("one", ConstTensor::scalar(1.0));
        let half = w.constant("half", ConstTensor::scalar(0.5));
        let d = w.op("Div", vec![x.clone(), sqrt2], vec![]);
        let e = w.op("Erf", vec![d], vec![]);
        let a = w.op("Add", vec![e, one_c], vec![]);
        let m = w.op("Mul", vec![x, a], vec![]);
        w.op("Mul", vec![m, half], vec![]);
        Ok(())
    }
}

impl GraphBuilder {
    /// Adds a GELU (`approximate`: the tanh approximation).
    pub fn gelu(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        approximate: bool,
    ) -> crate::Result<NodeId> {
        self.add_op(name, GeluOp { approximate }, &[input])
    }
}
