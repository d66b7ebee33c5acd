//! [`Trainer`]: the cross-entropy training loop.

use super::config::TrainConfig;
use super::error::TrainError;
use super::metrics::{Metrics, check_fit, evaluate, fit_input};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use std::time::{Duration, Instant};
use xprune_graph::{Dataset, Graph};

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
/// Training runs on the autodiff version of the graph's device, in training mode (batch norm
/// uses and updates batch statistics, dropout is active). Each epoch visits the samples in
/// an order drawn from the seed and the epoch number. The caller's graph is not modified;
/// the trained copy comes back in inference form ([`Module::valid`]).
pub struct Trainer<'a> {
    config: TrainConfig,
    eval: Option<&'a Dataset>,
    callback: Option<ProgressCallback<'a>>,
    hook: Option<EpochHook<'a>>,
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
        }
    }

    /// Evaluates the graph on `data` at the end of every epoch (see [`evaluate`]).
    pub fn evaluate_on(mut self, data: &'a Dataset) -> Self {
        self.eval = Some(data);
        self
    }

    /// Calls `callback` after every step and at the end of every epoch.
    pub fn on_progress(mut self, callback: impl FnMut(&Progress) + 'a) -> Self {
        self.callback = Some(Box::new(callback));
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
    /// that is not finite, with the step number.
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
        let device = graph.device().without_autodiff();
        let ad = device.clone().autodiff();
        device.seed(config.seed);
        ad.seed(config.seed);

        let mut model = graph.clone().train();
        let mut optim = config.optimizer.init();
        let loss_fn = CrossEntropyLossConfig::new().init(&ad);
        let start = Instant::now();
        let mut history = Vec::with_capacity(config.epochs);
        let mut step = 0;
        for epoch in 0..config.epochs {
            let order_seed = config.seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let batches = data.shuffled_batch_indices(config.batch_size, order_seed);
            let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0i64, 0usize);
            let mut lr = config.lr;
            for idx in batches.into_iter().take(steps_per_epoch) {
                lr = config.lr_at(epoch, step, steps_per_epoch);
                let batch = data.batch(&idx, &ad)?;
                let logits = model
                    .forward_train(fit_input(batch.inputs, &model))?
                    .flatten();
                let loss = loss_fn.forward(logits.clone(), batch.labels.clone());
                let value = loss.clone().into_scalar::<f32>() as f64;
                step += 1;
                if !value.is_finite() {
                    return Err(TrainError::NonFiniteLoss {
                        epoch: epoch + 1,
                        step,
                        loss: value,
                        lr,
                    });
                }
                let [b, _] = logits.dims();
                correct += logits
                    .detach()
                    .argmax(1)
                    .reshape([b])
                    .equal(batch.labels)
                    .int()
                    .sum()
                    .into_scalar::<i64>();
                seen += b;
                loss_sum += value;
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(lr, model, grads);
                if let Some(cb) = self.callback.as_mut() {
                    cb(&Progress {
                        kind: ProgressKind::Step,
                        epoch: epoch + 1,
                        epochs: config.epochs,
                        step,
                        total_steps,
                        loss: value,
                        lr,
                        elapsed: start.elapsed(),
                        train_accuracy: None,
                        eval: None,
                    });
                }
            }
            let eval = match self.eval {
                Some(eval) => Some(evaluate(&model.valid(), eval, config.eval_batch_size)?),
                None => None,
            };
            let summary = EpochSummary {
                epoch: epoch + 1,
                loss: loss_sum / steps_per_epoch as f64,
                train_accuracy: correct as f64 / seen.max(1) as f64,
                lr,
                elapsed: start.elapsed(),
                eval,
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
                let current = model.clone().valid();
                let replaced = hook(&summary, &current)
                    .map_err(|message| TrainError::Hook { epoch, message })?;
                if let Some(next) = replaced {
                    check_fit(&next, data, "training").map_err(|e| TrainError::Hook {
                        epoch,
                        message: e.to_string(),
                    })?;
                    model = next.train();
                    optim = config.optimizer.init();
                }
            }
            history.push(summary);
        }
        Ok(Trained {
            graph: model.valid(),
            history,
            steps: step,
            elapsed: start.elapsed(),
        })
    }
}
