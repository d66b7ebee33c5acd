//! `channel_shuffle`: ShuffleNet's channel shuffle with `g` groups: `[C, H, W]` viewed as
//! `[g, C/g, H, W]`, transposed to `[C/g, g, H, W]` and flattened back, so output channel
//! `a * g + b` is input channel `b * C/g + a`. ONNX `Reshape`-`Transpose`-`Reshape`, which a
//! fusion turns into one node. After an uneven removal the remaining order is no longer a
//! shuffle; the layer then becomes a [`channel_permute`](super::channel_permute).

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, keeps_batch, known_after_batch, reshape_target};
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, ConstTensor, Counts, Dim, Fusion, Imported, Kind,
    KindSpec, LrpView, OpAttrs, OpGraph, OpImport, OpNode, OpWriter, ParamInfo,
    Redistribute,
};
use crate::kinds::channel_permute::{ChannelPermute, renumbered};
use crate::kinds::util::{all, one, spatial_in};
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::module::Module;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

/// Channel shuffle with `groups` groups.
#[derive(Module, Debug)]
pub struct ChannelShuffle {
    /// Number of groups.
    #[module(skip)]
    pub groups: usize,
}

/// Hyper-parameters of a channel shuffle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelShuffleOp {
    /// Number of groups.
    pub groups: usize,
}

/// The input channel of every output channel of a shuffle of `c` channels in `g` groups.
pub fn shuffle_order(c: usize, g: usize) -> Vec<usize> {
    let per = c / g.max(1);
    (0..c).map(|j| (j % g) * per + j / g).collect()
}

impl KindSpec for ChannelShuffleOp {
    type Layer = ChannelShuffle;
    const NAME: &'static str = "channel_shuffle";
    const ONNX_OPS: &'static [&'static str] = &["ChannelShuffle"];
    const FUSIONS: &'static [Fusion] = &[Fusion {
        pattern: "Reshape(x, [N, g, C/g, H, W]) -> Transpose(perm [0, 2, 1, 3, 4]) -> Reshape(., [N, C, H, W])",
        reads: &["Reshape", "Transpose"],
        produces: "ChannelShuffle",
        internal: true,
        apply: fuse_shuffle,
    }];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        let [c, _, _] = spatial_in(inputs[0], "channel_shuffle")?;
        if self.groups == 0 || c % self.groups != 0 {
            return Err(format!(
                "channel_shuffle groups = {} must divide the {c} channels",
                self.groups
            ));
        }
        Ok(inputs[0])
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Route(
            shuffle_order(inputs[0].channels(), self.groups)
                .into_iter()
                .map(|i| (0, i))
                .collect(),
        )
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> ChannelShuffle {
        ChannelShuffle {
            groups: self.groups,
        }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some((|| -> Result<Imported, ImportError> {
            let (x, shape) = node.act(0, "data")?;
            let [c, h, w] = spatial_in(shape, "a channel shuffle").map_err(ImportError::from)?;
            // input 1 is the first reshape's target, [N, g, C/g, H, W]; input 2 the second
            // one's, [N, C, H, W]
            let target = |i: usize, what: &str| reshape_target(node.input(i, what)?);
            let keeps_batch = |d: Option<&Dim>| keeps_batch(d, node.batch);
            let (first, second) = (target(1, "shape")?, target(2, "shape")?);
            let parsed = known_after_batch(&first);
            let Some([g, per, th, tw]) = parsed
                .as_deref()
                .and_then(|v| <[i64; 4]>::try_from(v).ok())
                .filter(|_| keeps_batch(first.first()))
            else {
                return Err(format!(
                    "a reshape of [N, {shape}] to {first:?} before the transpose is not a channel \
                     shuffle"
                )
                .into());
            };
            let back = known_after_batch(&second);
            let restores = keeps_batch(second.first())
                && back.as_deref() == Some(&[c as i64, h as i64, w as i64][..]);
            if !restores {
                return Err(format!(
                    "a channel shuffle must reshape back to [N, {c}, {h}, {w}], this one to \
                     {second:?}"
                )
                .into());
            }
            let fits = g > 0 && g * per == c as i64 && th == h as i64 && tw == w as i64;
            if !fits {
                return Err(format!(
                    "a reshape of [N, {shape}] to [N, {g}, {per}, {th}, {tw}] is not a channel shuffle"
                )
                .into());
            }
            Ok(Imported::Node {
                layer: Layer::ChannelShuffle(ChannelShuffle { groups: g as usize }),
                inputs: vec![x],
            })
        })())
    }
}

