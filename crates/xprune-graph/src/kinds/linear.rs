//! `linear`: Burn's fully connected layer (`burn::nn::Linear`, weight stored `[in, out]`),
//! applied to the channel axis of any channels-last layout: vectors `[N, C]`, tokens
//! `[N, L, C]` and channels-last maps `[N, H, W, C]`.

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, unsupported};
use crate::kind::param::{param_from, select_param, unknown_role, vector_param};
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, ConstTensor, Counts, Fusion, Imported, Kind, KindSpec,
    LinearMap, LrpView, Modified, OpGraph, OpImport, OpWriter, ParamInfo, ParamMod, ParamTensor,
    Pin, RuleClass,
};
use crate::kinds::util::{constant_of, one, per_channel_values};
use crate::map_activation;
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of a fully connected layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearOp {
    /// Input features (channels).
    pub in_features: usize,
    /// Output features (channels).
    pub out_features: usize,
    /// Whether the layer has a bias.
    pub bias: bool,
}

impl KindSpec for LinearOp {
    type Layer = Linear;
    const NAME: &'static str = "linear";
    const ONNX_OPS: &'static [&'static str] = &["Gemm", "MatMul"];
    const FUSIONS: &'static [Fusion] = &[Fusion {
        pattern: "Add(MatMul(x, W), b) or Add(Gemm(x, W), b) with a constant b along the output channels",
        reads: &["MatMul", "Gemm", "Add"],
        produces: "MatMul",
        internal: false,
        apply: fuse_matmul_bias,
    }];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        let (i, o) = (self.in_features, self.out_features);
        if i == 0 || o == 0 {
            return Err(format!(
                "linear needs at least one input and one output feature, got {i} -> {o}"
            ));
        }
        let x = inputs[0];
        if !x.layout().channels_last() {
            return Err(format!(
                "linear expects a flat input of {i} features (or channels last), got a map of \
                 shape [{x}]; add a flatten node"
            ));
        }
        if x.channels() != i {
            return Err(format!(
                "linear expects {i} input features, its input has {}",
                x.channels()
            ));
        }
        Ok(x.with_channels(o))
    }

    fn counts(&self, inputs: &[FeatureShape], output: FeatureShape) -> Counts {
        let (i, o) = (inputs[0].channels() as u64, output.channels() as u64);
        Counts {
            params: i * o + if self.bias { o } else { 0 },
            buffers: 0,
            macs: i * o * output.positions() as u64,
        }
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Mix {
            output: Pin::Free,
            input: Pin::Free,
        }
    }

    fn init(&self, init: &mut Initializer, device: &Device) -> Linear {
        let weight = init.he_uniform(
            [self.in_features, self.out_features],
            self.in_features,
            device,
        );
        let bias = self
            .bias
            .then(|| init.bias(self.out_features, self.in_features, device));
        Linear { weight, bias }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some(match node.op {
            "Gemm" => import_gemm(node),
            _ => import_matmul(node),
        })
    }
}

/// The bias of a linear node whose output has per-sample shape `output`: one value per
/// output channel along the channel axis, or one value for all (ONNX broadcasting that keeps
/// the output's rank).
fn linear_bias(t: &ConstTensor, output: FeatureShape) -> Result<Vec<f32>, ImportError> {
    per_channel_values(t, output).map_err(|e| format!("the bias: {e}").into())
}

fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

fn linear_node(
    node: &OpImport<'_>,
    x: usize,
    weight: Vec<f32>,
    in_f: usize,
    out_f: usize,
    bias: Option<Vec<f32>>,
) -> Imported {
    let layer = Linear {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(weight, [in_f, out_f]),
            node.device,
        )),
        bias: bias.map(|b| vector_param(b, node.device)),
    };
    Imported::Node {
        layer: Layer::Linear(layer),
        inputs: vec![x],
    }
}

fn import_gemm(node: &OpImport<'_>) -> Result<Imported, ImportError> {
    node.check_attrs(&["alpha", "beta", "transA", "transB"])?;
    let a = node.attrs;
    let (x, shape) = node.act(0, "A")?;
    if !matches!(shape, FeatureShape::Flat(_)) {
        return Err(format!(
            "input A must be a matrix [N, features], found [N, {shape}]; flatten it first"
        )
        .into());
    }
    if a.int("transA", 0)? != 0 {
        return Err(unsupported(
            "transA",
            a.int("transA", 0)?,
            "only transA = 0",
        ));
    }
    let alpha = a.float("alpha", 1.0)?;
    if alpha != 1.0 {
        return Err(unsupported("alpha", alpha, "only alpha = 1"));
    }
    let beta = a.float("beta", 1.0)?;
    if node.has(2) && beta != 1.0 {
        return Err(unsupported("beta", beta, "only beta = 1"));
    }
    let trans_b = a.int("transB", 0)?;
    let b = node.constant(1, "B")?;
    let [r, k] = b.dims[..] else {
        return Err(format!("B must be a matrix, found shape {}", b.dims_string()).into());
    };
    let values = b.to_f32();
    // Burn's linear weight is [in, out].
    let (weight, in_f, out_f) = match trans_b {
        0 => (values, r, k),
        1 => (transpose(&values, r, k), k, r),
        v => return Err(unsupported("transB", v, "transB = 0 or 1")),
    };
    if shape.channels() != in_f {
        return Err(format!("A has {} features but B expects {in_f}", shape.channels()).into());
    }
    let bias = node
        .optional_constant(2, "C")?
        .map(|c| linear_bias(&c, FeatureShape::Flat(out_f)))
        .transpose()?;
    Ok(linear_node(node, x, weight, in_f, out_f, bias))
}

