//! [`Isp`]: the three training phases of interpretations-steered pruning and their result, a
//! [`PrunePlan`] (and, as a [`Criterion`], one score per channel: its learned gate logit).

use crate::gates::GateConfig;
use crate::layout::GateLayout;
use crate::macs::SoftMacs;
use crate::phases::{
    GatePhase, GateSetting, Gates, MaskDraw, PhaseLoss, PredictorPhase, SelectorPhase, Steps,
    read_loss,
};
use crate::selector::{MIN_SIGMA, Selector};
use crate::{IspError, Result};
use burn::module::{Module, Param};
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use burn_train::{InferenceStep, Learner, LearnerModel, TrainStep};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use xprune_criteria::{Criterion, CriterionError, Needs, Scores, ScoringContext};
use xprune_graph::launch::{LearnerState, Seen, launch_epoch};
use xprune_graph::{Batch, data_loader};
use xprune_graph::{Dataset, FeatureShape, Graph, NodeId};
use xprune_surgery::{ChannelGroups, PrunePlan, count_after};

/// Epochs, batch size and learning rate of one training phase.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PhaseConfig {
    /// Passes over the data (0 skips the phase's training; the selector and gates then keep
    /// their initial values).
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Learning rate.
    pub lr: f64,
}

impl PhaseConfig {
    /// A phase configuration.
    pub fn new(epochs: usize, batch_size: usize, lr: f64) -> Self {
        Self {
            epochs,
            batch_size,
            lr,
        }
    }

    fn check(&self, phase: Phase) -> Result<()> {
        if self.batch_size == 0 || !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(IspError(format!(
                "the {phase} phase needs a batch size >= 1 and a finite learning rate > 0, got \
                 {} and {}",
                self.batch_size, self.lr
            )));
        }
        Ok(())
    }
}

/// The hyper-parameters of ISP; `Default` gives the authors' values where they carry over to
/// small models and data, and says where not.
#[derive(Clone, Debug, PartialEq)]
pub struct IspConfig {
    /// The fraction of MACs to keep, `p` in `(0, 1]`.
    pub budget: f64,
    /// Phase 1, the predictor (Adam). Authors: learning rate 1e-4 over many epochs of
    /// CIFAR-10; default 3 epochs at 1e-3 for a few thousand samples.
    pub predictor: PhaseConfig,
    /// Phase 2, the selector's decoder (Adam). Authors: 1e-4; default 5 epochs at 1e-3.
    pub selector: PhaseConfig,
    /// Phase 3, the gates (AdamW). Authors: learning rate 1e-3 over about 200 epochs; default
    /// 30 epochs at 0.05 (the gates start at `sigmoid(3 / 0.4)` and must be able to close
    /// within a few hundred steps; faster rates overshoot the budget, see `docs/isp.md`).
    pub gates: PhaseConfig,
    /// Weight decay of the gates' AdamW (authors: 1e-3).
    pub gate_weight_decay: f64,
    /// Range of the random mask widths of the predictor's training, in pixels of a 32-pixel
    /// image (scaled with the image size): the upper end widens linearly from the lower one to
    /// this value over the epochs (authors: about 5 to 11 on CIFAR-10).
    pub sigma: (f32, f32),
    /// Weight `l1` of the selector's area term (authors: 0.2).
    pub area_weight: f64,
    /// Weight `l2` of the selector's smoothness term (authors: 0.001).
    pub smoothness_weight: f64,
    /// Weight of the gates' mask-parameter MSE (authors: 10).
    pub mse_weight: f64,
    /// Weight `w` of the budget loss `w ln(max(r, p) / p)` (authors: 1 in their script;
    /// default 2, which meets the budget in fewer epochs).
    pub budget_weight: f64,
    /// Gumbel-sigmoid settings (authors: temperature 0.4, offset 3).
    pub gate: GateConfig,
    /// Channels of the selector's 1x1 convolution.
    pub hidden: usize,
    /// The node whose output the selector reads; `None`: the last node with a spatial map
    /// larger than 1x1 (the input of the global pooling).
    pub feature_node: Option<String>,
    /// Seed of every random choice (weights of the selector, masks, Gumbel noise, data order).
    pub seed: u64,
}

