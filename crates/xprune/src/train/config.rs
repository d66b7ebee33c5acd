//! [`TrainConfig`] and [`Optimizer`].

use super::error::TrainError;
use super::schedule::{LrSchedule, ScheduleUnit};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig};
use serde::{Deserialize, Serialize};

/// The optimisation algorithm, built on Burn's optimizers (`burn::optim`).
///
/// Conventions follow PyTorch: SGD momentum without dampening, weight decay added to the
/// gradient (L2) for `Sgd` and `Adam`, decoupled for `AdamW`; Adam's epsilon is `1e-8`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Optimizer {
    /// Stochastic gradient descent with optional (Nesterov) momentum.
    Sgd {
        /// Momentum factor in `[0, 1)`; 0 disables momentum.
        momentum: f64,
        /// L2 penalty added to the gradient (`>= 0`).
        weight_decay: f64,
        /// Nesterov momentum (needs a positive momentum).
        nesterov: bool,
    },
    /// Adam (Kingma and Ba, 2015).
    Adam {
        /// Decay rates of the first and second moment estimates, each in `[0, 1)`.
        betas: (f64, f64),
        /// L2 penalty added to the gradient (`>= 0`).
        weight_decay: f64,
    },
    /// AdamW: Adam with decoupled weight decay (Loshchilov and Hutter, 2019).
    AdamW {
        /// Decay rates of the first and second moment estimates, each in `[0, 1)`.
        betas: (f64, f64),
        /// Decoupled weight decay (`>= 0`).
        weight_decay: f64,
    },
}

impl Optimizer {
    /// SGD with the given momentum, no weight decay.
    pub fn sgd(momentum: f64) -> Self {
        Self::Sgd {
            momentum,
            weight_decay: 0.0,
            nesterov: false,
        }
    }

    /// Adam with the usual betas `(0.9, 0.999)` and no weight decay.
    pub fn adam() -> Self {
        Self::Adam {
            betas: (0.9, 0.999),
            weight_decay: 0.0,
        }
    }

    /// AdamW with the usual betas `(0.9, 0.999)` and the given decoupled weight decay.
    pub fn adamw(weight_decay: f64) -> Self {
        Self::AdamW {
            betas: (0.9, 0.999),
            weight_decay,
        }
    }

    /// Checks the parameters; returns what is wrong.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let unit = |name: &str, v: f64| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} {v} must be in [0, 1)"))
            }
        };
        let decay = |v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("weight decay {v} must be non-negative and finite"))
            }
        };
        match *self {
            Self::Sgd {
                momentum,
                weight_decay,
                nesterov,
            } => {
                unit("momentum", momentum)?;
                decay(weight_decay)?;
                if nesterov && momentum == 0.0 {
                    return Err("Nesterov momentum needs a positive momentum".into());
                }
                Ok(())
            }
            Self::Adam {
                betas,
                weight_decay,
            }
            | Self::AdamW {
                betas,
                weight_decay,
            } => {
                unit("beta1", betas.0)?;
                unit("beta2", betas.1)?;
                decay(weight_decay)
            }
        }
    }

    /// The Burn optimizer (for a `burn-train` `Learner` of your own, for example).
    pub fn init(&self) -> ModuleOptimizer {
        const EPSILON: f32 = 1e-8;
        let penalty = |wd: f64| (wd > 0.0).then(|| WeightDecayConfig::new(wd as f32));
        match *self {
            Self::Sgd {
                momentum,
                weight_decay,
                nesterov,
            } => SgdConfig::new()
                .with_momentum((momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(momentum)
                        .with_dampening(0.0)
                        .with_nesterov(nesterov)
                }))
                .with_weight_decay(penalty(weight_decay))
                .init(),
            Self::Adam {
                betas,
                weight_decay,
            } => AdamConfig::new()
                .with_beta_1(betas.0 as f32)
                .with_beta_2(betas.1 as f32)
                .with_epsilon(EPSILON)
                .with_weight_decay(penalty(weight_decay))
                .init(),
            Self::AdamW {
                betas,
                weight_decay,
            } => AdamWConfig::new()
                .with_beta_1(betas.0 as f32)
                .with_beta_2(betas.1 as f32)
                .with_epsilon(EPSILON)
                .with_weight_decay(weight_decay as f32)
                .init(),
        }
    }
}

