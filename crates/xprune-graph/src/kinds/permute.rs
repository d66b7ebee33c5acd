//! `permute`: a channels-first map as a channels-last one or back (`x.permute(0, 2, 3, 1)`
//! and `x.permute(0, 3, 1, 2)`, ONNX `Transpose`), as around ConvNeXt's blocks. The channels
//! stay; only the axis that holds them moves.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::ImportError;
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, Counts, Fusion, Imported, Kind, KindSpec, LrpView,
    OpImport, OpWriter, ParamInfo, Redistribute,
};
use crate::kinds::util::{all, one, pass_slice};
use crate::registry::Layer;
use crate::shape::{FeatureShape, Layout};
use burn::module::Module;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

/// Moves the channel axis of a map: to the end (`channels_last`) or to the front.
#[derive(Module, Debug)]
pub struct Permute {
    /// Whether the output is channels-last (else channels-first).
    #[module(skip)]
    pub channels_last: bool,
}

/// Hyper-parameters of a layout change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PermuteOp {
    /// Whether the output is channels-last (`[N, H, W, C]`); else channels-first.
    pub channels_last: bool,
}

fn target(channels_last: bool) -> Layout {
    if channels_last {
        Layout::SpatialLast
    } else {
        Layout::Spatial
    }
}

impl KindSpec for PermuteOp {
    type Layer = Permute;
    const NAME: &'static str = "permute";
    const ONNX_OPS: &'static [&'static str] = &["Transpose"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        match (inputs[0], self.channels_last) {
            (FeatureShape::Spatial([c, h, w]), true) => Ok(FeatureShape::SpatialLast([h, w, c])),
            (FeatureShape::SpatialLast([h, w, c]), false) => Ok(FeatureShape::Spatial([c, h, w])),
            (s, _) => Err(format!(
                "permute to {} expects a {} map, got [{s}]",
                target(self.channels_last).name(),
                target(!self.channels_last).name()
            )),
        }
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise { unit: 1 }
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> Permute {
        Permute {
            channels_last: self.channels_last,
        }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        if !node.is_act(0) {
            return None;
        }
        Some((|| -> Result<Imported, ImportError> {
            node.check_attrs(&["perm"])?;
            let (x, shape) = node.act(0, "data")?;
            let perm = node.attrs.ints("perm")?.unwrap_or_default();
            let channels_last = match (shape.layout(), perm.as_slice()) {
                (Layout::Spatial, [0, 2, 3, 1]) => true,
                (Layout::SpatialLast, [0, 3, 1, 2]) => false,
                (layout, _) => {
                    return Err(format!(
                        "a transpose by {perm:?} of a {} value is not supported (only moving the \
                         channel axis of a map: [0, 2, 3, 1] and back [0, 3, 1, 2])",
                        layout.name()
                    )
                    .into());
                }
            };
            Ok(Imported::Node {
                layer: Layer::Permute(Permute { channels_last }),
                inputs: vec![x],
            })
        })())
    }
}

impl Kind for Permute {
    type Spec = PermuteOp;

    fn spec(&self) -> PermuteOp {
        PermuteOp {
            channels_last: self.channels_last,
        }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        one(inputs, "permute")?
            .to_layout(target(self.channels_last))
            .ok_or_else(|| "permute of a value that is not a map".into())
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("permute", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        pass_slice(
            Permute {
                channels_last: self.channels_last,
            },
            cut,
        )
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Redistribute(self)
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        all(inputs)
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let perm = if self.channels_last {
            vec![0, 2, 3, 1]
        } else {
            vec![0, 3, 1, 2]
        };
        let x = w.input(0);
        w.op("Transpose", vec![x], vec![("perm", Attr::Ints(perm))]);
        Ok(())
    }
}

impl Redistribute for Permute {
    fn redistribute(
        &self,
        inputs: &[&Activation],
        _output: &Activation,
        relevance: Activation,
    ) -> Result<Vec<Option<Activation>>, String> {
        let r = relevance
            .to_layout(inputs[0].layout())
            .ok_or("relevance of a permute is not a map")?;
        Ok(vec![Some(r)])
    }
}

impl GraphBuilder {
    /// Adds a move of a map's channel axis: to the end (`channels_last`) or back to the front.
    pub fn permute(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        channels_last: bool,
    ) -> crate::Result<NodeId> {
        self.add_op(name, PermuteOp { channels_last }, &[input])
    }
}
