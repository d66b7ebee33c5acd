//! `class_token`: a learned token put before a token sequence (`torch.cat([cls.expand(n, -1,
//! -1), x], dim=1)`, the class token of vision transformers), `[L, C]` to `[L + 1, C]`.
//!
//! The token's channel `k` follows the sequence's channel `k` (the token loses the channels
//! its sequence loses). Relevance: the input tokens keep theirs; the class token's share, like
//! a bias's, is absorbed.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::ImportError;
use crate::kind::param::{param_from, select_param, unknown_role, vector_param};
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, ConstTensor, Counts, Fusion, Imported, Kind, KindSpec,
    LrpView, OpAttrs, OpGraph, OpImport, OpNode, OpWriter, ParamInfo, Redistribute,
};
use crate::kinds::util::one;
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// A learned token prepended to a sequence.
#[derive(Module, Debug)]
pub struct ClassToken {
    /// The token, one value per channel.
    pub token: Param<Tensor<1>>,
}

/// Hyper-parameters of a class token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassTokenOp {
    /// Channels of the token.
    pub channels: usize,
}

impl KindSpec for ClassTokenOp {
    type Layer = ClassToken;
    const NAME: &'static str = "class_token";
    const ONNX_OPS: &'static [&'static str] = &["ClassToken"];
    const FUSIONS: &'static [Fusion] = &[Fusion {
        pattern: "Concat(axis 1, [Expand(token [1, 1, C], shape), x])",
        reads: &["Expand", "Concat"],
        produces: "ClassToken",
        internal: true,
        apply: fuse_class_token,
    }];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        match inputs[0] {
            FeatureShape::Tokens([l, c]) if c == self.channels => Ok(FeatureShape::Tokens([l + 1, c])),
            other => Err(format!(
                "class_token of {} channels expects a token sequence [L, {}], got [{other}]",
                self.channels, self.channels
            )),
        }
    }

    fn counts(&self, _inputs: &[FeatureShape], output: FeatureShape) -> Counts {
        Counts {
            params: output.channels() as u64,
            buffers: 0,
            macs: 0,
        }
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise { unit: 1 }
    }

    fn init(&self, _init: &mut Initializer, device: &Device) -> ClassToken {
        // torchvision starts the class token at zero.
        ClassToken {
            token: vector_param(vec![0.0; self.channels], device),
        }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some((|| -> Result<Imported, ImportError> {
            let (x, shape) = node.act(0, "sequence")?;
            let token = node.constant(1, "token")?;
            let FeatureShape::Tokens([_, c]) = shape else {
                return Err(format!("a class token before a value of shape [{shape}]").into());
            };
            if token.dims != [1, 1, c] {
                return Err(format!(
                    "a class token of shape {} before tokens of {c} channels (expected [1, 1, {c}])",
                    token.dims_string()
                )
                .into());
            }
            Ok(Imported::Node {
                layer: Layer::ClassToken(ClassToken {
                    token: vector_param(token.to_f32(), node.device),
                }),
                inputs: vec![x],
            })
        })())
    }
}

/// `Concat(axis 1, [Expand(t, shape), x])` with `t` a constant of shape `[1, 1, C]` (the
/// expand read once) becomes `ClassToken(x, t)`: the token expanded to the batch and put
/// before the sequence. The expand's target is not needed (a valid model expands to
/// `[N, 1, C]`); the nodes computing it are left unread.
fn fuse_class_token(g: &mut OpGraph) -> usize {
    let mut fused = 0;
    let mut k = 0;
    while k < g.nodes.len() {
        let n = &g.nodes[k];
        let axis_one = matches!(n.attrs.get("axis"), Some(Attr::Int(1)));
        let expand = (n.op == "Concat" && axis_one && n.inputs.len() == 2)
            .then(|| n.input(0).and_then(|v| g.producer(v)))
            .flatten()
            .filter(|&e| {
                let en = &g.nodes[e];
                en.op == "Expand"
                    && g.single_use(e)
                    && en
                        .input(0)
                        .and_then(|t| g.constant(t))
                        .is_some_and(|t| t.dims.len() == 3 && t.dims[..2] == [1, 1])
            });
        let Some(e) = expand else {
            k += 1;
            continue;
        };
        let node = OpNode {
            name: n.name.clone(),
            op: "ClassToken".into(),
            inputs: vec![n.inputs[1].clone(), g.nodes[e].inputs[0].clone()],
            outputs: n.outputs.clone(),
            attrs: OpAttrs::new(),
        };
        g.replace(&[e, k], node);
        fused += 1;
    }
    fused
}