/// How to train: epochs, batch size, learning rate and its schedule, optimizer, seed.
///
/// ```
/// # use xprune::train::{LrSchedule, Optimizer, ScheduleUnit, TrainConfig};
/// let config = TrainConfig::new(20, 64, 0.05)
///     .optimizer(Optimizer::Sgd { momentum: 0.9, weight_decay: 5e-4, nesterov: false })
///     .schedule(LrSchedule::Cosine { min_lr: 0.0 }, ScheduleUnit::Step)
///     .seed(7);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training set (at least 1).
    pub epochs: usize,
    /// Samples per optimisation step (at least 1).
    pub batch_size: usize,
    /// Base learning rate (positive).
    pub lr: f64,
    /// The optimizer.
    pub optimizer: Optimizer,
    /// The learning-rate schedule.
    pub schedule: LrSchedule,
    /// Whether the schedule advances per epoch or per step.
    pub schedule_unit: ScheduleUnit,
    /// Seeds the shuffling of every epoch and the device (dropout).
    pub seed: u64,
    /// Drops the last batch of an epoch when it is smaller than `batch_size` (useful with
    /// batch norm, whose batch statistics are meaningless for a batch of one).
    pub drop_last: bool,
    /// Batch size of the per-epoch evaluation.
    pub eval_batch_size: usize,
}

impl Default for TrainConfig {
    /// 10 epochs of batches of 64, SGD with momentum 0.9 at a constant rate of 0.01, seed 0.
    fn default() -> Self {
        Self::new(10, 64, 0.01)
    }
}

impl TrainConfig {
    /// A configuration with SGD (momentum 0.9), a constant rate and seed 0.
    pub fn new(epochs: usize, batch_size: usize, lr: f64) -> Self {
        Self {
            epochs,
            batch_size,
            lr,
            optimizer: Optimizer::sgd(0.9),
            schedule: LrSchedule::Constant,
            schedule_unit: ScheduleUnit::Epoch,
            seed: 0,
            drop_last: false,
            eval_batch_size: 256,
        }
    }

    /// Sets the optimizer.
    pub fn optimizer(mut self, optimizer: Optimizer) -> Self {
        self.optimizer = optimizer;
        self
    }

    /// Sets the learning-rate schedule and whether it advances per epoch or per step.
    pub fn schedule(mut self, schedule: LrSchedule, unit: ScheduleUnit) -> Self {
        self.schedule = schedule;
        self.schedule_unit = unit;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets whether a smaller last batch is dropped.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Sets the batch size of the per-epoch evaluation.
    pub fn eval_batch_size(mut self, size: usize) -> Self {
        self.eval_batch_size = size;
        self
    }

    /// Optimisation steps per epoch for `samples` training samples.
    pub fn steps_per_epoch(&self, samples: usize) -> usize {
        let b = self.batch_size.max(1);
        if self.drop_last {
            samples / b
        } else {
            samples.div_ceil(b)
        }
    }

    /// The learning rate of `step` (counted from 0 over the whole run) in `epoch` (from 0).
    pub fn lr_at(&self, epoch: usize, step: usize, steps_per_epoch: usize) -> f64 {
        match self.schedule_unit {
            ScheduleUnit::Epoch => self.schedule.lr(self.lr, epoch, self.epochs),
            ScheduleUnit::Step => self
                .schedule
                .lr(self.lr, step, self.epochs * steps_per_epoch),
        }
    }

    /// Burn's learning-rate scheduler for this configuration with `steps_per_epoch` steps per
    /// epoch (see [`LrSchedule::scheduler`]); with [`Optimizer::init`], what a `burn-train`
    /// `Learner` of your own needs to train as [`Trainer`](super::Trainer) does.
    pub fn scheduler(&self, steps_per_epoch: usize) -> Result<ModuleLrScheduler, TrainError> {
        self.schedule
            .scheduler(self.lr, self.epochs, steps_per_epoch, self.schedule_unit)
            .map_err(|e| TrainError::InvalidConfig(format!("learning-rate schedule: {e}")))
    }

    /// Checks every value; the error says which one is wrong.
    pub fn validate(&self) -> Result<(), TrainError> {
        let err = |m: String| Err(TrainError::InvalidConfig(m));
        if self.epochs == 0 {
            return err("epochs must be at least 1".into());
        }
        if self.batch_size == 0 || self.eval_batch_size == 0 {
            return err("batch sizes must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return err(format!(
                "learning rate {} must be positive and finite",
                self.lr
            ));
        }
        self.optimizer.validate().or_else(err)?;
        self.schedule.validate(self.lr).or_else(err)?;
        self.scheduler(1).map(|_| ())
    }
}
