//! Loading models and data, and building criteria and composites from their names.

use crate::args::{CriterionArgs, NormalizeArg, ScopeArg, SelectArgs};
use crate::error::{CliError, Result};
use std::path::Path;
use xprune::burn::tensor::Device;
use xprune::criteria::{
    Aggregation, Criterion, FeatureRelevance, Gradient, LrpCriterion, RandomCriterion, Shapley,
    Taylor, WeightNorm, names,
};
use xprune::io::data::{self, Array};
use xprune::isp::Phase as IspPhase;
use xprune::lrp::{Bound, Composite, Epsilon, Gamma, ZBox};
use xprune::{Dataset, Graph, Isp, IspConfig, Normalization, PruneTarget, Scope, Selection};

/// The lower-cased extension of a path.
fn ext(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Loads a model from `.onnx` or an xprune `.safetensors` file onto `device`.
pub fn model(path: &Path, device: &Device) -> Result<Graph> {
    match ext(path).as_str() {
        "onnx" => Ok(xprune::io::onnx::import_onnx(path, device)?),
        "safetensors" => Ok(Graph::load(path, device)?),
        other => Err(CliError::Usage(format!(
            "{}: unknown model format `.{other}` (use .onnx or .safetensors)",
            path.display()
        ))),
    }
}

/// Checks that a model output path has a known extension (before any slow work).
pub fn check_model_output(path: &Path) -> Result<()> {
    match ext(path).as_str() {
        "onnx" | "safetensors" => Ok(()),
        other => Err(CliError::Usage(format!(
            "{}: unknown model format `.{other}` (use .onnx or .safetensors)",
            path.display()
        ))),
    }
}

/// Saves a model as `.onnx` or `.safetensors`, by extension.
pub fn save_model(graph: &Graph, path: &Path) -> Result<()> {
    check_model_output(path)?;
    match ext(path).as_str() {
        "onnx" => Ok(xprune::io::onnx::export_onnx(graph, path)?),
        _ => Ok(graph.save(path)?),
    }
}

/// Loads a labelled data set (`.npz` with `x` and `y`, CIFAR-10 `.bin`, MNIST IDX).
pub fn dataset(path: &Path) -> Result<Dataset> {
    Ok(data::load_dataset(path)?)
}

/// Loads an input array: `.npy`, or `.npz` with key `x`.
pub fn input_array(path: &Path) -> Result<Array> {
    match ext(path).as_str() {
        "npy" => Ok(data::npy::read(path)?),
        "npz" => {
            let mut arrays = data::npz::read(path)?;
            arrays.remove("x").ok_or_else(|| {
                CliError::Usage(format!("{}: no array `x` in the archive", path.display()))
            })
        }
        other => Err(CliError::Usage(format!(
            "{}: unknown input format `.{other}` (use .npy or .npz)",
            path.display()
        ))),
    }
}

/// Checks a data set against a model's input and output.
pub fn check_fit(graph: &Graph, data: &Dataset, path: &Path) -> Result<()> {
    if data.sample_shape() != graph.input_shape() {
        return Err(CliError::Usage(format!(
            "{}: samples have shape [{}], the model expects [{}]",
            path.display(),
            data.sample_shape(),
            graph.input_shape()
        )));
    }
    let outputs = graph.output_shape().numel();
    if data.num_classes() > outputs {
        return Err(CliError::Usage(format!(
            "{}: {} classes, the model outputs {outputs} values",
            path.display(),
            data.num_classes()
        )));
    }
    Ok(())
}

/// The z-box bounds of `epsilon-gamma-box`: `low` and `high` as given on the command line
/// (one value: a scalar; several: one per input channel), 0 and 1 when not given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BoxBounds {
    /// The lowest input values.
    pub low: Option<Vec<f32>>,
    /// The highest input values.
    pub high: Option<Vec<f32>>,
}

