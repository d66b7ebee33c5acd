//! `global_max_pool`: the largest value of each channel of a map (`[C, H, W]` to
//! `[C, 1, 1]`, ONNX `GlobalMaxPool`). Relevance goes to each channel's winning position.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::ImportError;
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, ChannelCut, ChannelFlow, Counts, Fusion, Imported, Kind, KindSpec, LrpView, OpImport,
    OpWriter, ParamInfo, Redistribute,
};
use crate::kinds::max_pool2d::max_pool_relevance;
use crate::kinds::util::{all, explicit, into_spatial, one, pass_slice, spatial_in};
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::module::Module;
use burn::nn::pool::MaxPool2d;
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

/// Global max pooling.
#[derive(Module, Debug, Default)]
pub struct GlobalMaxPool;

/// Hyper-parameters of a global max pool (none).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GlobalMaxPoolOp {}

/// The max pool whose window is the whole `[h, w]` map.
fn window(h: usize, w: usize) -> MaxPool2d {
    MaxPool2d {
        stride: [h, w],
        kernel_size: [h, w],
        padding: explicit([0; 4]),
        dilation: [1, 1],
        ceil_mode: false,
    }
}

impl KindSpec for GlobalMaxPoolOp {
    type Layer = GlobalMaxPool;
    const NAME: &'static str = "global_max_pool";
    const ONNX_OPS: &'static [&'static str] = &["GlobalMaxPool"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        let [c, _, _] = spatial_in(inputs[0], "global_max_pool")?;
        Ok(FeatureShape::spatial(c, 1, 1))
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise { unit: 1 }
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> GlobalMaxPool {
        GlobalMaxPool
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some((|| -> Result<Imported, ImportError> {
            node.check_attrs(&[])?;
            let (x, shape) = node.act(0, "X")?;
            spatial_in(shape, "GlobalMaxPool").map_err(ImportError::from)?;
            Ok(Imported::Node {
                layer: Layer::GlobalMaxPool(GlobalMaxPool),
                inputs: vec![x],
            })
        })())
    }
}

impl Kind for GlobalMaxPool {
    type Spec = GlobalMaxPoolOp;

    fn spec(&self) -> GlobalMaxPoolOp {
        GlobalMaxPoolOp {}
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = into_spatial(one(inputs, "global_max_pool")?, "global_max_pool")?;
        let [b, c, h, w] = x.dims();
        Ok(Activation::Spatial(
            x.reshape([b, c, h * w]).max_dim(2).reshape([b, c, 1, 1]),
        ))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("global_max_pool", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        pass_slice(GlobalMaxPool, cut)
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Redistribute(self)
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        all(inputs)
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let x = w.input(0);
        w.op("GlobalMaxPool", vec![x], vec![]);
        Ok(())
    }
}

impl Redistribute for GlobalMaxPool {
    fn redistribute(
        &self,
        inputs: &[&Activation],
        _output: &Activation,
        relevance: Activation,
    ) -> Result<Vec<Option<Activation>>, String> {
        let x = inputs[0]
            .as_spatial()
            .ok_or("global_max_pool expects a channels-first map")?;
        let [_, _, h, w] = x.dims();
        let r = into_spatial(relevance, "global_max_pool")?;
        Ok(vec![Some(Activation::Spatial(max_pool_relevance(
            &window(h, w),
            x,
            r,
        )?))])
    }
}

impl GraphBuilder {
    /// Adds a global max pool.
    pub fn global_max_pool(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
    ) -> crate::Result<NodeId> {
        self.add_op(name, GlobalMaxPoolOp {}, &[input])
    }
}
