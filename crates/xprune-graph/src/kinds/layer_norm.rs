//! `layer_norm`: layer normalisation over the channel axis of any layout (ONNX
//! `LayerNormalization` over the last axis of channels-last values; ConvNeXt's `LayerNorm2d`
//! over the channels of channels-first maps, which PyTorch exports between two transposes).
//!
//! Every output depends on every channel, so the channels it reads are pinned unless pruning
//! through normalisations is allowed. Relevance propagation holds the standard deviation
//! constant (as AttnLRP does): the layer is then linear, `y = gamma * (x - mean(x)) / sigma +
//! beta`.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, unsupported};
use crate::kind::param::{param_from, select_param, unknown_role, vector_param};
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, Counts, Fusion, Imported, Kind, KindSpec, LinearMap,
    LrpView, Modified, OpImport, OpWriter, ParamInfo, ParamMod, ParamTensor, RuleClass,
};
use crate::kinds::util::{constant_of, one};
use crate::registry::Layer;
use crate::shape::{FeatureShape, Layout};
use crate::{map_activation, with_activation};
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Layer normalisation over the channel axis (Burn's `LayerNorm` normalises the last axis
/// only and keeps its epsilon private; this kind holds the same parameters).
#[derive(Module, Debug)]
pub struct LayerNorm {
    /// Per-channel scale.
    pub gamma: Param<Tensor<1>>,
    /// Per-channel offset, if any.
    pub beta: Option<Param<Tensor<1>>>,
    /// Stabiliser added to the variance.
    #[module(skip)]
    pub epsilon: f64,
}

/// Hyper-parameters of a layer norm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerNormOp {
    /// Number of channels.
    pub features: usize,
    /// Stabiliser added to the variance.
    pub epsilon: f64,
    /// Whether the layer has an offset `beta`.
    pub bias: bool,
}

impl KindSpec for LayerNormOp {
    type Layer = LayerNorm;
    const NAME: &'static str = "layer_norm";
    const ONNX_OPS: &'static [&'static str] = &["LayerNormalization", "ChannelLayerNorm"];
    const FUSIONS: &'static [Fusion] = &[Fusion {
        pattern: "Transpose(perm [0, 2, 3, 1]) -> LayerNormalization(axis -1) -> Transpose(perm [0, 3, 1, 2])",
        reads: &["Transpose", "LayerNormalization"],
        produces: "ChannelLayerNorm",
        internal: true,
        apply: fuse_channels_first,
    }];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(format!(
                "layer_norm epsilon must be finite and positive, got {}",
                self.epsilon
            ));
        }
        if inputs[0].channels() != self.features {
            return Err(format!(
                "layer_norm has {} features, its input has shape [{}]",
                self.features, inputs[0]
            ));
        }
        Ok(inputs[0])
    }

    fn counts(&self, _inputs: &[FeatureShape], output: FeatureShape) -> Counts {
        let c = output.channels() as u64;
        Counts {
            params: if self.bias { 2 * c } else { c },
            buffers: 0,
            macs: 0,
        }
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Normalize
    }

    fn init(&self, _init: &mut Initializer, device: &Device) -> LayerNorm {
        LayerNorm {
            gamma: vector_param(vec![1.0; self.features], device),
            beta: self
                .bias
                .then(|| vector_param(vec![0.0; self.features], device)),
            epsilon: self.epsilon,
        }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some((|| -> Result<Imported, ImportError> {
            node.check_attrs(&["axis", "epsilon", "stash_type"])?;
            let (x, shape) = node.act(0, "X")?;
            let axis = node.attrs.int("axis", -1)?;
            let rank = shape.layout().rank() as i64;
            // (between transposes the rank is the same, 4, and the last axis holds the channels)
            let last = axis == -1 || axis == rank - 1;
            let channels_first = node.op == "ChannelLayerNorm";
            if channels_first && shape.layout() != Layout::Spatial {
                return Err("a layer norm between transposes needs a channels-first map".into());
            }
            if !(last && (channels_first || shape.layout().channels_last())) {
                return Err(unsupported(
                    "axis",
                    axis,
                    format!(
                        "only the last axis of a channels-last value (this input is {})",
                        shape.layout().name()
                    ),
                ));
            }
            let c = shape.channels();
            let gamma = node.constant(1, "Scale")?;
            if gamma.len() != c {
                return Err(
                    format!("Scale must have {c} values, found {}", gamma.dims_string()).into(),
                );
            }
            let beta = match node.optional_constant(2, "B")? {
                Some(b) if b.len() == c => Some(vector_param(b.to_f32(), node.device)),
                Some(b) => {
                    return Err(format!("B must have {c} values, found {}", b.dims_string()).into());
                }
                None => None,
            };
            let epsilon =
                crate::kinds::batch_norm::readable_f64(node.attrs.float("epsilon", 1e-5)?);
            Ok(Imported::Node {
                layer: Layer::LayerNorm(LayerNorm {
                    gamma: vector_param(gamma.to_f32(), node.device),
                    beta,
                    epsilon,
                }),
                inputs: vec![x],
            })
        })())
    }
}