impl BoxBounds {
    /// One bound from its command-line values (`default` when none were given), checked
    /// against the model's `channels` input channels.
    fn bound(
        values: &Option<Vec<f32>>,
        default: f32,
        option: &str,
        channels: usize,
    ) -> Result<Bound> {
        match values.as_deref() {
            None => Ok(Bound::Scalar(default)),
            Some([]) => Err(CliError::Usage(format!(
                "{option} needs at least one value"
            ))),
            Some([v]) => Ok(Bound::Scalar(*v)),
            Some(vs) if vs.len() == channels => Ok(Bound::PerChannel(vs.to_vec())),
            Some(vs) => Err(CliError::Usage(format!(
                "{option} has {} values; give one, or one per input channel ({channels})",
                vs.len()
            ))),
        }
    }

    /// The z-box rule for a model with `channels` input channels.
    pub fn zbox(&self, channels: usize) -> Result<ZBox> {
        let low = Self::bound(&self.low, 0.0, "--low", channels)?;
        let high = Self::bound(&self.high, 1.0, "--high", channels)?;
        Ok(ZBox::new(low, high)?)
    }

    /// Whether bounds were given.
    pub fn given(&self) -> bool {
        self.low.is_some() || self.high.is_some()
    }
}

/// A composite by name (case-insensitive, `_` or `-`) with the given epsilon and gamma, and
/// for `epsilon-gamma-box` the z-box bounds for a model with `channels` input channels
/// (bounds given for another composite are an error).
pub fn composite(
    name: &str,
    epsilon: f64,
    gamma: f64,
    bounds: &BoxBounds,
    channels: usize,
) -> Result<Composite> {
    let eps = Epsilon::new(epsilon)?;
    let key = name.trim().to_ascii_lowercase().replace('_', "-");
    if bounds.given() && key != "epsilon-gamma-box" {
        return Err(CliError::Usage(format!(
            "--low and --high are the z-box bounds of epsilon-gamma-box, not of `{}`",
            name.trim()
        )));
    }
    Ok(match key.as_str() {
        "epsilon" => Composite::epsilon(eps),
        "epsilon-plus" => Composite::epsilon_plus(eps),
        "epsilon-plus-flat" => Composite::epsilon_plus_flat(eps),
        "epsilon-gamma-box" => {
            Composite::epsilon_gamma_box(eps, Gamma::new(gamma)?, bounds.zbox(channels)?)
        }
        "epsilon-alpha2-beta1" => Composite::epsilon_alpha2_beta1(eps),
        "epsilon-alpha2-beta1-flat" => Composite::epsilon_alpha2_beta1_flat(eps),
        "attnlrp" => Composite::attnlrp(eps),
        "cp-lrp" => Composite::cp_lrp(eps),
        "yeom" => xprune::criteria::yeom_composite(),
        _ => {
            return Err(CliError::Usage(format!(
                "unknown composite `{}` (known: {}, yeom)",
                name.trim(),
                xprune::lrp::COMPOSITE_NAMES.join(", ")
            )));
        }
    })
}

/// The help of the criterion argument: every known name.
pub fn criterion_help() -> String {
    format!("Criterion: {}", names::ALL.join(", "))
}

/// A criterion by name; `quiet` hides the progress bars of criteria that train (ISP).
pub fn criterion(name: &str, args: &CriterionArgs, quiet: bool) -> Result<Box<dyn Criterion>> {
    let lrp = |aggregation| -> Result<Box<dyn Criterion>> {
        let composite = match &args.composite {
            Some(c) => composite(c, 1e-6, 0.25, &BoxBounds::default(), 1)?,
            None => xprune::criteria::yeom_composite(),
        };
        Ok(Box::new(LrpCriterion {
            composite,
            aggregation,
            ..LrpCriterion::default()
        }))
    };
    if !(args.tolerance.is_finite() && args.tolerance >= 0.0) {
        return Err(CliError::Usage(format!(
            "--tolerance {} must be a finite number, at least 0",
            args.tolerance
        )));
    }
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        names::L1 | "weight" => Box::new(WeightNorm::l1()),
        names::L2 => Box::new(WeightNorm::l2()),
        names::GRADIENT | "grad" => Box::new(Gradient::default()),
        names::GRADIENT_BATCH => Box::new(Gradient::batch()),
        names::TAYLOR => Box::new(Taylor::default()),
        names::TAYLOR_BATCH => Box::new(Taylor::batch()),
        names::LRP => lrp(Aggregation::Signed)?,
        names::LRP_ABS => lrp(Aggregation::Absolute)?,
        names::FRS => Box::new(FeatureRelevance::default()),
        names::SHAPLEY => Box::new(Shapley {
            permutations: args.permutations,
            tolerance: (args.tolerance > 0.0).then_some(args.tolerance),
            max_permutations: args.max_permutations,
            exact_max_channels: args.exact_max_channels,
            ..Shapley::default()
        }),
        names::ISP => Box::new(isp(args, quiet)?),
        names::RANDOM => Box::new(RandomCriterion),
        other => {
            return Err(CliError::Usage(format!(
                "unknown criterion `{other}` (known: {})",
                names::ALL.join(", ")
            )));
        }
    })
}