impl Kind for ClassToken {
    type Spec = ClassTokenOp;

    fn spec(&self) -> ClassTokenOp {
        ClassTokenOp {
            channels: self.token.dims()[0],
        }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = one(inputs, "class_token")?
            .into_tokens()
            .ok_or("class_token of a value that is not a token sequence")?;
        let [n, _, c] = x.dims();
        let token = self.token.val().reshape([1, 1, c]).expand([n, 1, c]);
        Ok(Activation::Tokens(Tensor::cat(vec![token, x], 1)))
    }

    fn params(&self) -> Vec<ParamInfo> {
        vec![ParamInfo::trainable("token", &self.token.val(), Some(0))]
    }

    fn set_param(&mut self, role: &str, data: TensorData, device: &Device) -> Result<(), String> {
        match role {
            "token" => self.token = param_from(data, device)?,
            _ => return Err(unknown_role("class_token", role)),
        }
        Ok(())
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        cut.check_elementwise()?;
        let token = if cut.removed_output.is_empty() {
            self.token.clone()
        } else {
            select_param(&self.token, 0, &cut.kept_output())
        };
        Ok(Layer::ClassToken(ClassToken { token }))
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Redistribute(self)
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        false
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let values = crate::tensor_util::to_vec(&self.token.val());
        let c = values.len();
        let token = w.constant("token", ConstTensor::f32(vec![1, 1, c], values));
        // Expand the token to [N, 1, C] with N read off the input.
        let x = w.input(0);
        let shape = w.op("Shape", vec![x.clone()], vec![]);
        let first = w.constant("batch_axis", ConstTensor::i64(vec![1], vec![0]));
        let batch = w.op("Gather", vec![shape, first], vec![("axis", Attr::Int(0))]);
        let rest = w.constant("token_shape", ConstTensor::i64(vec![2], vec![1, c as i64]));
        let target = w.op("Concat", vec![batch, rest], vec![("axis", Attr::Int(0))]);
        let expanded = w.op("Expand", vec![token, target], vec![]);
        w.op("Concat", vec![expanded, x], vec![("axis", Attr::Int(1))]);
        Ok(())
    }
}

impl Redistribute for ClassToken {
    fn redistribute(
        &self,
        inputs: &[&Activation],
        _output: &Activation,
        relevance: Activation,
    ) -> Result<Vec<Option<Activation>>, String> {
        let r = relevance
            .into_tokens()
            .ok_or("relevance of a class token is not a token sequence")?;
        let [n, l, c] = r.dims();
        if inputs[0].dims() != [n, l.saturating_sub(1), c] {
            return Err(format!(
                "relevance has shape {:?}, the sequence {:?}",
                r.dims(),
                inputs[0].dims()
            ));
        }
        Ok(vec![Some(Activation::Tokens(r.narrow(1, 1, l - 1)))])
    }
}

impl GraphBuilder {
    /// Adds a learned class token (starting at zero, as torchvision's) before the token
    /// sequence `input`.
    pub fn class_token(&mut self, name: impl Into<String>, input: NodeId) -> crate::Result<NodeId> {
        let channels = self.shape(input)?.channels();
        self.add_op(name, ClassTokenOp { channels }, &[input])
    }
}