/// `Transpose(perm = [0, 2, 3, 1])` -> `LayerNormalization` over the last axis (`axis` -1 or
/// 3) ->
/// `Transpose(perm = [0, 3, 1, 2])` (each read once; PyTorch's `LayerNorm2d`) becomes one layer
/// norm over the channels of the channels-first map, named after the last transpose.
fn fuse_channels_first(g: &mut crate::kind::OpGraph) -> usize {
    let perm = |n: &crate::kind::OpNode, p: &[i64]| {
        n.op == "Transpose" && matches!(n.attrs.get("perm"), Some(Attr::Ints(v)) if v == p)
    };
    let mut fused = 0;
    let mut k = 0;
    while k < g.nodes.len() {
        if g.nodes[k].op != "LayerNormalization" || !g.single_use(k) {
            k += 1;
            continue;
        }
        // Only a norm over the last axis of the channels-last tensor is a norm over channels.
        let last_axis = match g.nodes[k].attrs.get("axis") {
            None => true,
            Some(Attr::Int(a)) => *a == -1 || *a == 3,
            Some(_) => false,
        };
        let found = (|| {
            if !last_axis {
                return None;
            }
            let t1 = g.producer(g.nodes[k].input(0)?)?;
            if !perm(&g.nodes[t1], &[0, 2, 3, 1]) || !g.single_use(t1) || g.nodes[t1].input(0).is_none() {
                return None;
            }
            let t2 = *g.consumers(&g.nodes[k].outputs[0]).first()?;
            perm(&g.nodes[t2], &[0, 3, 1, 2]).then_some((t1, t2))
        })();
        let Some((t1, t2)) = found else {
            k += 1;
            continue;
        };
        let ln = &g.nodes[k];
        let mut inputs = ln.inputs.clone();
        inputs[0] = g.nodes[t1].inputs[0].clone();
        let node = crate::kind::OpNode {
            name: g.nodes[t2].name.clone(),
            op: "ChannelLayerNorm".into(),
            inputs,
            outputs: g.nodes[t2].outputs.clone(),
            attrs: ln.attrs.clone(),
        };
        g.replace(&[t1, k, t2], node);
        fused += 1;
        k = 0;
    }
    fused
}

/// Layer norm of a channels-last tensor over its last axis.
fn ln_last<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Option<Tensor<1>>,
    eps: f64,
) -> Tensor<D> {
    burn::tensor::module::layer_norm(x, gamma, beta, eps)
}

/// The per-sample statistics along the channel axis: `mean`, and `sigma = sqrt(var + eps)`,
/// each broadcastable.
fn stats(x: &Activation, eps: f64) -> (Activation, Activation) {
    let axis = x.layout().channel_axis();
    let mean = map_activation!(x.clone(), t => t.mean_dim(axis));
    let centred = x
        .clone()
        .checked_add(map_activation!(mean.clone(), t => t.neg()))
        .expect("same layout");
    let var = map_activation!(centred, t => t.square().mean_dim(axis));
    let sigma = map_activation!(var, t => t.add_scalar(eps).sqrt());
    (mean, sigma)
}

impl Kind for LayerNorm {
    type Spec = LayerNormOp;

    fn spec(&self) -> LayerNormOp {
        LayerNormOp {
            features: self.gamma.dims()[0],
            epsilon: self.epsilon,
            bias: self.beta.is_some(),
        }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = one(inputs, "layer_norm")?;
        let g = self.gamma.val();
        let b = self.beta.as_ref().map(|b| b.val());
        let eps = self.epsilon;
        Ok(match x {
            Activation::Spatial(t) => {
                let t = t.permute([0, 2, 3, 1]);
                Activation::Spatial(ln_last(t, g, b, eps).permute([0, 3, 1, 2]))
            }
            other => map_activation!(other, t => ln_last(t, g.clone(), b.clone(), eps)),
        })
    }

    fn params(&self) -> Vec<ParamInfo> {
        let mut out = vec![ParamInfo::trainable("gamma", &self.gamma.val(), Some(0))];
        if let Some(b) = &self.beta {
            out.push(ParamInfo::trainable("beta", &b.val(), Some(0)));
        }
        out
    }

