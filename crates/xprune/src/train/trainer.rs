//! [`Trainer`]: cross-entropy training of a [`Graph`] in `burn-train`'s `Learner`.

use super::config::TrainConfig;
use super::error::TrainError;
use super::learner::{Event, read_step, read_valid};
use super::metrics::{Metrics, Tally, check_fit, outputs};
use burn::module::Module;
use burn_train::Learner;
use std::sync::Arc;
use std::time::{Duration, Instant};
use xprune_graph::burn::tensor::Device;
use xprune_graph::launch::{LearnerState, Seen, launch_epoch};
use xprune_graph::{Dataset, Graph, data_loader};

/// What a [`Progress`] report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressKind {
    /// An optimisation step finished.
    Step,
    /// An epoch finished (after its evaluation, if any).
    EpochEnd,
}

/// A progress report passed to the callback of [`Trainer::on_progress`].
#[derive(Clone, Debug)]
pub struct Progress<'a> {
    /// Whether a step or an epoch finished.
    pub kind: ProgressKind,
    /// The current epoch, counted from 1.
    pub epoch: usize,
    /// Number of epochs.
    pub epochs: usize,
    /// Optimisation steps done so far over the whole run.
    pub step: usize,
    /// Optimisation steps of the whole run.
    pub total_steps: usize,
    /// For a step, its loss; at the end of an epoch, the mean loss of the epoch's steps.
    pub loss: f64,
    /// The learning rate of the last step.
    pub lr: f64,
    /// Time since training started.
    pub elapsed: Duration,
    /// At the end of an epoch, the accuracy on the epoch's training batches (in training
    /// mode, while the weights changed).
    pub train_accuracy: Option<f64>,
    /// At the end of an epoch, the metrics on the evaluation set, if one was given.
    pub eval: Option<&'a Metrics>,
}

/// A summary of one epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochSummary {
    /// The epoch, counted from 1.
    pub epoch: usize,
    /// Mean training loss of the epoch's steps.
    pub loss: f64,
    /// Accuracy on the epoch's training batches (training mode, weights changing).
    pub train_accuracy: f64,
    /// The learning rate of the epoch's last step.
    pub lr: f64,
    /// Time since training started, at the end of the epoch.
    pub elapsed: Duration,
    /// Metrics on the evaluation set, if one was given.
    pub eval: Option<Metrics>,
}

/// The result of training: the trained graph (on the caller's device, without autodiff) and
/// the history.
#[derive(Debug)]
pub struct Trained {
    /// The trained graph, in inference form on the device of the input graph.
    pub graph: Graph,
    /// One summary per epoch.
    pub history: Vec<EpochSummary>,
    /// Optimisation steps done.
    pub steps: usize,
    /// Wall-clock training time (including per-epoch evaluation).
    pub elapsed: Duration,
}

/// Trains a copy of `graph` on `data` with cross-entropy; see [`Trainer`].
pub fn train(graph: &Graph, data: &Dataset, config: &TrainConfig) -> Result<Trained, TrainError> {
    Trainer::new(config.clone()).fit(graph, data)
}