/// `Reshape(x, [N, g, C/g, H, W])` -> `Transpose(perm = [0, 2, 1, 3, 4])` -> `Reshape` (each
/// read once) becomes `ChannelShuffle(x, first target, second target)`; the import checks
/// both targets.
fn fuse_shuffle(g: &mut OpGraph) -> usize {
    let mut fused = 0;
    let mut k = 0;
    while k < g.nodes.len() {
        let n = &g.nodes[k];
        let data = n.input(0);
        // A constant chain is folded by the importer, not a shuffle.
        if n.op != "Reshape" || !g.single_use(k) || data.is_none_or(|d| g.constant(d).is_some()) {
            k += 1;
            continue;
        }
        let out = n.outputs[0].clone();
        let Some(&t) = g.consumers(&out).first() else {
            k += 1;
            continue;
        };
        let tn = &g.nodes[t];
        let perm_ok = matches!(tn.attrs.get("perm"), Some(Attr::Ints(p)) if p == &[0, 2, 1, 3, 4]);
        if tn.op != "Transpose" || !perm_ok || !g.single_use(t) {
            k += 1;
            continue;
        }
        let Some(&r2) = g.consumers(&tn.outputs[0]).first() else {
            k += 1;
            continue;
        };
        let literal_zeros = |n: &OpNode| matches!(n.attrs.get("allowzero"), Some(Attr::Int(1)));
        if g.nodes[r2].op != "Reshape" || literal_zeros(n) || literal_zeros(&g.nodes[r2]) {
            k += 1;
            continue;
        }
        let node = OpNode {
            name: g.nodes[r2].name.clone(),
            op: "ChannelShuffle".into(),
            inputs: vec![
                n.inputs[0].clone(),
                n.inputs.get(1).cloned().unwrap_or_default(),
                g.nodes[r2].inputs.get(1).cloned().unwrap_or_default(),
            ],
            outputs: g.nodes[r2].outputs.clone(),
            attrs: OpAttrs::new(),
        };
        g.replace(&[k, t, r2], node);
        fused += 1;
    }
    fused
}

impl Kind for ChannelShuffle {
    type Spec = ChannelShuffleOp;

    fn spec(&self) -> ChannelShuffleOp {
        ChannelShuffleOp {
            groups: self.groups,
        }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = one(inputs, "channel_shuffle")?;
        let t = x
            .into_spatial()
            .ok_or("channel_shuffle expects a channels-first map")?;
        let [b, c, h, w] = t.dims();
        let g = self.groups;
        let t: burn::tensor::Tensor<5> = t.reshape([b, g, c / g, h, w]);
        Ok(Activation::Spatial(t.swap_dims(1, 2).reshape([b, c, h, w])))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("channel_shuffle", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        let order = shuffle_order(cut.inputs[0].channels(), self.groups);
        let new = renumbered(&order, cut)?;
        let c = new.len();
        if c % self.groups == 0 && new == shuffle_order(c, self.groups) {
            Ok(Layer::ChannelShuffle(ChannelShuffle {
                groups: self.groups,
            }))
        } else {
            Ok(Layer::ChannelPermute(ChannelPermute { order: new }))
        }
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Redistribute(self)
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        all(inputs)
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let FeatureShape::Spatial([c, h, wd]) = w.input_shape(0) else {
            return Err("channel shuffle of a value that is not a channels-first map".into());
        };
        let g = self.groups as i64;
        let (c, h, wd) = (c as i64, h as i64, wd as i64);
        let split = w.constant(
            "split_shape",
            ConstTensor::i64(vec![5], vec![0, g, c / g, h, wd]),
        );
        let back = w.constant("shape", ConstTensor::i64(vec![4], vec![0, c, h, wd]));
        let x = w.input(0);
        let r = w.op("Reshape", vec![x, split], vec![]);
        let t = w.op(
            "Transpose",
            vec![r],
            vec![("perm", Attr::Ints(vec![0, 2, 1, 3, 4]))],
        );
        w.op("Reshape", vec![t, back], vec![]);
        Ok(())
    }
}

impl Redistribute for ChannelShuffle {
    fn redistribute(
        &self,
        inputs: &[&Activation],
        _output: &Activation,
        relevance: Activation,
    ) -> Result<Vec<Option<Activation>>, String> {
        // The inverse of a shuffle with g groups of C/g is a shuffle with C/g groups.
        let c = inputs[0].channels();
        let inverse = shuffle_order(c, c / self.groups.max(1));
        Ok(vec![Some(relevance.select_channels(&inverse))])
    }
}

impl GraphBuilder {
    /// Adds a channel shuffle with `groups` groups.
    pub fn channel_shuffle(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        groups: usize,
    ) -> crate::Result<NodeId> {
        self.add_op(name, ChannelShuffleOp { groups }, &[input])
    }
}
