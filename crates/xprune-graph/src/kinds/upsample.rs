//! `upsample`: nearest-neighbour upsampling of a channels-first map by integer factors
//! (`nn.Upsample(scale_factor=2)`, ONNX `Resize` in nearest mode). A parameter-free linear
//! map: its transpose sums each block of copies.

use crate::builder::GraphBuilder;
use crate::graph::NodeId;

use crate::activation::Activation;
use crate::init::Initializer;
use crate::kind::onnx::{ImportError, unsupported};
use crate::kind::param::unknown_role;
use crate::kind::{
    Arity, Attr, ChannelCut, ChannelFlow, ConstTensor, Counts, Fusion, Imported, Kind, KindSpec,
    LinearMap, LrpView, Modified, OpImport, OpWriter, ParamInfo, ParamMod, RuleClass,
};
use crate::kinds::util::{all, into_spatial, one, pass_slice, spatial_in};
use crate::registry::Layer;
use crate::shape::FeatureShape;
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Nearest-neighbour upsampling by `[height, width]` factors.
#[derive(Module, Debug)]
pub struct Upsample {
    /// Factors `[height, width]`.
    #[module(skip)]
    pub scale: [usize; 2],
}

/// Hyper-parameters of an upsampling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpsampleOp {
    /// Factors `[height, width]`.
    pub scale: [usize; 2],
}

impl KindSpec for UpsampleOp {
    type Layer = Upsample;
    const NAME: &'static str = "upsample";
    const ONNX_OPS: &'static [&'static str] = &["Resize"];
    const FUSIONS: &'static [Fusion] = &[];

    fn arity(&self) -> Arity {
        (1, 1)
    }

    fn infer(&self, inputs: &[FeatureShape]) -> Result<FeatureShape, String> {
        let [c, h, w] = spatial_in(inputs[0], "upsample")?;
        let [sh, sw] = self.scale;
        if sh == 0 || sw == 0 || sh > 64 || sw > 64 {
            return Err(format!(
                "upsample factors {:?} must be in 1..=64",
                self.scale
            ));
        }
        Ok(FeatureShape::spatial(c, h * sh, w * sw))
    }

    fn counts(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> Counts {
        Counts::ZERO
    }

    fn flow(&self, _inputs: &[FeatureShape], _output: FeatureShape) -> ChannelFlow {
        ChannelFlow::Elementwise { unit: 1 }
    }

    fn init(&self, _init: &mut Initializer, _device: &Device) -> Upsample {
        Upsample { scale: self.scale }
    }

    fn import(node: &OpImport<'_>) -> Option<Result<Imported, ImportError>> {
        Some((|| -> Result<Imported, ImportError> {
            node.check_attrs(&[
                "mode",
                "coordinate_transformation_mode",
                "nearest_mode",
                "cubic_coeff_a",
                "exclude_outside",
                "extrapolation_value",
                "antialias",
                "keep_aspect_ratio_policy",
                "axes",
            ])?;
            let (x, shape) = node.act(0, "X")?;
            let [c, h, w] = spatial_in(shape, "Resize").map_err(ImportError::from)?;
            let mode = node
                .attrs
                .string("mode")?
                .unwrap_or_else(|| "nearest".into());
            if mode != "nearest" {
                return Err(unsupported("mode", mode, "only nearest"));
            }
            let ctm = node
                .attrs
                .string("coordinate_transformation_mode")?
                .unwrap_or_else(|| "half_pixel".into());
            let nm = node
                .attrs
                .string("nearest_mode")?
                .unwrap_or_else(|| "round_prefer_floor".into());
            // With integer factors these choices all repeat each value factor times.
            let exact = match ctm.as_str() {
                "asymmetric" => nm == "floor",
                "half_pixel" | "pytorch_half_pixel" => nm.starts_with("round"),
                _ => false,
            };
            if !exact {
                return Err(unsupported(
                    "coordinate_transformation_mode",
                    format!("{ctm} with nearest_mode {nm}"),
                    "asymmetric with floor, or half_pixel with rounding (integer factors)",
                ));
            }
            // `axes` (opset 18) reorders or restricts the factors: only all axes in order.
            if let Some(axes) = node.attrs.ints("axes")?
                && axes != [0, 1, 2, 3]
                && axes != [-4, -3, -2, -1]
            {
                return Err(unsupported("axes", format!("{axes:?}"), "all four axes in order"));
            }
            let scales = node.optional_constant(2, "scales")?.filter(|s| !s.is_empty());
            let sizes = node.optional_constant(3, "sizes")?;
            // With sizes, a policy other than `stretch` changes the factors.
            let policy = node.attrs.string("keep_aspect_ratio_policy")?;
            if scales.is_none()
                && sizes.is_some()
                && policy.as_deref().is_some_and(|p| p != "stretch")
            {
                return Err(unsupported(
                    "keep_aspect_ratio_policy",
                    policy.unwrap_or_default(),
                    "stretch (the default) with sizes",
                ));
            }
            let factors: Vec<f32> = match (scales, sizes) {
                (Some(s), _) if s.len() == 4 => s.to_f32(),
                (Some(s), _) => {
                    return Err(format!(
                        "Resize needs 4 scales (one per axis of [N, C, H, W]), found {}",
                        s.len()
                    )
                    .into());
                }
                (_, Some(z)) if z.len() == 4 => {
                    let z = z.to_f32();
                    vec![1.0, z[1] / c as f32, z[2] / h as f32, z[3] / w as f32]
                }
                _ => return Err("Resize needs constant scales or sizes".into()),
            };
            let integer = |v: f32| (v.fract() == 0.0 && v >= 1.0).then_some(v as usize);
            let (Some(1), Some(1), Some(sh), Some(sw)) = (
                factors.first().copied().and_then(integer),
                factors.get(1).copied().and_then(integer),
                factors.get(2).copied().and_then(integer),
                factors.get(3).copied().and_then(integer),
            ) else {
                return Err(unsupported(
                    "scales",
                    format!("{factors:?}"),
                    "integer factors of height and width only",
                ));
            };
            Ok(Imported::Node {
                layer: Layer::Upsample(Upsample { scale: [sh, sw] }),
                inputs: vec![x],
            })
        })())
    }
}

