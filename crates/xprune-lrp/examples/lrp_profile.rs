//! Where LRP time goes: per layer kind, the propagation time of one attribution over a
//! reference model (batch norms folded), next to the time of the plain convolution and of its
//! transpose at the same shapes, and the recorded forward pass.
//!
//! `cargo run -p xprune-lrp --profile dev --example lrp_profile -- [vgg11|resnet18]
//!  [composite] [batch] [width] [flex|wgpu]`
//!
//! Each node is timed alone on random relevance of its output's shape (3 runs after one
//! warm-up, device synchronised), so the per-kind sums are close to, not equal to, the
//! propagation time of a whole attribution.

use burn::tensor::module::{conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Distribution, Tensor};
use std::collections::BTreeMap;
use std::time::Instant;
use xprune_graph::{Activation, FeatureShape, Layer, LrpView};
use xprune_lrp::{Attributor, Composite, Hints, Target, modified_params, propagate, sum_relevance};
use xprune_models::{ResNetStem, VggDepth, resnet18, vgg};

fn sync(d: &Device) {
    d.sync().expect("sync");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = args.first().map_or("resnet18", |s| s.as_str());
    let composite = args.get(1).map_or("epsilon-plus-flat", |s| s.as_str());
    let batch: usize = args.get(2).map_or(32, |s| s.parse().expect("batch"));
    let width: f32 = args.get(3).map_or(1.0, |s| s.parse().expect("width"));
    let device = match args.get(4).map_or("flex", |s| s.as_str()) {
        "wgpu" => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        _ => Device::flex(),
    };
    let shape = FeatureShape::spatial(3, 32, 32);
    let graph = match model {
        "vgg11" => vgg(VggDepth::Vgg11, true, shape, 10, width, &device, 1),
        _ => resnet18(ResNetStem::Cifar, shape, 10, width, &device, 1),
    }
    .expect("model");
    let comp = Composite::named(composite).expect("composite");
    let att = Attributor::new(&graph, &comp)
        .expect("attributor")
        .keep_nodes(false);
    let g = att.graph();
    let x = Tensor::<4>::random([batch, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let labels =
        xprune_graph::tensor_util::int_tensor((0..batch as i64).map(|i| i % 10).collect(), &device);
    let reps = 3;
    let mut t_fwd = 0.0;
    let mut t_att = 0.0;
    for _ in 0..reps + 1 {
        sync(&device);
        let t = Instant::now();
        let rec = g.forward_recorded(x.clone()).expect("forward");
        sync(&device);
        t_fwd += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let a = att
            .attribute_recorded(&rec, Target::Labels(labels.clone()))
            .expect("attr");
        let _: f32 = a.input.flatten().sum().into_scalar();
        t_att += t.elapsed().as_secs_f64();
    }
    println!(
        "{model} {composite} batch {batch} width {width}: forward_recorded {:.1} ms, propagation {:.1} ms (means incl. a warm-up)",
        t_fwd * 1e3 / (reps + 1) as f64,
        t_att * 1e3 / (reps + 1) as f64
    );

    // Per node: propagate with the node's rule on random relevance of the output's shape.
    let rec = g.forward_recorded(x.clone()).expect("forward");
    let mut nonneg = vec![false; g.len()];
    let mut by_kind: BTreeMap<String, [f64; 4]> = BTreeMap::new();
    for (id, node) in g.nodes().iter().enumerate() {
        let inputs: Vec<bool> = node.inputs.iter().map(|&i| nonneg[i]).collect();
        nonneg[id] = g.layers()[id].nonnegative(&inputs);
        let rule = att.rules()[id].clone();
        let time = |f: &mut dyn FnMut()| {
            f();
            sync(&device);
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            sync(&device);
            t.elapsed().as_secs_f64() * 1e3 / reps as f64
        };
        match g.layer(id).expect("layer") {
            Layer::Conv2d(conv) => {
                let xin = rec
                    .get(node.inputs[0])
                    .unwrap()
                    .as_spatial()
                    .unwrap()
                    .clone();
                let out = rec.get(id).unwrap().as_spatial().unwrap().clone();
                let r = out.random_like(Distribution::Normal(0.0, 1.0));
                let hint_nonneg = nonneg[node.inputs[0]];
                let rule = rule.expect("rule");
                let layer = g.layer(id).expect("layer");
                let LrpView::Linear { map, .. } = layer.lrp() else {
                    panic!("a convolution is a linear map");
                };
                let params = modified_params(&*map, &*rule);
                let (xa, oa) = (
                    Activation::Spatial(xin.clone()),
                    Activation::Spatial(out.clone()),
                );
                let ra = Activation::Spatial(r.clone());
                let t_lrp = time(&mut || {
                    let h = Hints {
                        output: Some(oa.clone()),
                        nonnegative_input: hint_nonneg,
                        name: None,
                        params: Some(&params),
                    };
                    let _ = propagate(&*map, &xa, ra.clone(), &*rule, h).unwrap();
                });
                let [_, _, hh, ww] = xin.dims();
                let p = xprune_graph::resolve_padding(
                    &conv.padding,
                    [hh, ww],
                    conv.kernel_size,
                    conv.stride,
                );
                let opts = ConvOptions::new_with_padding(
                    conv.stride,
                    [(p[0], p[2]), (p[1], p[3])],
                    conv.dilation,
                    conv.groups,
                );
                let t_conv = time(&mut || {
                    let _ = conv2d(xin.clone(), conv.weight.val(), None, opts.clone());
                });
                let [_, _, oh, _] = out.dims();
                let [_, _, kh, _] = conv.weight.dims();
                let rest = hh + 2 * p[0] - ((oh - 1) * conv.stride[0] + kh);
                let topts = ConvTransposeOptions::new(
                    conv.stride,
                    [p[0], p[1]],
                    [rest, rest],
                    conv.dilation,
                    conv.groups,
                );
                let t_tr = time(&mut || {
                    let _ = conv_transpose2d(r.clone(), conv.weight.val(), None, topts.clone());
                });
                let e = by_kind.entry(format!("conv {}", rule.name())).or_default();
                e[0] += t_lrp;
                e[1] += t_conv;
                e[2] += t_tr;
                e[3] += 1.0;
                println!(
                    "{:<28} {:?} -> {:?}: lrp {t_lrp:.1} ms, conv {t_conv:.1} ms, conv_transpose {t_tr:.1} ms",
                    node.name,
                    xin.dims(),
                    out.dims()
                );
            }
            Layer::Add(_) => {
                let xs: Vec<Tensor<4>> = node
                    .inputs
                    .iter()
                    .map(|&i| rec.get(i).unwrap().as_spatial().unwrap().clone())
                    .collect();
                let out = rec.get(id).unwrap().as_spatial().unwrap().clone();
                let r = out.random_like(Distribution::Normal(0.0, 1.0));
                let rule = rule.expect("rule");
                let t_lrp = time(&mut || {
                    let _ = sum_relevance(&xs, r.clone(), &*rule).unwrap();
                });
                let e = by_kind.entry("add".into()).or_default();
                e[0] += t_lrp;
                e[3] += 1.0;
            }
            other => {
                let e = by_kind.entry(other.kind_name().to_string()).or_default();
                e[3] += 1.0;
            }
        }
    }
    println!("\nkind: lrp ms | plain conv ms | conv_transpose ms | count");
    for (k, v) in by_kind {
        println!(
            "{k:<30} {:>8.1} {:>8.1} {:>8.1} {:>4}",
            v[0], v[1], v[2], v[3]
        );
    }
}
