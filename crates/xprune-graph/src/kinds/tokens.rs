//! `tokens`: a feature map as a sequence of tokens, one per position in row-major order, with
//! the map's channels as the tokens' channels (`x.flatten(2).transpose(1, 2)` in PyTorch: a
//! vision transformer's patch embedding is a strided convolution followed by this). The
//! channels stay; relevance goes back through the exact inverse rearrangement.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, keeps_batch, known_after_batch, reshape_target};
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, ConstTensor, Counts, Fusion, Imported, Kind, KindSpec,
    LrpView, OpAttrs, OpGraph, OpImport, OpNode, OpWriter, ParamInfo, Redistribute,
};
use crate::kinds::util::{all, one, pass_slice};
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::module::Module;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

/// A map as a token sequence.
#[derive(Module, Debug, Default)]
pub struct Tokens;

/// Hyper-parameters of a map-to-tokens rearrangement (none).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TokensOp {}

impl KindSpec for TokensOp {
    type Layer = Tokens;
    const NAME: &'static str = "tokens";
    const ONNX_OPS: &'static [&'static str] = &["Tokens"];
    const FUSIONS: &'static [Fusion] = &[Fusion {
        pattern: "Reshape(x, [N, C, H*W]) -> Transpose(perm [0, 2, 1])",
        reads: &["Reshape", "Transpose"],
        produces: "Tokens",
        internal: true,
        apply: fuse_tokens,
    }];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        match inputs[0] {
            FeatureShape::Spatial([c, h, w]) | FeatureShape::SpatialLast([h, w, c]) => {
                Ok(FeatureShape::Tokens([h * w, c]))
            }
            other => Err(format!("tokens expects a feature map, got [{other}]")),
        }
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise { unit: 1 }
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> Tokens {
        Tokens
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some((|| -> Result<Imported, ImportError> {
            let (x, shape) = node.act(0, "data")?;
            let FeatureShape::Spatial([c, h, w]) = shape else {
                return Err(format!("tokens of a value of shape [{shape}], not a feature map").into());
            };
            let target = reshape_target(node.input(1, "shape")?)?;
            let sizes = known_after_batch(&target);
            let fits = keeps_batch(target.first(), node.batch)
                && matches!(sizes.as_deref(), Some(&[tc, l]) if tc == c as i64
                    && (l == (h * w) as i64 || l == -1));
            if !fits {
                return Err(format!(
                    "a reshape of [N, {c}, {h}, {w}] to {target:?} before a transpose to tokens; \
                     only [N, {c}, {}] is a sequence of tokens",
                    h * w
                )
                .into());
            }
            Ok(Imported::Node {
                layer: Layer::Tokens(Tokens),
                inputs: vec![x],
            })
        })())
    }
}

/// `Reshape(x, shape) -> Transpose(perm [0, 2, 1])` (the reshape read once, its data not a
/// constant) becomes `Tokens(x, shape)`; the import checks that the shape is `[N, C, H*W]`.
fn fuse_tokens(g: &mut OpGraph) -> usize {
    let mut fused = 0;
    let mut k = 0;
    while k < g.nodes.len() {
        let n = &g.nodes[k];
        let data = n.input(0);
        let candidate = n.op == "Reshape"
            && g.single_use(k)
            && data.is_some_and(|d| g.constant(d).is_none())
            && !matches!(n.attrs.get("allowzero"), Some(Attr::Int(1)));
        let next = candidate
            .then(|| g.consumers(&n.outputs[0]).first().copied())
            .flatten()
            .filter(|&t| {
                let tn = &g.nodes[t];
                tn.op == "Transpose"
                    && matches!(tn.attrs.get("perm"), Some(Attr::Ints(p)) if p == &[0, 2, 1])
            });
        let Some(t) = next else {
            k += 1;
            continue;
        };
        let node = OpNode {
            name: g.nodes[t].name.clone(),
            op: "Tokens".into(),
            inputs: vec![
                n.inputs[0].clone(),
                n.inputs.get(1).cloned().unwrap_or_default(),
            ],
            outputs: g.nodes[t].outputs.clone(),
            attrs: OpAttrs::new(),
        };
        g.replace(&[k, t], node);
        fused += 1;
    }
    fused
}

impl Kind for Tokens {
    type Spec = TokensOp;

    fn spec(&self) -> TokensOp {
        TokensOp {}
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let last = one(inputs, "tokens")?
            .to_layout(crate::Layout::SpatialLast)
            .and_then(Activation::into_spatial_last)
            .ok_or("tokens of a value that is not a feature map")?;
        let [n, h, w, c] = last.dims();
        Ok(Activation::Tokens(last.reshape([n, h * w, c])))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("tokens", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        pass_slice(Tokens, cut)
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Redistribute(self)
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        all(inputs)
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let x = w.input(0);
        match w.input_shape(0) {
            FeatureShape::Spatial([c, h, wd]) => {
                let shape = w.constant(
                    "shape",
                    ConstTensor::i64(vec![3], vec![0, c as i64, (h * wd) as i64]),
                );
                let r = w.op("Reshape", vec![x, shape], vec![]);
                w.op("Transpose", vec![r], vec![("perm", Attr::Ints(vec![0, 2, 1]))]);
            }
            FeatureShape::SpatialLast([h, wd, c]) => {
                let shape = w.constant(
                    "shape",
                    ConstTensor::i64(vec![3], vec![0, (h * wd) as i64, c as i64]),
                );
                w.op("Reshape", vec![x, shape], vec![]);
            }
            other => return Err(format!("tokens of a value of shape [{other}]")),
        }
        Ok(())
    }
}

impl Redistribute for Tokens {
    fn redistribute(
        &self,
        inputs: &[&Activation],
        _output: &Activation,
        relevance: Activation,
    ) -> Result<Vec<Option<Activation>>, String> {
        let r = relevance
            .into_tokens()
            .ok_or("relevance of tokens is not a token sequence")?;
        let (layout, dims) = (inputs[0].layout(), inputs[0].dims());
        let [n, l, c] = r.dims();
        let (h, w) = match layout {
            crate::Layout::Spatial => (dims[2], dims[3]),
            _ => (dims[1], dims[2]),
        };
        if n * l * c != dims.iter().product::<usize>() || h * w != l {
            return Err(format!(
                "relevance has shape {:?}, the map {dims:?}",
                r.dims()
            ));
        }
        let map = Activation::SpatialLast(r.reshape([n, h, w, c]))
            .to_layout(layout)
            .ok_or("tokens of a value that is not a feature map")?;
        Ok(vec![Some(map)])
    }
}

impl GraphBuilder {
    /// Adds the rearrangement of a feature map into a token sequence (one token per position,
    /// row-major).
    pub fn tokens(&mut self, name: impl Into<String>, input: NodeId) -> crate::Result<NodeId> {
        self.add_op(name, TokensOp {}, &[input])
    }
}