impl Default for IspConfig {
    fn default() -> Self {
        Self {
            budget: 0.5,
            predictor: PhaseConfig::new(3, 64, 1e-3),
            selector: PhaseConfig::new(5, 64, 1e-3),
            gates: PhaseConfig::new(30, 64, 0.05),
            gate_weight_decay: 1e-3,
            sigma: (5.0, 11.0),
            area_weight: 0.2,
            smoothness_weight: 0.001,
            mse_weight: 10.0,
            budget_weight: 2.0,
            gate: GateConfig::default(),
            hidden: 32,
            feature_node: None,
            seed: 0,
        }
    }
}

impl IspConfig {
    /// The default configuration for a MAC budget (fraction of MACs kept).
    pub fn with_budget(budget: f64) -> Self {
        Self {
            budget,
            ..Self::default()
        }
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<()> {
        if !(self.budget > 0.0 && self.budget <= 1.0) {
            return Err(IspError(format!(
                "the MAC budget (fraction kept) must be in (0, 1], got {}",
                self.budget
            )));
        }
        self.predictor.check(Phase::Predictor)?;
        self.selector.check(Phase::Selector)?;
        self.gates.check(Phase::Gates)?;
        let (lo, hi) = self.sigma;
        if !(lo.is_finite() && hi.is_finite() && lo > MIN_SIGMA && lo <= hi) {
            return Err(IspError(format!(
                "the mask width range must be finite with {MIN_SIGMA} < min <= max, got [{lo}, \
                 {hi}]"
            )));
        }
        for (name, v) in [
            ("gate weight decay", self.gate_weight_decay),
            ("area weight", self.area_weight),
            ("smoothness weight", self.smoothness_weight),
            ("MSE weight", self.mse_weight),
            ("budget weight", self.budget_weight),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(IspError(format!(
                    "the {name} must be finite and >= 0, got {v}"
                )));
            }
        }
        if self.hidden == 0 {
            return Err(IspError(
                "the selector needs at least 1 hidden channel".into(),
            ));
        }
        self.gate.check()
    }
}

/// A training phase of ISP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Phase 1: the predictor learns to classify masked images like the model.
    Predictor,
    /// Phase 2: the selector learns to predict each image's saliency mask.
    Selector,
    /// Phase 3: the gates learn which channels keep the selector's masks under the budget.
    Gates,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Predictor => "predictor",
            Self::Selector => "selector",
            Self::Gates => "gates",
        })
    }
}

/// A progress report: one optimisation step of a phase finished.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IspProgress {
    /// The phase.
    pub phase: Phase,
    /// Steps of the phase done.
    pub step: usize,
    /// Steps of the phase.
    pub steps: usize,
    /// The step's loss.
    pub loss: f64,
    /// In the gates phase, the kept MAC fraction of the step's hard gates.
    pub kept: Option<f64>,
}

/// What one phase did.
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseSummary {
    /// The phase.
    pub phase: Phase,
    /// Mean loss of every epoch.
    pub epoch_losses: Vec<f64>,
    /// Wall-clock time.
    pub elapsed: Duration,
}

/// The result of [`Isp::run`].
#[derive(Clone, Debug)]
pub struct IspOutcome {
    /// The gated groups.
    pub layout: GateLayout,
    /// Per gated group, the learned gate pre-activations `l + offset` (positive: open).
    pub logits: Vec<Vec<f32>>,
    /// The channels whose gates are closed, as a plan on the graph.
    pub plan: PrunePlan,
    /// The exact fraction of MACs the plan keeps (from the same counts as everything else).
    pub kept_fraction: f64,
    /// What every phase did.
    pub phases: Vec<PhaseSummary>,
}