fn import_matmul(node: &OpImport<'_>) -> Result<Imported, ImportError> {
    node.check_attrs(&[])?;
    let (x, shape) = node.act(0, "A")?;
    if !shape.layout().channels_last() {
        return Err(format!(
            "A is a channels-first map [N, {shape}]; only products over the channel axis of \
             vectors, token sequences and channels-last maps are supported"
        )
        .into());
    }
    let b = node.constant(1, "B")?;
    let [in_f, out_f] = b.dims[..] else {
        return Err(format!(
            "B must be a constant matrix [in, out], found shape {}",
            b.dims_string()
        )
        .into());
    };
    if shape.channels() != in_f {
        return Err(format!("A has {} channels but B expects {in_f}", shape.channels()).into());
    }
    // A third input is the bias fused from a following Add (see `fuse_matmul_bias`).
    let bias = node
        .optional_constant(2, "bias")?
        .map(|c| linear_bias(&c, shape.with_channels(out_f)))
        .transpose()?;
    Ok(linear_node(node, x, b.to_f32(), in_f, out_f, bias))
}

/// `MatMul(x, W)` or a bias-less `Gemm(x, W)` followed by `Add(·, b)` with a constant `b`
/// whose values run along the last axis becomes one node with `b` as its third input.
fn fuse_matmul_bias(g: &mut OpGraph) -> usize {
    let mut fused = 0;
    let mut k = 0;
    while k < g.nodes.len() {
        let n = &g.nodes[k];
        let candidate = (n.op == "MatMul" || n.op == "Gemm")
            && n.inputs.len() == 2
            && g.single_use(k)
            && g.constant(&n.inputs[1]).is_some_and(|w| w.dims.len() == 2);
        if !candidate {
            k += 1;
            continue;
        }
        let out = n.outputs[0].clone();
        let Some(&add) = g.consumers(&out).first() else {
            k += 1;
            continue;
        };
        let a = &g.nodes[add];
        if a.op != "Add" || a.inputs.len() != 2 {
            k += 1;
            continue;
        }
        let other = if a.inputs[0] == out {
            &a.inputs[1]
        } else {
            &a.inputs[0]
        };
        let Some(b) = g.constant(other) else {
            k += 1;
            continue;
        };
        let w = g.constant(&n.inputs[1]).expect("checked above");
        let trans_b = matches!(n.attrs.get("transB"), Some(Attr::Int(1)));
        let out_f = if n.op == "Gemm" && trans_b {
            w.dims[0]
        } else {
            w.dims[1]
        };
        let leading_ones = !b.dims.is_empty() && b.dims[..b.dims.len() - 1].iter().all(|&d| d == 1);
        let scalar = b.len() == 1;
        if !(scalar || (b.dims.last() == Some(&out_f) && leading_ones)) {
            k += 1;
            continue;
        }
        // The constant itself becomes the third input: the import checks its shape against
        // the output's (a bias of higher rank would change the output's rank).
        let bias_name = other.clone();
        let mut m = n.clone();
        m.inputs.push(bias_name);
        m.outputs = a.outputs.clone();
        if m.op == "Gemm" {
            m.attrs = m.attrs.with("beta", Attr::Float(1.0));
        }
        g.replace(&[k, add], m);
        fused += 1;
    }
    fused
}

fn apply<const D: usize>(x: Tensor<D>, w: Tensor<2>, b: Option<Tensor<1>>) -> Tensor<D> {
    let out = x.matmul(w.unsqueeze());
    match b {
        Some(b) => out + b.unsqueeze(),
        None => out,
    }
}

impl Kind for Linear {
    type Spec = LinearOp;

    fn spec(&self) -> LinearOp {
        let [in_features, out_features] = self.weight.dims();
        LinearOp {
            in_features,
            out_features,
            bias: self.bias.is_some(),
        }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = one(inputs, "linear")?;
        if !x.layout().channels_last() {
            return Err("linear expects a channels-last value".into());
        }
        let w = self.weight.val();
        let b = self.bias.as_ref().map(|b| b.val());
        Ok(map_activation!(x, t => apply(t, w.clone(), b.clone())))
    }

