//! `channel_permute`: the channels of the input in a given order (ONNX `Gather` along the
//! channel axis with constant indices). Channel shuffles that lose channels unevenly become
//! this kind.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, unsupported};
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, ConstTensor, Counts, Fusion, Imported, Kind, KindSpec,
    LrpView, OpImport, OpWriter, ParamInfo, Redistribute,
};
use crate::kinds::util::{all, channel_axis, is_channel_axis, one};
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Output channel `k` is input channel `order[k]`.
#[derive(Module, Debug)]
pub struct ChannelPermute {
    /// The input channel of every output channel.
    #[module(skip)]
    pub order: Vec<usize>,
}

/// Hyper-parameters of a channel permutation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelPermuteOp {
    /// The input channel of every output channel.
    pub order: Vec<usize>,
}

impl KindSpec for ChannelPermuteOp {
    type Layer = ChannelPermute;
    const NAME: &'static str = "channel_permute";
    const ONNX_OPS: &'static [&'static str] = &["Gather"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        let c = inputs[0].channels();
        if self.order.is_empty() {
            return Err("channel_permute selects no channel".into());
        }
        if let Some(bad) = self.order.iter().find(|&&i| i >= c) {
            return Err(format!(
                "channel_permute reads channel {bad} of an input of {c} channels"
            ));
        }
        Ok(inputs[0].with_channels(self.order.len()))
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Route(self.order.iter().map(|&c| (0, c)).collect())
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> ChannelPermute {
        ChannelPermute {
            order: self.order.clone(),
        }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        if !node.is_act(0) {
            return None;
        }
        Some((|| -> Result<Imported, ImportError> {
            node.check_attrs(&["axis"])?;
            let (x, shape) = node.act(0, "data")?;
            let axis = node.attrs.int("axis", 0)?;
            if !is_channel_axis(axis, shape) {
                return Err(unsupported(
                    "axis",
                    axis,
                    format!(
                        "only the channel axis ({}) of an activation",
                        channel_axis(shape)
                    ),
                ));
            }
            let idx = node.constant(1, "indices")?;
            if idx.dims.len() != 1 {
                return Err(format!(
                    "indices must be a vector (a scalar would drop the channel axis), found {}",
                    idx.dims_string()
                )
                .into());
            }
            let c = shape.channels() as i64;
            let order = idx
                .as_i64()
                .ok_or("indices must be integers")?
                .iter()
                .map(|&i| {
                    let k = if i < 0 { i + c } else { i };
                    usize::try_from(k)
                        .ok()
                        .filter(|&k| (k as i64) < c)
                        .ok_or_else(|| {
                            ImportError::from(format!("index {i} is out of range for {c} channels"))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Imported::Node {
                layer: Layer::ChannelPermute(ChannelPermute { order }),
                inputs: vec![x],
            })
        })())
    }
}

/// The layer that reads `order` from the kept input channels, after removal: kept output
/// positions keep their order, input indices are renumbered.
pub(crate) fn renumbered(order: &[usize], cut: &ChannelCut<'_>) -> Result<Vec<usize>, String> {
    let kept_in = cut.kept_input(0);
    let mut new_index = vec![usize::MAX; cut.inputs[0].channels()];
    for (n, &i) in kept_in.iter().enumerate() {
        new_index[i] = n;
    }
    cut.kept_output()
        .iter()
        .map(|&j| {
            let i = order[j];
            match new_index.get(i) {
                Some(&n) if n != usize::MAX => Ok(n),
                _ => Err(format!(
                    "output channel {j} reads input channel {i}, which is removed while it is kept"
                )),
            }
        })
        .collect()
}

impl Kind for ChannelPermute {
    type Spec = ChannelPermuteOp;

    fn spec(&self) -> ChannelPermuteOp {
        ChannelPermuteOp {
            order: self.order.clone(),
        }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        Ok(one(inputs, "channel_permute")?.select_channels(&self.order))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("channel_permute", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        Ok(Layer::ChannelPermute(ChannelPermute {
            order: renumbered(&self.order, cut)?,
        }))
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Redistribute(self)
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        all(inputs)
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let axis = channel_axis(w.input_shape(0));
        let idx = w.constant(
            "indices",
            ConstTensor::i64(
                vec![self.order.len()],
                self.order.iter().map(|&i| i as i64).collect(),
            ),
        );
        let x = w.input(0);
        w.op("Gather", vec![x, idx], vec![("axis", Attr::Int(axis))]);
        Ok(())
    }
}

/// Relevance of a channel selection's input: every output channel's relevance goes back to
/// the input channel it was read from (summed where an input channel is read twice).
pub(crate) fn route_back(
    input: &Activation,
    order: &[usize],
    relevance: Activation,
) -> Result<Activation, String> {
    let c = input.channels();
    // One-hot [out, in] matrix applied along the channel axis.
    let mut m = vec![0.0f32; order.len() * c];
    for (j, &i) in order.iter().enumerate() {
        m[j * c + i] += 1.0;
    }
    let device = relevance.device();
    let m = Tensor::<2>::from_data(TensorData::new(m, [order.len(), c]), &device);
    let layout = relevance.layout();
    let axis = layout.channel_axis();
    // Move channels last, multiply, move back.
    let dims = relevance.dims();
    let rank = dims.len();
    let back = crate::with_activation!(relevance, t => {
        let t = t.swap_dims(axis, rank - 1);
        let sdims = t.dims();
        let rows: usize = sdims[..rank - 1].iter().product();
        let flat = t.reshape([rows, order.len()]).matmul(m.clone());
        let mut out_dims = sdims;
        out_dims[rank - 1] = c;
        let out = flat.reshape(out_dims).swap_dims(axis, rank - 1);
        Activation::from_tensor(out, layout)
    });
    back.ok_or_else(|| "relevance of an unexpected rank".to_string())
}

impl Redistribute for ChannelPermute {
    fn redistribute(
        &self,
        inputs: &[&Activation],
        _output: &Activation,
        relevance: Activation,
    ) -> Result<Vec<Option<Activation>>, String> {
        // A permutation is undone by selecting with the inverse order.
        let c = inputs[0].channels();
        let mut inverse = vec![usize::MAX; c];
        let mut permutation = self.order.len() == c;
        for (j, &i) in self.order.iter().enumerate() {
            if inverse[i] != usize::MAX {
                permutation = false;
            }
            inverse[i] = j;
        }
        if permutation {
            return Ok(vec![Some(relevance.select_channels(&inverse))]);
        }
        Ok(vec![Some(route_back(inputs[0], &self.order, relevance)?)])
    }
}

impl GraphBuilder {
    /// Adds the channels of `input` in the order `order` (output channel `k` is input channel
    /// `order[k]`).
    pub fn channel_permute(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        order: Vec<usize>,
    ) -> crate::Result<NodeId> {
        self.add_op(name, ChannelPermuteOp { order }, &[input])
    }
}