/// Interpretations-steered pruning (Ganjdanesh, Gao and Huang, ECCV 2022); see the crate
/// documentation and `docs/criteria.md`.
///
/// As a [`Criterion`] (name `isp`) it runs the three phases on the reference data and scores
/// every channel with its learned gate pre-activation, so that a selection with
/// `PruneTarget::MacBudget(budget)` removes the closed gates (and, should the gates have
/// missed the budget, the next-lowest ones). Groups after the selector's feature map are not
/// gated (their channels do not change the explanation); they score above every gate, in the
/// order of their L1 weight norms, so that they lose channels only when the gated groups
/// alone cannot meet the target.
///
/// ```
/// use burn::tensor::Device;
/// use xprune_isp::{Isp, IspConfig, PhaseConfig};
/// use xprune_surgery::{ChannelGroups, prune};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let device = Device::flex();
/// let graph = xprune_models::resnet_cifar(
///     xprune_models::ResNetCifarDepth::ResNet20,
///     xprune_graph::FeatureShape::spatial(3, 32, 32),
///     10,
///     0.25,
///     &device,
///     0,
/// )?;
/// let reference = xprune_io::data::synthetic::shapes10(20, 0)?;
/// let groups = ChannelGroups::new(&graph);
/// let config = IspConfig {
///     predictor: PhaseConfig::new(1, 20, 1e-3),
///     selector: PhaseConfig::new(1, 20, 1e-3),
///     gates: PhaseConfig::new(2, 20, 0.05),
///     ..IspConfig::with_budget(0.5)
/// };
/// let outcome = Isp::new(config)
///     .on_progress(|p| println!("{} {}/{}: {:.3}", p.phase, p.step, p.steps, p.loss))
///     .run(&graph, &groups, &reference)?;
/// let pruned = prune(&graph, &groups, &outcome.plan)?;
/// assert!((pruned.macs() as f64 / graph.macs() as f64 - outcome.kept_fraction).abs() < 1e-12);
/// # Ok(())
/// # }
/// ```
pub struct Isp {
    /// The hyper-parameters.
    pub config: IspConfig,
    progress: Mutex<Option<ProgressFn>>,
}

/// The boxed progress callback of [`Isp`].
type ProgressFn = Box<dyn FnMut(&IspProgress) + Send>;

impl std::fmt::Debug for Isp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Isp").field("config", &self.config).finish()
    }
}

impl Default for Isp {
    fn default() -> Self {
        Self::new(IspConfig::default())
    }
}

/// What every ISP phase reads: the data (and an empty validation set) for `burn-dataset`,
/// the graph's device, the image size, the selector's feature node.
struct Context {
    data: Arc<Dataset>,
    empty: Arc<Dataset>,
    device: Device,
    image: [usize; 2],
    feature: NodeId,
}

impl Isp {
    /// ISP with a configuration.
    pub fn new(config: IspConfig) -> Self {
        Self {
            config,
            progress: Mutex::new(None),
        }
    }

