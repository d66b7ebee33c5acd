//! `avg_pool2d`: Burn's 2-D average pooling (`burn::nn::pool::AvgPool2d`) with any padding,
//! `count_include_pad` and ceil mode: a parameter-free linear map, so every LRP rule applies
//! (Zennit's composites use the norm rule).

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, ints, unsupported};
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, Counts, Fusion, Imported, Kind, KindSpec, LinearMap,
    LrpView, Modified, OpImport, OpWriter, ParamInfo, ParamMod, RuleClass,
};
use crate::kinds::util::{
    all, check_pool_padding, explicit, into_spatial, one, onnx_spatial_hw, onnx_window_padding,
    padding_of, pass_slice, resolve_padding, spatial_in,
};
use crate::registry::Layer;
use crate::shape::{FeatureShape, Padding2d, window_output_hw, window_output_len};
use burn::nn::pool::AvgPool2d;
use burn::tensor::module::{avg_pool2d, avg_pool2d_backward};
use burn::tensor::ops::{AvgPoolOptions, PadMode};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of a 2-D average pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AvgPool2dOp {
    /// Window `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// Padding `[top, left, bottom, right]`.
    pub padding: Padding2d,
    /// Whether padded zeros count in the average.
    pub count_include_pad: bool,
    /// Keep the last partial window.
    pub ceil_mode: bool,
}

