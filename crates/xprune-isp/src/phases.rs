//! The three ISP phases as `burn-train` models: each is a Burn module holding what the phase
//! trains and what it reads frozen (`no_grad`), with a `TrainStep` computing the phase's loss
//! on a batch, so that every phase runs in `burn-train`'s `Learner`
//! ([`run_phase`](crate::isp) launches it one epoch at a time).
//!
//! Random draws (the RBF masks of phase 1, the gates' noise of phase 3) take their seeds from
//! the run's seed and the step number, counted by a shared counter that the launches keep.

use crate::gates::GateConfig;
use crate::layout::GateLayout;
use crate::loss::{area, kl_to_target, smoothness};
use crate::macs::SoftMacs;
use crate::selector::Selector;
use crate::{IspError, Result};
use burn::module::{Module, Param};
use burn::tensor::{Tensor, TensorReadError};
use burn_train::metric::{Adaptor, ItemLazy};
use burn_train::{InferenceStep, TrainOutput, TrainStep};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use xprune_graph::{Activation, Batch, ChannelMasks, Graph, NodeId};
use xprune_surgery::ChannelGroups;

/// The output of a phase's step: its loss and, in the gates phase, the kept MAC fraction of
/// the step's hard gates.
#[derive(Clone, Debug)]
pub(crate) struct PhaseLoss {
    pub(crate) loss: Tensor<1>,
    pub(crate) kept: Option<Tensor<1>>,
}

impl ItemLazy for PhaseLoss {
    fn sync(self) -> std::result::Result<Self, burn::tensor::ExecutionError> {
        self.loss.device().flush()?;
        Ok(Self {
            loss: self.loss.without_autodiff(),
            kept: self.kept.map(|k| k.without_autodiff()),
        })
    }
}

impl Adaptor<PhaseLoss> for PhaseLoss {
    fn adapt(&self) -> PhaseLoss {
        self.clone()
    }
}

/// Reads a step's loss and kept fraction; stops at a loss that is not finite.
pub(crate) fn read_loss(
    item: &PhaseLoss,
) -> std::result::Result<((f64, Option<f64>), bool), TensorReadError> {
    let loss = item.loss.clone().try_into_scalar::<f64>()?;
    let kept = match &item.kept {
        Some(k) => Some(k.clone().try_into_scalar::<f64>()?),
        None => None,
    };
    Ok(((loss, kept), !loss.is_finite()))
}

/// The step counter the launches of a phase share.
#[derive(Clone, Debug, Default)]
pub(crate) struct Steps(Arc<AtomicUsize>);

