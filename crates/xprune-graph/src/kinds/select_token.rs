//! `select_token`: one token of a sequence as a vector (`x[:, 0]`, a vision transformer's
//! class token read by its head), `[L, C]` to `[C]`. Channels stay; relevance goes to the
//! selected token, the others receive none.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::ImportError;
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, ConstTensor, Counts, Fusion, Imported, Kind, KindSpec,
    LrpView, OpImport, OpValue, OpWriter, ParamInfo, Redistribute,
};
use crate::kinds::util::{all, one, pass_slice};
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Selects the token at `index`.
#[derive(Module, Debug)]
pub struct SelectToken {
    /// The position of the token.
    #[module(skip)]
    pub index: usize,
}

/// Hyper-parameters of a token selection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SelectTokenOp {
    /// The position of the token.
    pub index: usize,
}

impl KindSpec for SelectTokenOp {
    type Layer = SelectToken;
    const NAME: &'static str = "select_token";
    const ONNX_OPS: &'static [&'static str] = &["Gather"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        match inputs[0] {
            FeatureShape::Tokens([l, c]) if self.index < l => Ok(FeatureShape::Flat(c)),
            FeatureShape::Tokens([l, _]) => Err(format!(
                "select_token reads token {} of a sequence of {l}",
                self.index
            )),
            other => Err(format!("select_token expects a token sequence, got [{other}]")),
        }
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise { unit: 1 }
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> SelectToken {
        SelectToken { index: self.index }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        // `x[:, i]` of a token sequence: a scalar index on axis 1.
        let (x, l, index) = match node.inputs {
            [OpValue::Act { node: x, shape: FeatureShape::Tokens([l, _]) }, OpValue::Const(i)]
                if i.dims.is_empty() =>
            {
                (*x, *l, i.as_i64().and_then(|v| v.first().copied()))
            }
            _ => return None,
        };
        if node.attrs.int("axis", 0).ok() != Some(1) {
            return None;
        }
        Some((|| -> Result<Imported, ImportError> {
            node.check_attrs(&["axis"])?;
            let i = index.ok_or("the token index must be an integer")?;
            let k = if i < 0 { i + l as i64 } else { i };
            let index = usize::try_from(k)
                .ok()
                .filter(|&k| k < l)
                .ok_or_else(|| format!("token {i} of a sequence of {l}"))?;
            Ok(Imported::Node {
                layer: Layer::SelectToken(SelectToken { index }),
                inputs: vec![x],
            })
        })())
    }
}

impl Kind for SelectToken {
    type Spec = SelectTokenOp;

    fn spec(&self) -> SelectTokenOp {
        SelectTokenOp { index: self.index }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = one(inputs, "select_token")?
            .into_tokens()
            .ok_or("select_token of a value that is not a token sequence")?;
        let [n, _, c] = x.dims();
        Ok(Activation::Flat(x.narrow(1, self.index, 1).reshape([n, c])))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("select_token", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        pass_slice(SelectToken { index: self.index }, cut)
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Redistribute(self)
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        all(inputs)
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let idx = w.constant("index", ConstTensor::i64(vec![], vec![self.index as i64]));
        let x = w.input(0);
        w.op("Gather", vec![x, idx], vec![("axis", Attr::Int(1))]);
        Ok(())
    }
}

impl Redistribute for SelectToken {
    fn redistribute(
        &self,
        inputs: &[&Activation],
        _output: &Activation,
        relevance: Activation,
    ) -> Result<Vec<Option<Activation>>, String> {
        let r = relevance
            .into_flat()
            .ok_or("relevance of a selected token is not a vector")?;
        let dims = inputs[0].dims();
        let [n, c] = r.dims();
        if dims.len() != 3 || dims[0] != n || dims[2] != c || self.index >= dims[1] {
            return Err(format!(
                "relevance has shape {:?}, the sequence {dims:?}",
                r.dims()
            ));
        }
        let l = dims[1];
        let token = r.reshape([n, 1, c]);
        let mut parts = Vec::with_capacity(3);
        if self.index > 0 {
            parts.push(token.zeros_like().expand([n, self.index, c]));
        }
        parts.push(token.clone());
        if self.index + 1 < l {
            parts.push(token.zeros_like().expand([n, l - self.index - 1, c]));
        }
        Ok(vec![Some(Activation::Tokens(Tensor::cat(parts, 1)))])
    }
}

impl GraphBuilder {
    /// Adds the selection of token `index` of the sequence `input` as a vector.
    pub fn select_token(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        index: usize,
    ) -> crate::Result<NodeId> {
        self.add_op(name, SelectTokenOp { index }, &[input])
    }
}