    /// Reports every optimisation step to `callback`.
    pub fn on_progress(self, callback: impl FnMut(&IspProgress) + Send + 'static) -> Self {
        *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(callback));
        self
    }

    fn report(&self, p: IspProgress) {
        if let Some(cb) = self
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            cb(&p);
        }
    }

    /// Runs the three phases on `graph` (a trained classifier of images `[C, H, W]`) with
    /// `data` (labelled samples) and returns the learned gates and the plan of the closed
    /// ones. Gates cover the prunable groups of `groups` that hold a channel at or before the
    /// selector's feature node (later groups, such as hidden layers of a classifier head, do
    /// not change the explanation and are not gated).
    ///
    /// # Errors
    ///
    /// An invalid configuration, a graph without an image input or spatial feature map, data
    /// that does not fit the graph, no prunable group, a node whose MACs are not multilinear
    /// in its channel counts, or a loss that is not finite (naming the phase and step).
    pub fn run(&self, graph: &Graph, groups: &ChannelGroups, data: &Dataset) -> Result<IspOutcome> {
        let cfg = &self.config;
        cfg.validate()?;
        let input = graph.input_shape();
        let image = match input.hw() {
            Some(hw) if matches!(input, FeatureShape::Spatial(_)) => hw,
            _ => {
                return Err(IspError(format!(
                    "ISP needs an image input [C, H, W], the graph takes [{input}]"
                )));
            }
        };
        if data.is_empty() || data.sample_shape() != input {
            return Err(IspError(format!(
                "ISP needs labelled samples of the graph's input [{input}], got {} samples of \
                 [{}]",
                data.len(),
                data.sample_shape()
            )));
        }
        if data.num_classes() > graph.output_shape().numel() {
            return Err(IspError(format!(
                "the data has {} classes, the graph {} outputs",
                data.num_classes(),
                graph.output_shape().numel()
            )));
        }
        let feature = feature_node(graph, cfg.feature_node.as_deref())?;
        let layout = GateLayout::until(graph, groups, feature)?;
        let macs = SoftMacs::new(graph, groups, &layout)?;
        let device = graph.device().without_autodiff();
        let ctx = Context {
            data: Arc::new(data.clone()),
            empty: Arc::new(data.subset(&[]).map_err(graph_err)?),
            device,
            image,
            feature,
        };
        let mut phases = Vec::new();
        let (predictor, summary) = self.train_predictor(&ctx, graph)?;
        phases.push(summary);
        let (selector, summary) = self.train_selector(&ctx, graph, &predictor)?;
        phases.push(summary);
        let (logits, summary) = self.train_gates(&ctx, graph, groups, &layout, &macs, &selector)?;
        phases.push(summary);
        let open: Vec<Vec<bool>> = logits
            .iter()
            .map(|l| l.iter().map(|&v| v > 0.0).collect())
            .collect();
        let plan = layout.plan(&open, &logits)?;
        let resolved = plan
            .resolve(groups)
            .map_err(|e| IspError(format!("the gates' plan is invalid: {e}")))?;
        let kept = count_after(graph, groups, &resolved).macs as f64 / graph.macs().max(1) as f64;
        Ok(IspOutcome {
            layout,
            logits,
            plan,
            kept_fraction: kept,
            phases,
        })
    }

    /// Runs the epochs of one phase in `burn-train`'s `Learner`, one launch per epoch (the
    /// optimizer's state goes on from one to the next), in the data order drawn from the seed,
    /// `stream` and the epoch; `before_epoch` may change the model first.
    fn run_phase<M>(
        &self,
        ctx: &Context,
        which: Phase,
        phase: PhaseConfig,
        stream: usize,
        mut model: M,
        optimizer: ModuleOptimizer,
        mut before_epoch: impl FnMut(&mut M, usize),
    ) -> Result<(M, Vec<f64>)>
    where
        M: LearnerModel
            + TrainStep<Input = Batch, Output = PhaseLoss>
            + InferenceStep<Input = Batch, Output = PhaseLoss>
            + Send,
    {
        let steps = phase.epochs * ctx.data.len().div_ceil(phase.batch_size);
        let mut state = LearnerState::default();
        let mut step = 0;
        let mut epoch_losses = Vec::with_capacity(phase.epochs);
        for epoch in 0..phase.epochs {
            before_epoch(&mut model, epoch);
            let order = mix(self.config.seed, stream, epoch);
            let train = data_loader(&ctx.data, phase.batch_size, false, Some(order), &ctx.device);
            let valid = data_loader(&ctx.empty, 1, false, None, &ctx.device);
            let learner = Learner::new(model.train(), optimizer.clone(), phase.lr);
            let (mut sum, mut n, mut bad) = (0.0, 0usize, None);
            let launched = launch_epoch(
                learner,
                state,
                train,
                valid,
                std::slice::from_ref(&ctx.device),
                read_loss,
                read_loss,
                |seen| {
                    if let Seen::Train((loss, kept)) = seen {
                        step += 1;
                        n += 1;
                        sum += loss;
                        if !loss.is_finite() && bad.is_none() {
                            bad = Some((step, loss));
                        }
                        self.report(IspProgress {
                            phase: which,
                            step,
                            steps,
                            loss,
                            kept,
                        });
                    }
                },
            )
            .map_err(|e| IspError(format!("the {which} phase: {e}")))?;
            if let Some((step, v)) = bad {
                return Err(IspError(format!(
                    "the {which} phase's loss is {v} at step {step}; lower its learning rate"
                )));
            }
            model = launched.model;
            state = launched.state;
            epoch_losses.push(sum / n.max(1) as f64);
        }
        Ok((model, epoch_losses))
    }

    /// Phase 1: a copy of the classifier learns `KL(model(x) || predictor(x * m))` for random
    /// RBF masks `m` (their widths widening epoch by epoch), in training mode, with Adam.
    fn train_predictor(&self, ctx: &Context, graph: &Graph) -> Result<(Graph, PhaseSummary)> {
        let cfg = &self.config;
        let phase = cfg.predictor;
        let start = Instant::now();
        ctx.device.seed(cfg.seed);
        ctx.device.clone().autodiff().seed(cfg.seed);
        let scale = ctx.image[0].min(ctx.image[1]) as f32 / 32.0;
        let (lo, hi) = (cfg.sigma.0 * scale, cfg.sigma.1 * scale);
        let model = PredictorPhase {
            teacher: graph.clone().no_grad().fork(&ctx.device.clone().autodiff()),
            predictor: graph.clone(),
            draw: MaskDraw {
                range: (lo, hi),
                image: ctx.image,
                seed: cfg.seed,
                steps: Steps::default(),
            },
        };
        let widen = |m: &mut PredictorPhase, epoch: usize| {
            let w = (epoch + 1) as f32 / phase.epochs as f32;
            m.draw.range = (lo.max(MIN_SIGMA + 1e-3), lo + (hi - lo) * w);
        };
        let optimizer = AdamConfig::new().init();
        let (model, epoch_losses) =
            self.run_phase(ctx, Phase::Predictor, phase, 1, model, optimizer, widen)?;
        Ok((
            model.predictor.valid(),
            PhaseSummary {
                phase: Phase::Predictor,
                epoch_losses,
                elapsed: start.elapsed(),
            },
        ))
    }

    /// Phase 2: the selector's decoder, on the frozen classifier's features, learns masks that
    /// keep the predictor's output close to the model's while covering little and varying
    /// smoothly, with Adam.
    fn train_selector(
        &self,
        ctx: &Context,
        graph: &Graph,
        predictor: &Graph,
    ) -> Result<(Selector, PhaseSummary)> {
        let cfg = &self.config;
        let phase = cfg.selector;
        let start = Instant::now();
        ctx.device.seed(mix(cfg.seed, 3, 0));
        ctx.device.clone().autodiff().seed(mix(cfg.seed, 3, 0));
        let features = graph.node(ctx.feature).map_err(graph_err)?.shape.dims();
        let features: [usize; 3] = [features[0], features[1], features[2]];
        let sigma0 = {
            let scale = ctx.image[0].min(ctx.image[1]) as f32 / 32.0;
            (cfg.sigma.0 + cfg.sigma.1) / 2.0 * scale
        };
        let selector = Selector::new(
            features,
            ctx.data.num_classes().max(1),
            ctx.image,
            cfg.hidden,
            sigma0.max(MIN_SIGMA + 0.1),
            &ctx.device,
        )?;
        let model = SelectorPhase {
            encoder: graph.clone().no_grad(),
            predictor: predictor.clone().no_grad(),
            selector,
            feature: ctx.feature,
            weights: (cfg.area_weight, cfg.smoothness_weight),
        };
        let optimizer = AdamConfig::new().init();
        let (model, epoch_losses) =
            self.run_phase(ctx, Phase::Selector, phase, 4, model, optimizer, |_, _| {})?;
        Ok((
            model.selector.valid(),
            PhaseSummary {
                phase: Phase::Selector,
                epoch_losses,
                elapsed: start.elapsed(),
            },
        ))
    }

    /// Phase 3: with the network and the selector frozen, the gates learn
    /// `mse_weight * MSE(selector(gated features), selector(features)) + w ln(max(r, p) / p)`
    /// with AdamW; hard gates (straight-through) in every forward pass. The MSE is over the
    /// mask parameters in image units (centre / side, width / side); the authors compare the
    /// decoder's raw outputs, whose saturated `tanh` range would dominate.
    fn train_gates(
        &self,
        ctx: &Context,
        graph: &Graph,
        groups: &ChannelGroups,
        layout: &GateLayout,
        macs: &SoftMacs,
        selector: &Selector,
    ) -> Result<(Vec<Vec<f32>>, PhaseSummary)> {
        let cfg = &self.config;
        let phase = cfg.gates;
        let start = Instant::now();
        let gates = Gates {
            logits: layout
                .groups()
                .iter()
                .map(|g| Param::from_tensor(Tensor::zeros([g.channels], &ctx.device)))
                .collect(),
        };
        let model = GatePhase {
            encoder: graph.clone().no_grad(),
            selector: selector.clone().no_grad(),
            gates,
            setting: GateSetting {
                groups: groups.clone(),
                layout: layout.clone(),
                macs: macs.clone(),
                gate: cfg.gate,
                feature: ctx.feature,
                image: ctx.image,
                mse_weight: cfg.mse_weight,
                budget: cfg.budget as f32,
                budget_weight: cfg.budget_weight as f32,
                seed: cfg.seed,
                steps: Steps::default(),
            },
        };
        let optimizer = AdamWConfig::new()
            .with_weight_decay(cfg.gate_weight_decay as f32)
            .init();
        let (model, epoch_losses) =
            self.run_phase(ctx, Phase::Gates, phase, 5, model, optimizer, |_, _| {})?;
        let logits = model
            .gates
            .logits
            .iter()
            .map(|l| {
                l.val()
                    .add_scalar(cfg.gate.offset as f64)
                    .into_data()
                    .try_to_vec::<f32>()
                    .map_err(|e| IspError(format!("reading the gate logits: {e:?}")))
            })
            .collect::<Result<_>>()?;
        Ok((
            logits,
            PhaseSummary {
                phase: Phase::Gates,
                epoch_losses,
                elapsed: start.elapsed(),
            },
        ))
    }
}