impl Steps {
    /// The next step, counted from 1.
    fn next(&self) -> usize {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// What phase 1 draws its masks from.
#[derive(Clone, Debug)]
pub(crate) struct MaskDraw {
    /// The range of RBF widths of the current epoch, in pixels.
    pub(crate) range: (f32, f32),
    pub(crate) image: [usize; 2],
    pub(crate) seed: u64,
    pub(crate) steps: Steps,
}

/// Phase 1: the predictor (a copy of the classifier) learns the frozen teacher's outputs on
/// images under random RBF masks.
///
/// The teacher is outside the module's parameters (already on the autodiff training device,
/// without gradients): as a copy of the predictor it shares its parameter ids, and an
/// optimizer step over both would move the teacher with the predictor's gradients.
#[derive(Module, Debug)]
pub(crate) struct PredictorPhase {
    #[module(skip)]
    pub(crate) teacher: Graph,
    pub(crate) predictor: Graph,
    #[module(skip)]
    pub(crate) draw: MaskDraw,
}

impl PredictorPhase {
    fn loss(&self, batch: Batch, step: usize) -> Result<Tensor<1>> {
        let x = spatial(batch.inputs)?;
        let target = logits(
            self.teacher
                .forward(Activation::Spatial(x.clone()))
                .map_err(err)?,
        )
        .detach();
        let [h, w] = self.draw.image;
        let (c, s) = crate::rbf::random_parameters(
            x.dims()[0],
            h,
            w,
            self.draw.range,
            crate::isp::mix(self.draw.seed, 2, step),
            &x.device(),
        )?;
        let m = crate::rbf::rbf_masks(c, s, h, w)?;
        let out = self
            .predictor
            .forward_train(Activation::Spatial(x * m))
            .map_err(err)?;
        Ok(kl_to_target(target, logits(out)))
    }
}

/// Phase 2: the selector's decoder, on the frozen classifier's features, learns masks that
/// keep the frozen predictor's output close to the classifier's while covering little and
/// varying smoothly.
#[derive(Module, Debug)]
pub(crate) struct SelectorPhase {
    pub(crate) encoder: Graph,
    pub(crate) predictor: Graph,
    pub(crate) selector: Selector,
    #[module(skip)]
    pub(crate) feature: NodeId,
    #[module(skip)]
    pub(crate) weights: (f64, f64),
}

impl SelectorPhase {
    fn loss(&self, batch: Batch) -> Result<Tensor<1>> {
        let x = spatial(batch.inputs)?;
        let rec = self
            .encoder
            .run(Activation::Spatial(x.clone()))
            .record()
            .execute()
            .map_err(err)?;
        let target = logits(rec.output().clone()).detach();
        let f = spatial(
            rec.get(self.feature)
                .cloned()
                .ok_or_else(|| IspError("the feature map was not recorded".into()))?,
        )?
        .detach();
        let params = self.selector.parameters(f, batch.labels)?;
        let m = self.selector.masks(params)?;
        let out = self
            .predictor
            .forward(Activation::Spatial(x * m.clone()))
            .map_err(err)?;
        let (area_weight, smoothness_weight) = self.weights;
        Ok(kl_to_target(target, logits(out))
            + area(m.clone()).mul_scalar(area_weight)
            + smoothness(m).mul_scalar(smoothness_weight))
    }
}

/// The learned gate logits, one vector per gated group.
#[derive(Module, Debug)]
pub(crate) struct Gates {
    pub(crate) logits: Vec<Param<Tensor<1>>>,
}

/// What phase 3 reads besides its modules.
#[derive(Clone, Debug)]
pub(crate) struct GateSetting {
    pub(crate) groups: ChannelGroups,
    pub(crate) layout: GateLayout,
    pub(crate) macs: SoftMacs,
    pub(crate) gate: GateConfig,
    pub(crate) feature: NodeId,
    pub(crate) image: [usize; 2],
    pub(crate) mse_weight: f64,
    pub(crate) budget: f32,
    pub(crate) budget_weight: f32,
    pub(crate) seed: u64,
    pub(crate) steps: Steps,
}

/// Phase 3: with the classifier and the selector frozen, the gates learn to keep the
/// selector's masks on the gated features close to those on the full features, under the
/// MAC budget; hard gates (straight-through) in every forward pass.
#[derive(Module, Debug)]
pub(crate) struct GatePhase {
    pub(crate) encoder: Graph,
    pub(crate) selector: Selector,
    pub(crate) gates: Gates,
    #[module(skip)]
    pub(crate) setting: GateSetting,
}

impl GatePhase {
    fn loss(&self, batch: Batch, step: usize) -> Result<PhaseLoss> {
        let s = &self.setting;
        let x = spatial(batch.inputs)?;
        let f0 = features(&self.encoder, x.clone(), s.feature, None)?;
        let target = crate::isp::mask_vector(
            &self.selector,
            self.selector.parameters(f0, batch.labels.clone())?,
            s.image,
        )
        .detach();
        let hard: Vec<Tensor<1>> = self
            .gates
            .logits
            .iter()
            .enumerate()
            .map(|(k, l)| {
                s.gate
                    .hard(l.val(), Some(crate::isp::mix(s.seed, 6 + k, step)))
            })
            .collect::<Result<_>>()?;
        let masks = s.layout.masks(&self.encoder, &s.groups, &hard)?;
        let f = features(&self.encoder, x, s.feature, Some(&masks))?;
        let params = crate::isp::mask_vector(
            &self.selector,
            self.selector.parameters(f, batch.labels)?,
            s.image,
        );
        let mse = (params - target).powi_scalar(2).mean().reshape([1]);
        let r = s.macs.fraction(&hard)?;
        let loss = mse.mul_scalar(s.mse_weight)
            + crate::budget::budget_loss(r.clone(), s.budget, s.budget_weight)?;
        Ok(PhaseLoss {
            loss,
            kept: Some(r.detach()),
        })
    }
}

/// The training step of each phase: its loss and the gradients of what it trains. A phase's
/// loss fails only on an inconsistent graph, which [`Isp::run`](crate::Isp::run) rules out
/// before training; the trait cannot return the error, so it panics with it, and the launch
/// reports the panic as an error.
macro_rules! phase_steps {
    ($phase:ty, |$me:ident, $batch:ident| $loss:expr) => {
        impl TrainStep for $phase {
            type Input = Batch;
            type Output = PhaseLoss;

            fn step(&self, batch: Batch) -> TrainOutput<PhaseLoss> {
                let $me = self;
                let $batch = batch;
                let out: PhaseLoss = $loss.unwrap_or_else(|e: IspError| panic!("{e}"));
                let grads = out.loss.backward();
                TrainOutput::new(self, grads, out)
            }
        }

        /// Unused (the phases have no validation split), but `burn-train` asks for it: the
        /// loss on a batch.
        impl InferenceStep for $phase {
            type Input = Batch;
            type Output = PhaseLoss;

            fn step(&self, batch: Batch) -> PhaseLoss {
                let $me = self;
                let $batch = batch;
                $loss.unwrap_or_else(|e: IspError| panic!("{e}"))
            }
        }
    };
}

phase_steps!(PredictorPhase, |me, batch| me
    .loss(batch, me.draw.steps.next())
    .map(|loss| PhaseLoss { loss, kept: None }));
phase_steps!(SelectorPhase, |me, batch| me
    .loss(batch)
    .map(|loss| PhaseLoss { loss, kept: None }));
phase_steps!(GatePhase, |me, batch| me
    .loss(batch, me.setting.steps.next()));

fn features(
    encoder: &Graph,
    x: Tensor<4>,
    node: NodeId,
    masks: Option<&ChannelMasks>,
) -> Result<Tensor<4>> {
    let run = encoder.run(Activation::Spatial(x)).until(node);
    let run = match masks {
        Some(m) => run.masks(m),
        None => run,
    };
    let mut rec = run.execute().map_err(err)?;
    spatial(
        rec.take(node)
            .ok_or_else(|| IspError("the feature map was not computed".into()))?,
    )
}

fn spatial(a: Activation) -> Result<Tensor<4>> {
    a.into_spatial()
        .ok_or_else(|| IspError("expected a spatial map [N, C, H, W]".into()))
}

fn logits(a: Activation) -> Tensor<2> {
    a.flatten()
}

fn err(e: impl std::fmt::Display) -> IspError {
    IspError(e.to_string())
}