/// Cross-entropy training of a [`Graph`] with a Burn optimizer, a learning-rate schedule, an
/// optional per-epoch evaluation and a progress callback.
///
/// ```
/// # use xprune::train::{Optimizer, ProgressKind, TrainConfig, Trainer};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let device = xprune::burn::tensor::Device::flex();
/// # let graph = xprune::models::mlp(2, &[8], 2, &device, 0)?;
/// # let train = xprune::io::data::synthetic::moons(64, 0.1, 1)?;
/// # let test = xprune::io::data::synthetic::moons(32, 0.1, 2)?;
/// let trained = Trainer::new(TrainConfig::new(2, 16, 1e-3).optimizer(Optimizer::adam()))
///     .evaluate_on(&test)
///     .on_progress(|p| if p.kind == ProgressKind::EpochEnd { println!("{} {}", p.epoch, p.loss) })
///     .fit(&graph, &train)?;
/// # assert_eq!(trained.history.len(), 2);
/// # Ok(())
/// # }
/// ```
///
/// Every epoch is one launch of `burn-train`'s `SupervisedTraining` on a `Learner` holding
/// the graph (which implements `burn-train`'s step traits), Burn's optimizer
/// ([`Optimizer::init`](super::Optimizer::init)) and Burn's learning-rate scheduler
/// ([`TrainConfig::scheduler`]); the optimizer's and the scheduler's state go from one
/// epoch's launch to the next through `burn-train`'s checkpointer interface (kept in
/// memory), so that the end-of-epoch hook can replace the model between epochs. The
/// per-epoch evaluation is `burn-train`'s validation loop. Training runs on the autodiff
/// version of the graph's device, or with [`Trainer::devices`] on several devices with
/// `burn-train`'s multi-device strategy, in training mode (batch norm uses and updates batch
/// statistics, dropout is active). Each epoch visits the samples in an order drawn from the
/// seed and the epoch number (`burn-dataset`'s `ShuffledDataset`). The caller's graph is not
/// modified; the trained copy comes back in inference form ([`Module::valid`]) on the
/// graph's device.
///
/// For everything else `burn-train` offers (its metrics, the terminal dashboard, file
/// checkpoints, early stopping), train the graph in a `SupervisedTraining` of your own:
/// `docs/training.md` shows how.
pub struct Trainer<'a> {
    config: TrainConfig,
    eval: Option<&'a Dataset>,
    callback: Option<ProgressCallback<'a>>,
    hook: Option<EpochHook<'a>>,
    devices: Vec<Device>,
}

/// The boxed progress callback of a [`Trainer`].
type ProgressCallback<'a> = Box<dyn FnMut(&Progress) + 'a>;

/// The boxed end-of-epoch hook of a [`Trainer`]: may replace the model being trained.
type EpochHook<'a> = Box<dyn FnMut(&EpochSummary, &Graph) -> Result<Option<Graph>, String> + 'a>;

impl std::fmt::Debug for Trainer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("config", &self.config)
            .field("eval", &self.eval.map(|d| d.len()))
            .field("callback", &self.callback.is_some())
            .field("after_epoch", &self.hook.is_some())
            .field("devices", &self.devices)
            .finish()
    }
}

impl<'a> Trainer<'a> {
    /// A trainer with the given configuration.
    pub fn new(config: TrainConfig) -> Self {
        Self {
            config,
            eval: None,
            callback: None,
            hook: None,
            devices: Vec::new(),
        }
    }

    /// Evaluates the graph on `data` at the end of every epoch (the metrics of
    /// [`evaluate`](super::evaluate), computed in `burn-train`'s validation loop).
    pub fn evaluate_on(mut self, data: &'a Dataset) -> Self {
        self.eval = Some(data);
        self
    }

    /// Calls `callback` after every step and at the end of every epoch.
    pub fn on_progress(mut self, callback: impl FnMut(&Progress) + 'a) -> Self {
        self.callback = Some(Box::new(callback));
        self
    }

    /// Trains on several devices with `burn-train`'s multi-device strategy
    /// (`ExecutionStrategy::MultiDevice`, the optimizer on the first device): every step,
    /// each device takes its own batch and the gradients are combined on the first device.
    /// With one device (or none, the default) training runs on the graph's device. The
    /// trained graph comes back on the graph's device.
    pub fn devices(mut self, devices: Vec<Device>) -> Self {
        self.devices = devices;
        self
    }

