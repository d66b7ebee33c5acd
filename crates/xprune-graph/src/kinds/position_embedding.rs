//! `position_embedding`: a learned `[L, C]` table added to a token sequence of the same shape
//! (`x + pos_embedding`, vision transformers' learned position embedding).
//!
//! Channel `k` of the table follows channel `k` of the sequence. Relevance is the epsilon
//! rule's for an addition of a constant: each token value keeps the share `x / (x + p)` of its
//! relevance, the table's share is absorbed as a bias's would be.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::ImportError;
use crate::kind::param::{param_from, select_param, unknown_role};
use crate::kind::{
    Arity, ChannelCut, ChannelFlow, ConstTensor, Counts, Fusion, Imported, Kind, KindSpec, LrpView,
    OpImport, OpValue, OpWriter, ParamInfo, Redistribute,
};
use crate::kinds::util::one;
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// The standard deviation of the initial table (torchvision draws it from `N(0, 0.02^2)`;
/// xprune from the uniform distribution of the same standard deviation).
const INIT_STD: f32 = 0.02;

/// The stabiliser of the relevance share `x / (x + p)`.
const EPSILON: f64 = 1e-6;

/// A learned table added to a token sequence.
#[derive(Module, Debug)]
pub struct PositionEmbedding {
    /// The table, `[L, C]`.
    pub table: Param<Tensor<2>>,
}

/// Hyper-parameters of a position embedding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PositionEmbeddingOp {
    /// Tokens of the sequence.
    pub tokens: usize,
    /// Channels of the sequence.
    pub channels: usize,
}

impl KindSpec for PositionEmbeddingOp {
    type Layer = PositionEmbedding;
    const NAME: &'static str = "position_embedding";
    const ONNX_OPS: &'static [&'static str] = &["Add"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        let want = FeatureShape::Tokens([self.tokens, self.channels]);
        if inputs[0] != want {
            return Err(format!(
                "position_embedding of shape [{want}] expects a token sequence of that shape, \
                 got [{}]",
                inputs[0]
            ));
        }
        Ok(want)
    }

    fn counts(&self, _inputs: &[FeatureShape], output: FeatureShape) -> Counts {
        Counts {
            params: output.numel() as u64,
            buffers: 0,
            macs: 0,
        }
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise { unit: 1 }
    }

    fn init(&self, init: &mut Initializer, device: &Device) -> PositionEmbedding {
        let n = self.tokens * self.channels;
        let values = init.uniform(n, INIT_STD * 3f32.sqrt());
        PositionEmbedding {
            table: crate::kind::param::param_with(values, [self.tokens, self.channels], device),
        }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        // A token sequence plus a constant table of its shape (`[1, L, C]` or `[L, C]`).
        let (x, l, c, table) = match node.inputs {
            [OpValue::Act { node: x, shape: FeatureShape::Tokens([l, c]) }, OpValue::Const(t)]
            | [OpValue::Const(t), OpValue::Act { node: x, shape: FeatureShape::Tokens([l, c]) }] => {
                (*x, *l, *c, t.clone())
            }
            _ => return None,
        };
        if table.dims != [1, l, c] && table.dims != [l, c] {
            return None;
        }
        Some((|| -> Result<Imported, ImportError> {
            node.check_attrs(&[])?;
            Ok(Imported::Node {
                layer: Layer::PositionEmbedding(PositionEmbedding {
                    table: crate::kind::param::param_with(table.to_f32(), [l, c], node.device),
                }),
                inputs: vec![x],
            })
        })())
    }
}

impl Kind for PositionEmbedding {
    type Spec = PositionEmbeddingOp;

    fn spec(&self) -> PositionEmbeddingOp {
        let [tokens, channels] = self.table.dims();
        PositionEmbeddingOp { tokens, channels }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = one(inputs, "position_embedding")?
            .into_tokens()
            .ok_or("position_embedding of a value that is not a token sequence")?;
        Ok(Activation::Tokens(x + self.table.val().unsqueeze::<3>()))
    }

    fn params(&self) -> Vec<ParamInfo> {
        vec![ParamInfo::trainable("table", &self.table.val(), Some(1))]
    }

    fn set_param(&mut self, role: &str, data: TensorData, device: &Device) -> Result<(), String> {
        match role {
            "table" => self.table = param_from(data, device)?,
            _ => return Err(unknown_role("position_embedding", role)),
        }
        Ok(())
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        cut.check_elementwise()?;
        let table = if cut.removed_output.is_empty() {
            self.table.clone()
        } else {
            select_param(&self.table, 1, &cut.kept_output())
        };
        Ok(Layer::PositionEmbedding(PositionEmbedding { table }))
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Redistribute(self)
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        false
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let [l, c] = self.table.dims();
        let values = crate::tensor_util::to_vec(&self.table.val());
        let table = w.constant("table", ConstTensor::f32(vec![1, l, c], values));
        let x = w.input(0);
        w.op("Add", vec![x, table], vec![]);
        Ok(())
    }
}

impl Redistribute for PositionEmbedding {
    fn redistribute(
        &self,
        inputs: &[&Activation],
        output: &Activation,
        relevance: Activation,
    ) -> Result<Vec<Option<Activation>>, String> {
        if relevance.dims() != output.dims() {
            return Err(format!(
                "relevance has shape {:?}, the output {:?}",
                relevance.dims(),
                output.dims()
            ));
        }
        let (Some(x), Some(z), Some(r)) = (
            inputs[0].as_tokens(),
            output.as_tokens(),
            relevance.into_tokens(),
        ) else {
            return Err("position_embedding of values that are not token sequences".into());
        };
        let share = x.clone() / crate::tensor_util::stabilize(z.clone(), EPSILON);
        Ok(vec![Some(Activation::Tokens(share * r))])
    }
}

impl GraphBuilder {
    /// Adds a learned position embedding to the token sequence `input` (a table of its shape,
    /// drawn with standard deviation 0.02).
    pub fn position_embedding(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
    ) -> crate::Result<NodeId> {
        let FeatureShape::Tokens([tokens, channels]) = self.shape(input)? else {
            return Err(crate::GraphError::Shape {
                node: name.into(),
                message: "a position embedding needs a token sequence".into(),
            });
        };
        self.add_op(name, PositionEmbeddingOp { tokens, channels }, &[input])
    }
}