impl KindSpec for AvgPool2dOp {
    type Layer = AvgPool2d;
    const NAME: &'static str = "avg_pool2d";
    const ONNX_OPS: &'static [&'static str] = &["AveragePool"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        let [c, h, w] = spatial_in(inputs[0], "avg_pool2d")?;
        check_pool_padding(&self.kernel, &self.padding)?;
        match window_output_hw(
            [h, w],
            &self.padding,
            self.kernel,
            self.stride,
            [1, 1],
            self.ceil_mode,
        ) {
            Some([oh, ow]) => Ok(FeatureShape::Spatial([c, oh, ow])),
            None => Err(format!(
                "avg_pool2d window {:?} (stride {:?}, padding {:?}) does not fit input [{}]",
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

    fn init(&self, _init: &mut Initializer, _device: &Device) -> AvgPool2d {
        AvgPool2d {
            stride: self.stride,
            kernel_size: self.kernel,
            padding: explicit(self.padding),
            count_include_pad: self.count_include_pad,
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
        "count_include_pad",
        "dilations",
        "kernel_shape",
        "pads",
        "strides",
    ])?;
    let a = node.attrs;
    let (x, shape) = node.act(0, "X")?;
    let hw = onnx_spatial_hw(shape)?;
    let kernel = a
        .positive_ints::<2>("kernel_shape")?
        .ok_or_else(|| ImportError::from("attribute `kernel_shape` is required"))?;
    let stride = a.positive_ints::<2>("strides")?.unwrap_or([1, 1]);
    if let Some(d) = a.positive_ints::<2>("dilations")?
        && d != [1, 1]
    {
        return Err(unsupported(
            "dilations",
            format!("{d:?}"),
            "only dilations [1, 1]",
        ));
    }
    let ceil_mode = a.flag("ceil_mode")?;
    let count_include_pad = a.flag("count_include_pad")?;
    let padding = onnx_window_padding(a, hw, kernel, stride, [1, 1])?;
    let op = AvgPool2dOp {
        kernel,
        stride,
        padding,
        count_include_pad,
        ceil_mode,
    };
    Ok(Imported::Node {
        layer: Layer::AvgPool2d(op.init(&mut Initializer::new(0), node.device)),
        inputs: vec![x],
    })
}

impl Kind for AvgPool2d {
    type Spec = AvgPool2dOp;

    fn spec(&self) -> AvgPool2dOp {
        AvgPool2dOp {
            kernel: self.kernel_size,
            stride: self.stride,
            padding: padding_of(&self.padding),
            count_include_pad: self.count_include_pad,
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
        let x = into_spatial(one(inputs, "avg_pool2d")?, "avg_pool2d")?;
        Ok(Activation::Spatial(self.forward(x)))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("avg_pool2d", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        pass_slice(self.clone(), cut)
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Linear {
            map: Box::new(AvgMap(self)),
            class: RuleClass::Pool,
        }
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        all(inputs)
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let s = self.spec();
        let x = w.input(0);
        w.op(
            "AveragePool",
            vec![x],
            vec![
                ("kernel_shape", ints(s.kernel)),
                ("strides", ints(s.stride)),
                ("pads", ints(s.padding)),
                ("count_include_pad", Attr::Int(s.count_include_pad as i64)),
                ("ceil_mode", Attr::Int(s.ceil_mode as i64)),
            ],
        );
        Ok(())
    }
}

fn avg_options(pool: &AvgPool2d, p: Padding2d) -> AvgPoolOptions<2> {
    AvgPoolOptions::new(pool.kernel_size)
        .with_stride(pool.stride)
        .with_padding_pairs([(p[0], p[2]), (p[1], p[3])])
        .with_count_include_pad(pool.count_include_pad)
        .with_ceil_mode(pool.ceil_mode)
}

/// The average pool as a parameter-free linear map.
struct AvgMap<'a>(&'a AvgPool2d);

fn spatial(a: &Activation) -> Tensor<4> {
    a.as_spatial().cloned().unwrap_or_else(|| {
        let d = a.dims();
        a.clone()
            .flatten()
            .reshape([d[0], 1, 1, d[1..].iter().product()])
    })
}

impl LinearMap for AvgMap<'_> {
    fn has_weight(&self) -> bool {
        false
    }

    fn has_bias(&self) -> bool {
        false
    }

    fn modify(&self, _weight: &ParamMod, _bias: &ParamMod) -> Modified {
        Modified::default()
    }

    fn forward(&self, x: &Activation, _at: &Activation, _p: &Modified) -> Activation {
        let pool = self.0;
        Activation::Spatial(avg_pool2d(
            spatial(x),
            avg_options(pool, padding_of(&pool.padding)),
        ))
    }

    fn bias(&self, _p: &Modified, _at: &Activation) -> Option<Activation> {
        None
    }

    fn transpose(&self, s: Activation, at: &Activation, _p: &Modified) -> Activation {
        let pool = self.0;
        let s = spatial(&s);
        let [b, c, h, w] = spatial(at).dims();
        let p = padding_of(&pool.padding);
        let (k, stride, cip, ceil) = (
            pool.kernel_size,
            pool.stride,
            pool.count_include_pad,
            pool.ceil_mode,
        );
        let device = s.device();
        if p[0] == p[2] && p[1] == p[3] {
            let x = Tensor::<4>::empty([b, c, h, w], &device);
            return Activation::Spatial(avg_pool2d_backward(
                x,
                s,
                k,
                stride,
                [p[0], p[1]],
                cip,
                ceil,
            ));
        }
        // Asymmetric padding: Burn pads the input with zeros, pools without padding, divides
        // by the share of real values when padding does not count, and drops a last window
        // that starts in the end padding. The transpose undoes these steps in reverse order.
        let (hp, wp) = (h + p[0] + p[2], w + p[1] + p[3]);
        let bh = window_output_len(hp, (0, 0), k[0], stride[0], 1, ceil).unwrap_or(1);
        let bw = window_output_len(wp, (0, 0), k[1], stride[1], 1, ceil).unwrap_or(1);
        let [_, _, oh, ow] = s.dims();
        let mut s = s.pad([(0, bh - oh), (0, bw - ow)], PadMode::Constant(0.0));
        if !cip {
            let valid = Tensor::<4>::ones([1, 1, h, w], &device)
                .pad([(p[0], p[2]), (p[1], p[3])], PadMode::Constant(0.0));
            let options = AvgPoolOptions::new(k)
                .with_stride(stride)
                .with_count_include_pad(false)
                .with_ceil_mode(ceil);
            let valid = avg_pool2d(valid, options);
            let empty = valid.clone().equal_elem(0.0);
            s = s / valid.mask_fill(empty, 1.0);
        }
        let x = Tensor::<4>::empty([b, c, hp, wp], &device);
        Activation::Spatial(
            avg_pool2d_backward(x, s, k, stride, [0, 0], cip, ceil)
                .narrow(2, p[0], h)
                .narrow(3, p[1], w),
        )
    }
}