impl Criterion for Isp {
    fn name(&self) -> String {
        xprune_criteria::names::ISP.to_string()
    }

    fn needs(&self) -> Needs {
        Needs::Gradients
    }

    fn score(&self, ctx: &ScoringContext<'_>) -> xprune_criteria::Result<Scores> {
        let data = ctx.require_data(xprune_criteria::names::ISP)?;
        let config_err = |e: IspError| CriterionError::Config {
            criterion: xprune_criteria::names::ISP.into(),
            message: e.0,
        };
        let isp = Isp {
            config: IspConfig {
                seed: ctx.seed,
                ..self.config.clone()
            },
            progress: Mutex::new(
                self.progress
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take(),
            ),
        };
        let outcome = isp.run(ctx.graph, ctx.groups, data).map_err(config_err);
        // Hand the callback back for the next call.
        *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = isp
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let outcome = outcome?;
        let mut scores = Scores::new(self.name());
        let mut top = f64::MIN;
        for (g, l) in outcome.layout.groups().iter().zip(&outcome.logits) {
            let values: Vec<f64> = l.iter().map(|&v| v as f64).collect();
            top = values.iter().fold(top, |m, &v| m.max(v));
            scores.insert(ctx.groups, g.id, values)?;
        }
        // Groups after the selector's feature map are not gated: they rank above every gate,
        // in the order of their L1 weight norms, so that they lose channels only when the
        // gated groups alone cannot meet a target.
        let gated: Vec<usize> = outcome.layout.groups().iter().map(|g| g.id).collect();
        if ctx.groups.prunable().any(|g| !gated.contains(&g.id())) {
            let norms = xprune_criteria::WeightNorm::l1().score(ctx)?;
            for g in ctx.groups.prunable().filter(|g| !gated.contains(&g.id())) {
                let v = norms.get(g.id()).unwrap_or(&[]);
                let max = v.iter().fold(0.0f64, |m, &x| m.max(x.abs()));
                let values: Vec<f64> = (0..g.channels())
                    .map(|k| {
                        let x = v.get(k).copied().unwrap_or(0.0);
                        top + 1.0 + if max > 0.0 { x / max } else { 0.0 }
                    })
                    .collect();
                scores.insert(ctx.groups, g.id(), values)?;
            }
        }
        Ok(scores)
    }
}

