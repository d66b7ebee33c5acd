//! `mul`: element-wise product of a feature map and a gate of the same channels that may
//! broadcast over positions (`[N, C, 1, 1]` squeeze-and-excitation gates, or a second map of
//! the same shape).
//!
//! The gate's channels are tied to the map's: they are one group (the gate's producer, the
//! excitation convolution, loses the same channels as the map's producers). Relevance goes to
//! the gated map; the gate is treated as a constant.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::ImportError;
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, ChannelCut, ChannelFlow, Counts, Fusion, Imported, Kind, KindSpec, LrpView, OpImport,
    OpValue, OpWriter, ParamInfo, Redistribute,
};
use crate::kinds::util::{all, pass_slice};
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::module::Module;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

/// The product of a map (input `1 - gate`) and a gate (input `gate`).
#[derive(Module, Debug)]
pub struct Mul {
    /// Which input (0 or 1) is the gate.
    #[module(skip)]
    pub gate: usize,
}

/// Hyper-parameters of a gating product.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MulOp {
    /// Which input (0 or 1) is the gate.
    pub gate: usize,
}

impl KindSpec for MulOp {
    type Layer = Mul;
    const NAME: &'static str = "mul";
    const ONNX_OPS: &'static [&'static str] = &["Mul"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (2, 2)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        if self.gate > 1 {
            return Err(format!("mul's gate is input 0 or 1, got {}", self.gate));
        }
        let (x, g) = (inputs[1 - self.gate], inputs[self.gate]);
        let fits = x.layout() == g.layout()
            && x.channels() == g.channels()
            && x.dims()
                .iter()
                .zip(g.dims())
                .all(|(&a, b)| b == a || b == 1);
        if !fits {
            return Err(format!(
                "mul needs a gate with the map's channels that broadcasts over its positions, got map [{x}] and gate [{g}]"
            ));
        }
        Ok(x)
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise { unit: 1 }
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> Mul {
        Mul { gate: self.gate }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        let acts: Vec<(usize, FeatureShape)> = node
            .inputs
            .iter()
            .filter_map(|v| match v {
                OpValue::Act { node, shape } => Some((*node, *shape)),
                _ => None,
            })
            .collect();
        if acts.len() != 2 || node.inputs.len() != 2 {
            return None;
        }
        Some((|| -> Result<Imported, ImportError> {
            node.check_attrs(&[])?;
            // The gate is the input with fewer values (the second when they are equal).
            let gate = usize::from(acts[1].1.numel() <= acts[0].1.numel());
            let op = MulOp { gate };
            op.infer(&[acts[0].1, acts[1].1])
                .map_err(ImportError::from)?;
            Ok(Imported::Node {
                layer: Layer::Mul(Mul { gate }),
                inputs: vec![acts[0].0, acts[1].0],
            })
        })())
    }
}

impl Kind for Mul {
    type Spec = MulOp;

    fn spec(&self) -> MulOp {
        MulOp { gate: self.gate }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let mut it = inputs.into_iter();
        let (a, b) = (
            it.next().ok_or("mul has no input")?,
            it.next().ok_or("mul has one input")?,
        );
        a.checked_mul(b)
            .ok_or_else(|| "mul inputs have different layouts".into())
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("mul", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        pass_slice(Mul { gate: self.gate }, cut)
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Redistribute(self)
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        all(inputs)
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let (a, b) = (w.input(0), w.input(1));
        w.op("Mul", vec![a, b], vec![]);
        Ok(())
    }
}

impl Redistribute for Mul {
    fn redistribute(
        &self,
        inputs: &[&Activation],
        _output: &Activation,
        relevance: Activation,
    ) -> Result<Vec<Option<Activation>>, String> {
        let map = 1 - self.gate;
        if relevance.dims() != inputs[map].dims() {
            return Err(format!(
                "relevance has shape {:?}, the gated map {:?}",
                relevance.dims(),
                inputs[map].dims()
            ));
        }
        let mut out = vec![None, None];
        out[map] = Some(relevance);
        Ok(out)
    }
}

impl GraphBuilder {
    /// Adds the product of a map and a gate of its channels (`[C, 1, 1]` gates of
    /// squeeze-and-excitation broadcast over positions).
    pub fn mul(
        &mut self,
        name: impl Into<String>,
        map: NodeId,
        gate: NodeId,
    ) -> crate::Result<NodeId> {
        self.add_op(name, MulOp { gate: 1 }, &[map, gate])
    }
}