    /// Calls `hook` at the end of every epoch (after the evaluation and the progress report)
    /// with the epoch's summary and the current model in inference form. Returning
    /// `Ok(Some(graph))` continues training from `graph` (for example a pruned copy: this is
    /// how [`Pruner::gradual`](crate::prune::Pruner::gradual) prunes while training); the
    /// optimizer's state restarts because parameter shapes may have changed, while the
    /// learning-rate schedule and the data order go on. `Ok(None)` continues unchanged; an
    /// error stops training.
    pub fn after_epoch(
        mut self,
        hook: impl FnMut(&EpochSummary, &Graph) -> Result<Option<Graph>, String> + 'a,
    ) -> Self {
        self.hook = Some(Box::new(hook));
        self
    }

    /// Trains a copy of `graph` on `data`.
    ///
    /// Errors (before any training): an invalid configuration, an empty data set, samples
    /// that do not fit the graph's input, more classes than outputs. During training: a loss
    /// that is not finite, with the step number; a failure `burn-train` reports (a device
    /// error, a panic in a training step), with its message.
    pub fn fit(mut self, graph: &Graph, data: &Dataset) -> Result<Trained, TrainError> {
        let config = self.config.clone();
        config.validate()?;
        check_fit(graph, data, "training")?;
        if let Some(eval) = self.eval {
            check_fit(graph, eval, "evaluation")?;
        }
        let steps_per_epoch = config.steps_per_epoch(data.len());
        if steps_per_epoch == 0 {
            return Err(TrainError::InvalidConfig(format!(
                "with drop_last, {} samples make no batch of {}",
                data.len(),
                config.batch_size
            )));
        }
        let total_steps = steps_per_epoch * config.epochs;
        let home = graph.device().without_autodiff();
        let devices: Vec<Device> = match self.devices.as_slice() {
            [] => vec![home.clone()],
            list => list.iter().map(|d| d.clone().without_autodiff()).collect(),
        };
        for device in &devices {
            device.seed(config.seed);
            device.clone().autodiff().seed(config.seed);
        }
        let train_data = Arc::new(data.clone());
        let eval_data = Arc::new(match self.eval {
            Some(eval) => eval.clone(),
            None => data.subset(&[])?,
        });
        let mut model = graph.clone().valid();
        let mut state = LearnerState::default();
        let start = Instant::now();
        let mut history = Vec::with_capacity(config.epochs);
        let mut step = 0;
        for epoch in 0..config.epochs {
            let order_seed = config.seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let run = Launch {
                config: &config,
                devices: &devices,
                train: &train_data,
                eval: &eval_data,
                order_seed,
                epoch: epoch + 1,
            };
            let outcome = run.epoch(model, state, |loss| {
                step += 1;
                let lr = config.lr_at(epoch, step - 1, steps_per_epoch);
                if let Some(cb) = self.callback.as_mut() {
                    cb(&Progress {
                        kind: ProgressKind::Step,
                        epoch: epoch + 1,
                        epochs: config.epochs,
                        step,
                        total_steps,
                        loss,
                        lr,
                        elapsed: start.elapsed(),
                        train_accuracy: None,
                        eval: None,
                    });
                }
                (step, lr)
            })?;
            let EpochOutcome {
                model: trained,
                carried,
                loss_sum,
                correct,
                seen,
                steps,
                lr,
                eval,
            } = outcome;
            model = if trained.device() == home {
                trained
            } else {
                trained.fork(&home)
            };
            state = carried;
            let summary = EpochSummary {
                epoch: epoch + 1,
                loss: loss_sum / steps.max(1) as f64,
                train_accuracy: correct as f64 / seen.max(1) as f64,
                lr,
                elapsed: start.elapsed(),
                eval: self.eval.map(|_| eval),
            };
            if let Some(cb) = self.callback.as_mut() {
                cb(&Progress {
                    kind: ProgressKind::EpochEnd,
                    epoch: summary.epoch,
                    epochs: config.epochs,
                    step,
                    total_steps,
                    loss: summary.loss,
                    lr,
                    elapsed: summary.elapsed,
                    train_accuracy: Some(summary.train_accuracy),
                    eval: summary.eval.as_ref(),
                });
            }
            if let Some(hook) = self.hook.as_mut() {
                let epoch = summary.epoch;
                let replaced = hook(&summary, &model)
                    .map_err(|message| TrainError::Hook { epoch, message })?;
                if let Some(next) = replaced {
                    check_fit(&next, data, "training").map_err(|e| TrainError::Hook {
                        epoch,
                        message: e.to_string(),
                    })?;
                    model = next.valid();
                    // New shapes: the optimizer starts afresh, the schedule goes on.
                    state.optimizer = None;
                }
            }
            history.push(summary);
        }
        Ok(Trained {
            graph: model,
            history,
            steps: step,
            elapsed: start.elapsed(),
        })
    }
}