/// The node the selector reads: `name`, or the last node with a channels-first spatial map
/// larger than 1x1.
pub fn feature_node(graph: &Graph, name: Option<&str>) -> Result<NodeId> {
    let ok = |id: NodeId| {
        let s = graph.nodes()[id].shape;
        id > 0 && matches!(s, FeatureShape::Spatial(_)) && s.positions() > 1
    };
    match name {
        Some(name) => {
            let id = graph.find(name).map_err(graph_err)?;
            if !ok(id) {
                return Err(IspError(format!(
                    "the selector's feature node `{name}` must be a spatial map [C, H, W] \
                     larger than 1x1, it is [{}]",
                    graph.nodes()[id].shape
                )));
            }
            Ok(id)
        }
        None => (0..graph.len()).rev().find(|&id| ok(id)).ok_or_else(|| {
            IspError(
                "the graph has no spatial feature map larger than 1x1 for the selector to read"
                    .into(),
            )
        }),
    }
}

/// The mask parameters in image units, `[N, 3]`: centre `x / W`, `y / H` and width
/// `sigma / min(H, W)`.
pub(crate) fn mask_vector(selector: &Selector, raw: Tensor<2>, image: [usize; 2]) -> Tensor<2> {
    let (centres, sigmas) = selector.mask_parameters(raw);
    let [h, w] = image;
    let n = sigmas.dims()[0];
    let cx = centres.clone().narrow(1, 0, 1).div_scalar(w as f64);
    let cy = centres.narrow(1, 1, 1).div_scalar(h as f64);
    let s = sigmas.reshape([n, 1]).div_scalar(h.min(w) as f64);
    Tensor::cat(vec![cx, cy, s], 1)
}

fn graph_err(e: impl std::fmt::Display) -> IspError {
    IspError(e.to_string())
}

/// A seed for stream `stream`, item `i` of the run's seed.
pub(crate) fn mix(seed: u64, stream: usize, i: usize) -> u64 {
    let mut z = seed
        ^ (stream as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (i as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
