//! `adaptive_avg_pool2d`: Burn's adaptive average pooling
//! (`burn::nn::pool::AdaptiveAvgPool2d`) to a fixed output size (`[1, 1]` is global average
//! pooling): a parameter-free linear map.

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, ints, unsupported};
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, ChannelCut, ChannelFlow, Counts, Fusion, Imported, Kind, KindSpec, LinearMap, LrpView,
    Modified, OpImport, OpWriter, ParamInfo, ParamMod, RuleClass,
};
use crate::kinds::util::{all, into_spatial, one, pass_slice, spatial_in};
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::nn::pool::AdaptiveAvgPool2d;
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of an adaptive average pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveAvgPool2dOp {
    /// Output `[height, width]`.
    pub output: [usize; 2],
}

impl KindSpec for AdaptiveAvgPool2dOp {
    type Layer = AdaptiveAvgPool2d;
    const NAME: &'static str = "adaptive_avg_pool2d";
    const ONNX_OPS: &'static [&'static str] = &["GlobalAveragePool", "ReduceMean"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        let [c, _, _] = spatial_in(inputs[0], "adaptive_avg_pool2d")?;
        if self.output[0] == 0 || self.output[1] == 0 {
            return Err(format!(
                "adaptive_avg_pool2d output {:?} must be positive",
                self.output
            ));
        }
        Ok(FeatureShape::Spatial([c, self.output[0], self.output[1]]))
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise { unit: 1 }
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> AdaptiveAvgPool2d {
        AdaptiveAvgPool2d {
            output_size: self.output,
        }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        match node.op {
            "GlobalAveragePool" => Some(import_global(node)),
            _ => import_reduce_mean(node),
        }
    }
}

fn global(x: usize) -> Imported {
    Imported::Node {
        layer: Layer::AdaptiveAvgPool2d(AdaptiveAvgPool2d {
            output_size: [1, 1],
        }),
        inputs: vec![x],
    }
}

fn import_global(node: &OpImport<'_>) -> Result<Imported, ImportError> {
    node.check_attrs(&[])?;
    let (x, shape) = node.act(0, "X")?;
    spatial_in(shape, "GlobalAveragePool").map_err(ImportError::from)?;
    Ok(global(x))
}

/// Whether a `ReduceMean` averages over all positions of a map (axes `[2, 3]` of a
/// channels-first map, `[1, 2]` of a channels-last one; the attribute before opset 18, the
/// input from 18), and if so its `keepdims` and its input's shape. `None` for any other
/// reduction (no kind imports those).
pub(crate) fn reduce_mean_positions(
    node: &OpImport<'_>,
) -> Option<Result<(bool, FeatureShape), ImportError>> {
    let shape = match node.inputs.first() {
        Some(crate::kind::OpValue::Act { shape, .. }) => *shape,
        _ => return None,
    };
    let positions: &[i64] = match shape {
        FeatureShape::Spatial(_) => &[2, 3],
        FeatureShape::SpatialLast(_) => &[1, 2],
        FeatureShape::Tokens(_) => &[1],
        FeatureShape::Flat(_) => return None,
    };
    let axes: Vec<i64> = if node.opset >= 18 {
        match node.optional_constant(1, "axes") {
            Ok(Some(t)) => t.as_i64()?.to_vec(),
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        }
    } else {
        match node.attrs.ints("axes") {
            Ok(Some(a)) => a,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        }
    };
    let rank = shape.layout().rank() as i64;
    let mut norm: Vec<i64> = axes
        .iter()
        .map(|&a| if a < 0 { a + rank } else { a })
        .collect();
    norm.sort_unstable();
    if norm != positions {
        return None;
    }
    Some(node.attrs.int("keepdims", 1).map(|k| (k != 0, shape)))
}

fn import_reduce_mean(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
    let (keep, shape) = match reduce_mean_positions(node)? {
        Ok(k) => k,
        Err(e) => return Some(Err(e)),
    };
    if !keep || !matches!(shape, FeatureShape::Spatial(_)) {
        // `mean` over positions to vectors is another kind (and kept dimensions of other
        // layouts are not a pooling this kind holds).
        return None;
    }
    Some((|| -> Result<Imported, ImportError> {
        node.check_attrs(&["axes", "keepdims", "noop_with_empty_axes"])?;
        if node.attrs.int("noop_with_empty_axes", 0)? != 0 {
            return Err(unsupported("noop_with_empty_axes", 1, "0"));
        }
        let (x, _) = node.act(0, "data")?;
        Ok(global(x))
    })())
}