/// What one epoch's launch is given.
struct Launch<'c> {
    config: &'c TrainConfig,
    devices: &'c [Device],
    train: &'c Arc<Dataset>,
    eval: &'c Arc<Dataset>,
    order_seed: u64,
    /// The epoch, counted from 1.
    epoch: usize,
}

/// What one epoch's launch gives back.
struct EpochOutcome {
    model: Graph,
    carried: LearnerState,
    loss_sum: f64,
    correct: usize,
    seen: usize,
    steps: usize,
    lr: f64,
    eval: Metrics,
}

impl Launch<'_> {
    /// Runs one epoch in `burn-train` ([`launch_epoch`]), while this thread receives the steps
    /// and validation batches (`on_step(loss)` returns the step number and its learning rate).
    fn epoch(
        &self,
        model: Graph,
        carried: LearnerState,
        mut on_step: impl FnMut(f64) -> (usize, f64),
    ) -> Result<EpochOutcome, TrainError> {
        let config = self.config;
        let main = &self.devices[0];
        let train = data_loader(
            self.train,
            config.batch_size,
            config.drop_last,
            Some(self.order_seed),
            main,
        );
        let valid = data_loader(self.eval, config.eval_batch_size, false, None, main);
        let scheduler = config.scheduler(config.steps_per_epoch(self.train.len()))?;
        let mut tally = Tally::new(self.eval.num_classes(), outputs(&model));
        let learner = Learner::new(model.train(), config.optimizer.init(), scheduler);
        let (mut loss_sum, mut correct, mut seen, mut steps, mut lr) = (0.0, 0, 0, 0, config.lr);
        let mut non_finite: Option<(usize, f64, f64)> = None;
        let launched = launch_epoch(
            learner,
            carried,
            train,
            valid,
            self.devices,
            read_step,
            read_valid,
            |seen_item| match seen_item {
                Seen::Train(Event::Step {
                    loss,
                    correct: c,
                    samples,
                }) => {
                    let (step, rate) = on_step(loss);
                    lr = rate;
                    if !loss.is_finite() && non_finite.is_none() {
                        non_finite = Some((step, loss, rate));
                    }
                    loss_sum += loss;
                    correct += c;
                    seen += samples;
                    steps += 1;
                }
                Seen::Valid(Event::Valid { logits, labels }) => tally.add(&logits, &labels),
                // Each reader makes only its own kind of event.
                Seen::Train(Event::Valid { .. }) | Seen::Valid(Event::Step { .. }) => {}
            },
        )
        .map_err(|e| TrainError::Learner(e.to_string()))?;
        if let Some((step, loss, lr)) = non_finite {
            return Err(TrainError::NonFiniteLoss {
                epoch: self.epoch,
                step,
                loss,
                lr,
            });
        }
        if tally.samples() != self.eval.len() {
            return Err(TrainError::Learner(format!(
                "the validation loop saw {} of {} samples",
                tally.samples(),
                self.eval.len()
            )));
        }
        Ok(EpochOutcome {
            model: launched.model,
            carried: launched.state,
            loss_sum,
            correct,
            seen,
            steps,
            lr,
            eval: tally.metrics(),
        })
    }
}
