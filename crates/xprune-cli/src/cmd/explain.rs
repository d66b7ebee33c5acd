//! `xprune explain`: LRP relevance of inputs.

use crate::args::{ExplainArgs, Global};
use crate::cmd::device;
use crate::error::{CliError, Result, io};
use crate::load;
use crate::progress::bar;
use xprune::burn::tensor::{Int, Tensor, TensorData};
use xprune::io::data::{Array, npy};
use xprune::lrp::{Attributor, Target};
use xprune::{Activation, FeatureShape};

pub fn run(g: &Global, a: &ExplainArgs) -> Result<()> {
    let dev = device(&g.backend)?;
    let graph = load::model(&a.model.model, &dev)?;
    let input = load::input_array(&a.input)?;
    let dims = input.shape().to_vec();
    let sample = graph.input_shape();
    let batch_dims = match (sample, dims.as_slice()) {
        (FeatureShape::Flat(f), [n, g]) if *g == f => vec![*n, f],
        (FeatureShape::Spatial([c, h, w]), [n, c2, h2, w2]) if (*c2, *h2, *w2) == (c, h, w) => {
            vec![*n, c, h, w]
        }
        (FeatureShape::Spatial([1, h, w]), [n, h2, w2]) if (*h2, *w2) == (h, w) => {
            vec![*n, 1, h, w]
        }
        _ => {
            return Err(CliError::Usage(format!(
                "{}: inputs of shape {dims:?} do not fit the model's input [batch, {sample}]",
                a.input.display()
            )));
        }
    };
    if a.heatmap.is_some() && !matches!(sample, FeatureShape::Spatial(_)) {
        return Err(CliError::Usage(format!(
            "--heatmap needs image inputs; the model's input is [{sample}]"
        )));
    }
    let n = batch_dims[0];
    let values = input.to_f32();
    let targets: Option<Vec<i64>> = match (&a.targets, a.target_class) {
        (Some(p), _) => {
            let t = npy::read(p)?;
            let t = t.to_i64().ok_or_else(|| {
                CliError::Usage(format!("{}: targets must be integers", p.display()))
            })?;
            if t.len() != n {
                return Err(CliError::Usage(format!(
                    "{}: {} targets for {n} inputs",
                    p.display(),
                    t.len()
                )));
            }
            Some(t)
        }
        (None, Some(k)) => Some(vec![k as i64; n]),
        (None, None) => None,
    };
    let outputs = graph.output_shape().numel();
    if let Some(bad) = targets
        .iter()
        .flatten()
        .find(|t| **t < 0 || **t as usize >= outputs)
    {
        return Err(CliError::Usage(format!(
            "target class {bad} is outside 0..{outputs}"
        )));
    }
    let bounds = load::BoxBounds {
        low: a.low.clone(),
        high: a.high.clone(),
    };
    let composite = load::composite(&a.composite, a.epsilon, a.gamma, &bounds, sample.channels())?;
    let attributor = Attributor::new(&graph, &composite)?.keep_nodes(false);
    let per = sample.numel();
    let mut relevance: Vec<f32> = Vec::with_capacity(values.len());
    let progress = bar(
        n as u64,
        format!("explaining ({})", composite.name()),
        g.quiet,
    );
    for start in (0..n).step_by(g.batch_size.max(1)) {
        let end = (start + g.batch_size.max(1)).min(n);
        let mut d = batch_dims.clone();
        d[0] = end - start;
        let x = Activation::from_vec(values[start * per..end * per].to_vec(), &d, &dev)
            .expect("sizes checked");
        let target = match &targets {
            Some(t) => Target::Labels(Tensor::<1, Int>::from_data(
                TensorData::new(t[start..end].to_vec(), [end - start]),
                &dev,
            )),
            None => Target::ArgMax,
        };
        let r = attributor.attribute(x, target)?;
        relevance.extend(r.input.to_vec());
        progress.inc((end - start) as u64);
    }
    progress.finish_and_clear();
    let out = Array::f32(dims.clone(), relevance.clone())?;
    npy::write(&a.output, &out)?;
    if let Some(dir) = &a.heatmap {
        let FeatureShape::Spatial([c, h, w]) = sample else {
            unreachable!("checked above")
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let t = Tensor::<4>::from_data(TensorData::new(relevance, [n, c, h, w]), &dev);
        for i in 0..n {
            let path = dir.join(format!("heatmap_{i:04}.png"));
            xprune::lrp::heatmap::save_png(&t, i, &path)?;
        }
        println!("wrote {n} heatmaps to {}", dir.display());
    }
    println!("wrote relevance {:?} to {}", dims, a.output.display());
    Ok(())
}
