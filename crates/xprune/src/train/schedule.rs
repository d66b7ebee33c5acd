//! Learning-rate schedules.

use burn::optim::lr_scheduler::LrSchedulerConfig;
use burn::optim::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLrScheduler, ModuleLrSchedulerConfig};
use burn::optim::lr_scheduler::sequential::SequentialLrSchedulerConfig;
use burn::optim::lr_scheduler::step::StepLrSchedulerConfig;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// How the learning rate changes during training.
///
/// The schedule advances once per epoch or once per optimisation step, as chosen by
/// [`ScheduleUnit`]; `t` below counts those units from 0 and `T` is their total.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum LrSchedule {
    /// The base learning rate throughout.
    Constant,
    /// Step decay: `lr * gamma^floor(t / every)`.
    Step {
        /// Units between two decays (at least 1).
        every: usize,
        /// Factor applied at each decay (positive).
        gamma: f64,
    },
    /// Cosine annealing from the base rate to `min_lr`:
    /// `min_lr + (lr - min_lr) * (1 + cos(pi * t / T)) / 2`.
    Cosine {
        /// The rate approached at the end (between 0 and the base rate).
        min_lr: f64,
    },
}

/// What one unit of an [`LrSchedule`] is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScheduleUnit {
    /// The rate changes between epochs.
    #[default]
    Epoch,
    /// The rate changes after every optimisation step.
    Step,
}

impl LrSchedule {
    /// The learning rate at unit `t` of `total`, for the base rate `base`.
    pub fn lr(&self, base: f64, t: usize, total: usize) -> f64 {
        match *self {
            Self::Constant => base,
            Self::Step { every, gamma } => base * gamma.powi((t / every.max(1)) as i32),
            Self::Cosine { min_lr } => {
                let progress = t as f64 / total.max(1) as f64;
                min_lr + (base - min_lr) * 0.5 * (1.0 + (PI * progress).cos())
            }
        }
    }

    /// The schedule as Burn's learning-rate scheduler (`burn::optim::lr_scheduler`), which
    /// the `Learner` steps once per optimisation step: for `epochs` epochs of
    /// `steps_per_epoch` steps from the base rate `base`, advancing per `unit`. Its rates are
    /// [`LrSchedule::lr`]'s (a step decay per epoch is Burn's step scheduler over
    /// `every * steps_per_epoch` steps; a cosine per epoch is a sequence of one constant per
    /// epoch; a cosine per step is Burn's cosine annealing over all steps).
    ///
    /// Errors: what Burn rejects (a cosine schedule from a base rate above 1, for example).
    pub fn scheduler(
        &self,
        base: f64,
        epochs: usize,
        steps_per_epoch: usize,
        unit: ScheduleUnit,
    ) -> Result<ModuleLrScheduler, String> {
        let spe = steps_per_epoch.max(1);
        let total = epochs.max(1) * spe;
        let config: LrSchedulerConfig = match (*self, unit) {
            (Self::Constant, _) => LrSchedulerConfig::Constant(base),
            (Self::Step { every, gamma }, unit) => {
                let size = match unit {
                    ScheduleUnit::Step => every,
                    ScheduleUnit::Epoch => every.saturating_mul(spe),
                };
                StepLrSchedulerConfig::new(base, size)
                    .with_gamma(gamma)
                    .into()
            }
            (Self::Cosine { min_lr }, ScheduleUnit::Step) => {
                CosineAnnealingLrSchedulerConfig::new(base, total)
                    .with_min_lr(min_lr)
                    .into()
            }
            (Self::Cosine { .. }, ScheduleUnit::Epoch) => {
                let epochs = epochs.max(1);
                let rates = (0..epochs)
                    .map(|e| LrSchedulerConfig::Constant(self.lr(base, e, epochs)))
                    .collect();
                let milestones = (1..epochs).map(|e| e * spe).collect();
                SequentialLrSchedulerConfig::new(rates, milestones).into()
            }
        };
        ModuleLrSchedulerConfig::new(config).init()
    }

    /// Checks the parameters against the base rate; returns what is wrong.
    pub(crate) fn validate(&self, base: f64) -> Result<(), String> {
        match *self {
            Self::Constant => Ok(()),
            Self::Step { every, gamma } => {
                if every == 0 {
                    Err("step decay needs `every` >= 1".into())
                } else if !(gamma.is_finite() && gamma > 0.0) {
                    Err(format!(
                        "step decay factor {gamma} must be positive and finite"
                    ))
                } else {
                    Ok(())
                }
            }
            Self::Cosine { min_lr } => {
                if min_lr.is_finite() && (0.0..=base).contains(&min_lr) {
                    Ok(())
                } else {
                    Err(format!("cosine min_lr {min_lr} must be in [0, {base}]"))
                }
            }
        }
    }
}