fn up(x: Tensor<4>, [sh, sw]: [usize; 2]) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let t: Tensor<6> = x.reshape([b, c, h, 1, w, 1]);
    t.expand([b, c, h, sh, w, sw])
        .reshape([b, c, h * sh, w * sw])
}

impl Kind for Upsample {
    type Spec = UpsampleOp;

    fn spec(&self) -> UpsampleOp {
        UpsampleOp { scale: self.scale }
    }

    fn normalize(&mut self, _inputs: &[FeatureShape]) {}

    fn forward(&self, inputs: Vec<Activation>, _training: bool) -> Result<Activation, String> {
        let x = into_spatial(one(inputs, "upsample")?, "upsample")?;
        Ok(Activation::Spatial(up(x, self.scale)))
    }

    fn params(&self) -> Vec<ParamInfo> {
        Vec::new()
    }

    fn set_param(&mut self, role: &str, _data: TensorData, _device: &Device) -> Result<(), String> {
        Err(unknown_role("upsample", role))
    }

    fn slice(&self, cut: &ChannelCut<'_>) -> Result<Layer, String> {
        pass_slice(Upsample { scale: self.scale }, cut)
    }

    fn lrp(&self) -> LrpView<'_> {
        LrpView::Linear {
            map: Box::new(UpMap(self.scale)),
            class: RuleClass::Pool,
        }
    }

    fn nonnegative(&self, inputs: &[bool]) -> bool {
        all(inputs)
    }

    fn export(&self, w: &mut dyn OpWriter) -> Result<(), String> {
        let [sh, sw] = self.scale;
        let scales = w.constant(
            "scales",
            ConstTensor::f32(vec![4], vec![1.0, 1.0, sh as f32, sw as f32]),
        );
        let x = w.input(0);
        w.op(
            "Resize",
            vec![x, String::new(), scales],
            vec![
                ("mode", Attr::Str("nearest".into())),
                (
                    "coordinate_transformation_mode",
                    Attr::Str("asymmetric".into()),
                ),
                ("nearest_mode", Attr::Str("floor".into())),
            ],
        );
        Ok(())
    }
}

struct UpMap([usize; 2]);

impl LinearMap for UpMap {
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
        Activation::Spatial(up(x.as_spatial().cloned().expect("a map"), self.0))
    }

    fn bias(&self, _p: &Modified, _at: &Activation) -> Option<Activation> {
        None
    }

    fn transpose(&self, s: Activation, _at: &Activation, _p: &Modified) -> Activation {
        let s = s.into_spatial().expect("a map");
        let [b, c, oh, ow] = s.dims();
        let [sh, sw] = self.0;
        let t: Tensor<6> = s.reshape([b, c, oh / sh, sh, ow / sw, sw]);
        let t = t.sum_dim(5).sum_dim(3);
        Activation::Spatial(t.reshape([b, c, oh / sh, ow / sw]))
    }
}

impl GraphBuilder {
    /// Adds a nearest-neighbour upsampling by `[height, width]` factors.
    pub fn upsample(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        scale: [usize; 2],
    ) -> crate::Result<NodeId> {
        self.add_op(name, UpsampleOp { scale }, &[input])
    }
}