/// ISP with the arguments' budget and epochs, reporting its three phases on one progress bar.
fn isp(args: &CriterionArgs, quiet: bool) -> Result<Isp> {
    let [predictor, selector, gates] = args.isp_epochs[..] else {
        return Err(CliError::Usage(format!(
            "--isp-epochs takes three numbers (predictor, selector, gates), got {:?}",
            args.isp_epochs
        )));
    };
    let mut config = IspConfig::with_budget(args.isp_budget.unwrap_or(0.5));
    config.predictor.epochs = predictor;
    config.selector.epochs = selector;
    config.gates.epochs = gates;
    config
        .validate()
        .map_err(|e| CliError::Usage(format!("isp: {e}")))?;
    let progress = crate::progress::bar(0, "isp", quiet);
    Ok(Isp::new(config).on_progress(move |p| {
        if p.step == 1 {
            progress.reset();
            progress.set_length(p.steps as u64);
            progress.set_message(format!("isp: training the {}", p.phase));
        }
        progress.set_position(p.step as u64);
        if let Some(kept) = p.kept {
            progress.set_message(format!(
                "isp: training the gates ({:.0}% MACs)",
                kept * 100.0
            ));
        }
        if p.phase == IspPhase::Gates && p.step == p.steps {
            progress.finish_and_clear();
        }
    }))
}

/// The selection described by the arguments.
pub fn selection(args: &SelectArgs) -> Result<Selection> {
    let target = match (args.ratio, args.mac_budget, args.latency_budget) {
        (Some(r), None, None) => PruneTarget::ChannelRatio(r),
        (None, Some(b), None) => PruneTarget::MacBudget(b),
        (None, None, Some(b)) => PruneTarget::LatencyBudget(b),
        _ => {
            return Err(CliError::Usage(
                "give --ratio R, --mac-budget B or --latency-budget L".into(),
            ));
        }
    };
    let sel = Selection {
        scope: scope(args.scope),
        normalization: normalization(args.normalize),
        target,
        min_channels: args.min_channels,
        round_to: args.round_to,
        latency: None,
    };
    match target {
        // The rest of a latency budget is checked once its model is attached (`prune`).
        PruneTarget::LatencyBudget(b) => Selection {
            target: PruneTarget::MacBudget(b),
            ..sel.clone()
        }
        .validate()?,
        _ => sel.validate()?,
    }
    if matches!(target, PruneTarget::LatencyBudget(_)) && sel.round_to > 1 {
        return Err(CliError::Usage(format!(
            "--round-to {} does not combine with --latency-budget: the latency model chooses \
             the kept counts",
            sel.round_to
        )));
    }
    Ok(sel)
}

/// The scope of a scope argument.
pub fn scope(s: ScopeArg) -> Scope {
    match s {
        ScopeArg::Global => Scope::Global,
        ScopeArg::Layer => Scope::PerGroup,
    }
}

/// The normalisation of a normalisation argument.
pub fn normalization(n: NormalizeArg) -> Normalization {
    match n {
        NormalizeArg::None => Normalization::None,
        NormalizeArg::L1 => Normalization::L1,
        NormalizeArg::L2 => Normalization::L2,
        NormalizeArg::Max => Normalization::Max,
    }
}

/// The reference data, reduced to `per_class` samples per class when asked.
pub fn reference(data: Dataset, per_class: Option<usize>, seed: u64) -> Result<Dataset> {
    match per_class {
        Some(n) => Ok(data.per_class(n, seed)?),
        None => Ok(data),
    }
}
