//! `max_pool2d`: Burn's 2-D max pooling (`burn::nn::pool::MaxPool2d`) with any padding,
//! dilation and ceil mode. Relevance goes to the winner of each window.

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, ints, unsupported};
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, Counts, Fusion, Imported, Kind, KindSpec, LrpView,
    OpImport, OpWriter, ParamInfo, Redistribute,
};
use crate::kinds::util::{
    all, check_pool_padding, explicit, into_spatial, one, onnx_spatial_hw, onnx_window_padding,
    padding_of, pass_slice, resolve_padding, spatial_in,
};
use crate::registry::Layer;
use crate::shape::{FeatureShape, Padding2d, window_output_hw};
use burn::nn::pool::MaxPool2d;
use burn::tensor::module::{max_pool2d_with_indices, max_pool2d_with_indices_backward};
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, IndexingUpdateOp, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of a 2-D max pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaxPool2dOp {
    /// Window `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// Padding `[top, left, bottom, right]`.
    pub padding: Padding2d,
    /// Dilation `[height, width]`.
    pub dilation: [usize; 2],
    /// Keep the last partial window.
    pub ceil_mode: bool,
}

impl KindSpec for MaxPool2dOp {
    type Layer = MaxPool2d;
    const NAME: &'static str = "max_pool2d";
    const ONNX_OPS: &'static [&'static str] = &["MaxPool"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        let [c, h, w] = spatial_in(inputs[0], "max_pool2d")?;
        check_pool_padding(&self.kernel, &self.padding)?;
        match window_output_hw(
            [h, w],
            &self.padding,
            self.kernel,
            self.stride,
            self.dilation,
            self.ceil_mode,
        ) {
            Some([oh, ow]) => Ok(FeatureShape::Spatial([c, oh, ow])),
            None => Err(format!(
                "max_pool2d window {:?} (stride {:?}, padding {:?}) does not fit input [{}]",
                self.kernel, self.stride, self.padding, inputs[0]
            )),
        }
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise { unit: 1 }
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> MaxPool2d {
        MaxPool2d {
            stride: self.stride,
            kernel_size: self.kernel,
            padding: explicit(self.padding),
            dilation: self.dilation,
            ceil_mode: self.ceil_mode,
        }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some(import(node))
    }
}

fn import(node: &OpImport<'_>) -> Result<Imported, ImportError> {
    node.check_attrs(&[
        "auto_pad",
        "ceil_mode",
        "dilations",
        "kernel_shape",
        "pads",
        "storage_order",
        "strides",
    ])?;
    let a = node.attrs;
    let (x, shape) = node.act(0, "X")?;
    let hw = onnx_spatial_hw(shape)?;
    let kernel = a
        .positive_ints::<2>("kernel_shape")?
        .ok_or_else(|| ImportError::from("attribute `kernel_shape` is required"))?;
    let stride = a.positive_ints::<2>("strides")?.unwrap_or([1, 1]);
    let dilation = a.positive_ints::<2>("dilations")?.unwrap_or([1, 1]);
    let storage = a.int("storage_order", 0)?;
    if storage != 0 {
        return Err(unsupported(
            "storage_order",
            storage,
            "only storage_order = 0 (row major)",
        ));
    }
    let ceil_mode = a.flag("ceil_mode")?;
    let padding = onnx_window_padding(a, hw, kernel, stride, dilation)?;
    let op = MaxPool2dOp {
        kernel,
        stride,
        padding,
        dilation,
        ceil_mode,
    };
    Ok(Imported::Node {
        layer: Layer::MaxPool2d(op.init(&mut Initializer::new(0), node.device)),
        inputs: vec![x],
    })
}

impl Kind for MaxPool2d {
    type Spec = MaxPool2dOp;

    fn spec(&self) -> MaxPool2dOp {
        MaxPool2dOp {
            kernel: self.kernel_size,
            stride: self.stride,
            padding: padding_of(&self.padding),
            dilation: self.dilation,
            ceil_mode: self.ceil_mode,
        }
    }

    fn normalize(&mut self, inputs: &[FeatureShape]) {
        if let Some(hw) = inputs.first().and_then(|s| s.hw()) {
            self.padding = explicit(resolve_padding(
                &self.padding,
                hw,
                self.kernel_size,
                self.stride,
            ));
        }
    }

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = into_spatial(one(inputs, "max_pool2d")?, "max_pool2d")?;
        Ok(Activation::Spatial(self.forward(x)))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("max_pool2d", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        pass_slice(self.clone(), cut)
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Redistribute(self)
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        all(inputs)
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let s = self.spec();
        let x = w.input(0);
        w.op(
            "MaxPool",
            vec![x],
            vec![
                ("kernel_shape", ints(s.kernel)),
                ("strides", ints(s.stride)),
                ("pads", ints(s.padding)),
                ("dilations", ints(s.dilation)),
                ("ceil_mode", Attr::Int(s.ceil_mode as i64)),
            ],
        );
        Ok(())
    }
}

/// Relevance of a max pool's input: each output's relevance goes to the input position that
/// won its window (summed where windows overlap), as the gradient does.
pub fn max_pool_relevance(
    pool: &MaxPool2d,
    input: &Tensor<4>,
    relevance: Tensor<4>,
) -> Result<Tensor<4>, String> {
    let [b, c, h, w] = input.dims();
    let p = resolve_padding(&pool.padding, [h, w], pool.kernel_size, pool.stride);
    let options = MaxPoolOptions::new(pool.kernel_size)
        .with_stride(pool.stride)
        .with_padding_pairs([(p[0], p[2]), (p[1], p[3])])
        .with_dilation(pool.dilation)
        .with_ceil_mode(pool.ceil_mode);
    let (out, indices) = max_pool2d_with_indices(input.clone(), options);
    if out.dims() != relevance.dims() {
        return Err(format!(
            "relevance has shape {:?}, the max pool's output for input {:?} has {:?}",
            relevance.dims(),
            input.dims(),
            out.dims()
        ));
    }
    if p[0] == p[2] && p[1] == p[3] {
        return Ok(max_pool2d_with_indices_backward(
            input.clone(),
            pool.kernel_size,
            pool.stride,
            [p[0], p[1]],
            pool.dilation,
            pool.ceil_mode,
            relevance,
            indices,
        ));
    }
    // Asymmetric padding: the indices refer to the unpadded input; scatter by index.
    let [_, _, oh, ow] = relevance.dims();
    let target = Tensor::<3>::zeros([b, c, h * w], &input.device());
    Ok(target
        .scatter(
            2,
            indices.reshape([b, c, oh * ow]),
            relevance.reshape([b, c, oh * ow]),
            IndexingUpdateOp::Add,
        )
        .reshape([b, c, h, w]))
}

impl Redistribute for MaxPool2d {
    fn redistribute(
        &self,
        inputs: &[&Activation],
        _output: &Activation,
        relevance: Activation,
    ) -> Result<Vec<Option<Activation>>, String> {
        let x = inputs[0]
            .as_spatial()
            .ok_or("max_pool2d expects a channels-first map")?;
        let r = into_spatial(relevance, "max_pool2d")?;
        Ok(vec![Some(Activation::Spatial(max_pool_relevance(
            self, x, r,
        )?))])
    }
}
