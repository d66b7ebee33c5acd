//! Learning-rate schedules.

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