    fn params(&self) -> Vec<ParamInfo> {
        let mut out = vec![ParamInfo::trainable("weight", &self.weight.val(), Some(1))];
        if let Some(b) = &self.bias {
            out.push(ParamInfo::trainable("bias", &b.val(), Some(0)));
        }
        out
    }

    fn set_param(&mut self, role: &str, data: TensorData, device: &Device) -> Result<(), String> {
        match role {
            "weight" => self.weight = param_from(data, device)?,
            "bias" => self.bias = Some(param_from(data, device)?),
            _ => return Err(unknown_role("linear", role)),
        }
        Ok(())
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        let mut linear = self.clone();
        // Burn stores the weight as [in, out].
        if cut.input_changed(0) {
            linear.weight = select_param(&linear.weight, 0, &cut.kept_input(0));
        }
        if !cut.removed_output.is_empty() {
            let kept = cut.kept_output();
            linear.weight = select_param(&linear.weight, 1, &kept);
            linear.bias = linear.bias.map(|b| select_param(&b, 0, &kept));
        }
        Ok(Layer::Linear(linear))
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Linear {
            map: Box::new(LinearMapOf(self)),
            class: RuleClass::Dense,
        }
    }

    fn nonnegative(&self, _inputs: &[bool]) -> bool {
        false
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let [in_f, out_f] = self.weight.dims();
        let weight = crate::tensor_util::to_vec(&self.weight.val());
        if matches!(w.input_shape(0), FeatureShape::Flat(_)) {
            // Gemm with transB = 1 takes [out, in].
            let mut inputs = vec![
                w.input(0),
                w.constant(
                    "weight",
                    ConstTensor::f32(vec![out_f, in_f], transpose(&weight, in_f, out_f)),
                ),
            ];
            if let Some(b) = &self.bias {
                inputs.push(w.constant("bias", constant_of(&b.val())));
            }
            w.op(
                "Gemm",
                inputs,
                vec![
                    ("alpha", Attr::Float(1.0)),
                    ("beta", Attr::Float(1.0)),
                    ("transB", Attr::Int(1)),
                ],
            );
        } else {
            let wv = w.constant("weight", ConstTensor::f32(vec![in_f, out_f], weight));
            let x = w.input(0);
            let y = w.op("MatMul", vec![x, wv], vec![]);
            w.name_last_op();
            if let Some(b) = &self.bias {
                let bv = w.constant("bias", constant_of(&b.val()));
                w.op("Add", vec![y, bv], vec![]);
            }
        }
        Ok(())
    }
}

/// The linear layer as a linear map for relevance propagation.
struct LinearMapOf<'a>(&'a Linear);

impl LinearMap for LinearMapOf<'_> {
    fn has_weight(&self) -> bool {
        true
    }

    fn has_bias(&self) -> bool {
        self.0.bias.is_some()
    }

    fn modify(&self, weight: &ParamMod, bias: &ParamMod) -> Modified {
        Modified {
            weight: Some(ParamTensor::R2(weight.apply(self.0.weight.val()))),
            bias: match (&self.0.bias, bias.is_zero()) {
                (Some(b), false) => Some(ParamTensor::R1(bias.apply(b.val()))),
                _ => None,
            },
        }
    }

    fn forward(&self, x: &Activation, _at: &Activation, p: &Modified) -> Activation {
        let w = p
            .weight
            .as_ref()
            .and_then(|w| w.r2().cloned())
            .unwrap_or_else(|| self.0.weight.val());
        let b = p.bias.as_ref().and_then(|b| b.r1().cloned());
        map_activation!(x.clone(), t => apply(t, w.clone(), b.clone()))
    }

    fn bias(&self, p: &Modified, at: &Activation) -> Option<Activation> {
        let b = p.bias.as_ref()?.r1()?.clone();
        let [o] = b.dims();
        Some(match at {
            Activation::Flat(_) => Activation::Flat(b.reshape([1, o])),
            Activation::Tokens(_) => Activation::Tokens(b.reshape([1, 1, o])),
            Activation::Spatial(_) | Activation::SpatialLast(_) => {
                Activation::SpatialLast(b.reshape([1, 1, 1, o]))
            }
        })
    }

    fn transpose(&self, s: Activation, _at: &Activation, p: &Modified) -> Activation {
        let w = p
            .weight
            .as_ref()
            .and_then(|w| w.r2().cloned())
            .unwrap_or_else(|| self.0.weight.val());
        let wt = w.transpose();
        map_activation!(s, t => t.matmul(wt.clone().unsqueeze()))
    }
}