    fn set_param(&mut self, role: &str, data: TensorData, device: &Device) -> Result<(), String> {
        match role {
            "gamma" => self.gamma = param_from(data, device)?,
            "beta" => self.beta = Some(param_from(data, device)?),
            _ => return Err(unknown_role("layer_norm", role)),
        }
        Ok(())
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        // Only reached when pruning through normalisations is allowed: the statistics then
        // run over the remaining channels.
        cut.check_elementwise()?;
        let kept = cut.kept_output();
        let changed = !cut.removed_output.is_empty();
        Ok(Layer::LayerNorm(LayerNorm {
            gamma: if changed {
                select_param(&self.gamma, 0, &kept)
            } else {
                self.gamma.clone()
            },
            beta: self.beta.as_ref().map(|b| {
                if changed {
                    select_param(b, 0, &kept)
                } else {
                    b.clone()
                }
            }),
            epsilon: self.epsilon,
        }))
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Linear {
            map: Box::new(LnMap(self)),
            class: RuleClass::Norm,
        }
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        false
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        w.require_opset(17);
        let first = w.input_shape(0).layout() == Layout::Spatial;
        let mut x = w.input(0);
        if first {
            x = w.op(
                "Transpose",
                vec![x],
                vec![("perm", Attr::Ints(vec![0, 2, 3, 1]))],
            );
        }
        let mut inputs = vec![x, w.constant("gamma", constant_of(&self.gamma.val()))];
        if let Some(b) = &self.beta {
            inputs.push(w.constant("beta", constant_of(&b.val())));
        }
        let y = w.op(
            "LayerNormalization",
            inputs,
            vec![
                ("axis", Attr::Int(-1)),
                ("epsilon", Attr::Float(self.epsilon as f32)),
            ],
        );
        if first {
            w.op(
                "Transpose",
                vec![y],
                vec![("perm", Attr::Ints(vec![0, 3, 1, 2]))],
            );
        }
        Ok(())
    }
}

/// The layer norm with its standard deviation held at the value of the evaluated input: a
/// linear map `x -> gamma * (x - mean(x)) / sigma`, whose transpose is
/// `s -> c(gamma * s / sigma)` with `c(u) = u - mean(u)` (the centring is symmetric).
struct LnMap<'a>(&'a LayerNorm);

impl LnMap<'_> {
    fn vector(&self, p: &Option<ParamTensor>, layout: Layout) -> Option<Activation> {
        p.as_ref()
            .and_then(|t| t.r1().cloned())
            .map(|v| Activation::channel_vector(v, layout))
    }

    fn centre(x: Activation) -> Activation {
        let axis = x.layout().channel_axis();
        let mean = map_activation!(x.clone(), t => t.mean_dim(axis).neg());
        x.checked_add(mean).expect("same layout")
    }
}

impl LinearMap for LnMap<'_> {
    fn has_weight(&self) -> bool {
        true
    }

    fn has_bias(&self) -> bool {
        self.0.beta.is_some()
    }

    fn modify(&self, weight: &ParamMod, bias: &ParamMod) -> Modified {
        Modified {
            weight: Some(ParamTensor::R1(weight.apply(self.0.gamma.val()))),
            bias: match (&self.0.beta, bias.is_zero()) {
                (Some(b), false) => Some(ParamTensor::R1(bias.apply(b.val()))),
                _ => None,
            },
        }
    }

    fn forward(&self, x: &Activation, at: &Activation, p: &Modified) -> Activation {
        let (_, sigma) = stats(at, self.0.epsilon);
        let layout = x.layout();
        let g = self
            .vector(&p.weight, layout)
            .expect("a layer norm has a scale");
        let y = Self::centre(x.clone());
        let y = with_activation!(y, t => {
            let s = sigma.clone().into_tensor().expect("same rank");
            let g = g.clone().into_tensor().expect("same rank");
            Activation::from_tensor(t / s * g, layout)
        })
        .expect("same layout");
        match self.vector(&p.bias, layout) {
            Some(b) => y.checked_add(b).expect("same layout"),
            None => y,
        }
    }

    fn bias(&self, p: &Modified, at: &Activation) -> Option<Activation> {
        self.vector(&p.bias, at.layout())
    }

    fn transpose(&self, s: Activation, at: &Activation, p: &Modified) -> Activation {
        let (_, sigma) = stats(at, self.0.epsilon);
        let layout = s.layout();
        let g = self
            .vector(&p.weight, layout)
            .expect("a layer norm has a scale");
        let u = with_activation!(s, t => {
            let sg = sigma.clone().into_tensor().expect("same rank");
            let g = g.clone().into_tensor().expect("same rank");
            Activation::from_tensor(t * g / sg, layout)
        })
        .expect("same layout");
        Self::centre(u)
    }
}

impl GraphBuilder {
    /// Adds a layer norm over the channels of `input` (epsilon `1e-6` as in ConvNeXt, with an
    /// offset).
    pub fn layer_norm(&mut self, name: impl Into<String>, input: NodeId) -> crate::Result<NodeId> {
        let features = self.shape(input)?.channels();
        self.add_op(
            name,
            LayerNormOp {
                features,
                epsilon: 1e-6,
                bias: true,
            },
            &[input],
        )
    }
}