impl Kind for AdaptiveAvgPool2d {
    type Spec = AdaptiveAvgPool2dOp;

    fn spec(&self) -> AdaptiveAvgPool2dOp {
        AdaptiveAvgPool2dOp {
            output: self.output_size,
        }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = into_spatial(one(inputs, "adaptive_avg_pool2d")?, "adaptive_avg_pool2d")?;
        Ok(Activation::Spatial(self.forward(x)))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("adaptive_avg_pool2d", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        pass_slice(self.clone(), cut)
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Linear {
            map: Box::new(AdaptiveMap(self)),
            class: RuleClass::Pool,
        }
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        all(inputs)
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let x = w.input(0);
        let [_, h, wd] = match w.input_shape(0) {
            FeatureShape::Spatial(s) => s,
            other => return Err(format!("adaptive average pool of a [{other}] input")),
        };
        let output = self.output_size;
        if output == [1, 1] {
            w.op("GlobalAveragePool", vec![x], vec![]);
        } else if h % output[0] == 0 && wd % output[1] == 0 {
            let kernel = [h / output[0], wd / output[1]];
            w.op(
                "AveragePool",
                vec![x],
                vec![("kernel_shape", ints(kernel)), ("strides", ints(kernel))],
            );
        } else {
            return Err(format!(
                "adaptive average pool from {h}x{wd} to {}x{} has windows of different sizes, \
                 which ONNX cannot express",
                output[0], output[1]
            ));
        }
        Ok(())
    }
}

/// The averaging matrix `[out, size]` of adaptive pooling along one dimension (PyTorch's
/// windows: `floor(i * size / out) .. ceil((i + 1) * size / out)`).
pub fn adaptive_matrix(size: usize, out: usize) -> Vec<f32> {
    let mut m = vec![0.0f32; out * size];
    for i in 0..out {
        let start = i * size / out;
        let end = ((i + 1) * size).div_ceil(out);
        let len = (end - start) as f32;
        for j in start..end {
            m[i * size + j] = 1.0 / len;
        }
    }
    m
}

/// The adaptive average pool as a parameter-free linear map.
struct AdaptiveMap<'a>(&'a AdaptiveAvgPool2d);

fn spatial(a: &Activation) -> Tensor<4> {
    a.as_spatial().cloned().unwrap_or_else(|| {
        let d = a.dims();
        a.clone()
            .flatten()
            .reshape([d[0], 1, 1, d[1..].iter().product()])
    })
}

impl LinearMap for AdaptiveMap<'_> {
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
        Activation::Spatial(adaptive_avg_pool2d(spatial(x), self.0.output_size))
    }

    fn bias(&self, _p: &Modified, _at: &Activation) -> Option<Activation> {
        None
    }

    fn transpose(&self, s: Activation, at: &Activation, _p: &Modified) -> Activation {
        let s = spatial(&s);
        let [b, c, h, w] = spatial(at).dims();
        let [oh, ow] = self.0.output_size;
        if oh == 1 && ow == 1 {
            return Activation::Spatial(s.div_scalar((h * w) as f64).expand([b, c, h, w]));
        }
        let device = s.device();
        let ph = Tensor::<2>::from_data(TensorData::new(adaptive_matrix(h, oh), [oh, h]), &device);
        let pw = Tensor::<2>::from_data(TensorData::new(adaptive_matrix(w, ow), [ow, w]), &device);
        let bs = s.dims()[0];
        let t = s.reshape([bs * c * oh, ow]).matmul(pw); // [b*c*oh, w]
        let t = t
            .reshape([bs * c, oh, w])
            .swap_dims(1, 2)
            .reshape([bs * c * w, oh]);
        let t = t.matmul(ph); // [b*c*w, h]
        Activation::Spatial(t.reshape([bs, c, w, h]).swap_dims(2, 3))
    }
}
