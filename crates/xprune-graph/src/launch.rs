//! One epoch of `burn-train`'s `SupervisedTraining` for any `LearnerModel`, as xprune's
//! training loops use it: silent (no renderer output, no files), on one device or several
//! (`burn-train`'s multi-device strategy), with every training step's and validation batch's
//! output read on `burn-train`'s metric thread and handed, in order, to a callback on the
//! calling thread, and with the optimizer's and the scheduler's state returned so that the
//! next epoch's launch continues where this one stopped (through `burn-train`'s checkpointer
//! interface, kept in memory).
//!
//! Launching one epoch at a time lets a loop change the model between epochs (gradual
//! pruning replaces it by a pruned copy; ISP widens its mask distribution) while every step
//! runs in Burn's `Learner`.

use burn::data::dataloader::DataLoader;
use burn::optim::OptimizerRecord;
use burn::optim::lr_scheduler::LrSchedulerRecord;
use burn::store::ModuleRecord;
use burn::tensor::{Device, TensorReadError};
use burn_train::checkpoint::{
    Checkpoint, Checkpointer, CheckpointerError, CheckpointingAction, CheckpointingStrategy,
};
use burn_train::logger::{EvaluationProgressLogger, InMemoryMetricLogger, TrainingProgressLogger};
use burn_train::metric::SerializedEntry;
use burn_train::metric::store::EventStoreClient;
use burn_train::metric::{Adaptor, Metric, MetricDefinition, MetricMetadata, MetricName};
use burn_train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use burn_train::{
    ExecutionStrategy, InferenceStep, Interrupter, Learner, LearnerModel, MultiDeviceOptim,
    SupervisedTraining, TrainStep,
};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};

/// The state a `Learner` carries from one launch to the next: the optimizer's record
/// (momentum, Adam's moments) and the learning-rate scheduler's. `None` starts afresh.
#[derive(Default)]
pub struct LearnerState {
    /// The optimizer's state.
    pub optimizer: Option<OptimizerRecord>,
    /// The learning-rate scheduler's state.
    pub scheduler: Option<LrSchedulerRecord>,
}

impl std::fmt::Debug for LearnerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LearnerState")
            .field("optimizer", &self.optimizer.is_some())
            .field("scheduler", &self.scheduler.is_some())
            .finish()
    }
}

/// What one launch read, in the order `burn-train` processed it.
#[derive(Debug)]
pub enum Seen<E> {
    /// A training step's output, as the training reader gave it.
    Train(E),
    /// A validation batch's output, as the validation reader gave it.
    Valid(E),
}

/// Reads what the caller needs from a step's output on `burn-train`'s metric thread; `true`
/// in the answer stops training after this step (a loss that is not finite, say).
pub type Reader<T, E> = fn(&T) -> Result<(E, bool), TensorReadError>;

/// Why a launch failed.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// A training or validation step panicked (a batch that does not fit the model, say).
    #[error("training panicked: {0}")]
    Panicked(String),
    /// `burn-train` stopped on an error (a device failure, a metric that could not read).
    #[error("burn-train stopped on an error: {0}")]
    Failed(String),
}

/// What a launch gives back: the trained model in inference form (on the first device) and
/// the state to continue from.
pub struct Launched<M> {
    /// The model after the epoch, `valid()`.
    pub model: M,
    /// The optimizer's and scheduler's state after the epoch.
    pub state: LearnerState,
    /// Whether a reader asked to stop.
    pub stopped: bool,
}

/// Runs one epoch of `SupervisedTraining` on `learner` (its optimizer and scheduler state
/// restored from `state`), on `devices` (one: that device; several: `burn-train`'s
/// multi-device strategy with the optimizer on the first), in a thread of its own. Every
/// training step's output goes through `read_train`, every validation batch's through
/// `read_valid`, and the results reach `on_seen` on the calling thread in order, while the
/// epoch runs. Nothing is written to disk and nothing is printed.
///
/// Errors: a panic in a step, or an error `burn-train` reports.
///
/// # Panics
///
/// If `devices` is empty.
pub fn launch_epoch<M, TI, VI, E>(
    mut learner: Learner<M>,
    state: LearnerState,
    train: Arc<dyn DataLoader<<M as TrainStep>::Input>>,
    valid: Arc<dyn DataLoader<<M as InferenceStep>::Input>>,
    devices: &[Device],
    read_train: Reader<TI, E>,
    read_valid: Reader<VI, E>,
    mut on_seen: impl FnMut(Seen<E>),
) -> Result<Launched<M>, LaunchError>
where
    M: LearnerModel + Send,
    <M as TrainStep>::Output: Adaptor<TI>,
    <M as InferenceStep>::Output: Adaptor<VI>,
    TI: 'static,
    VI: 'static,
    E: Send + 'static,
{
    assert!(!devices.is_empty(), "a launch needs a device");
    let strategy = match devices {
        [one] => ExecutionStrategy::SingleDevice(one.clone()),
        many => ExecutionStrategy::MultiDevice(many.to_vec(), MultiDeviceOptim::OptimMainDevice),
    };
    if let Some(record) = state.optimizer {
        learner.load_optim(record);
    }
    if let Some(record) = state.scheduler {
        learner.load_scheduler(record);
    }
    let kept_model = Kept::<ModuleRecord>::default();
    let kept_optimizer = Kept::<OptimizerRecord>::default();
    let kept_scheduler = Kept::<LrSchedulerRecord>::default();
    let (kept_o, kept_s) = (kept_optimizer.clone(), kept_scheduler.clone());
    let (sender, events) = mpsc::channel::<Message<E>>();
    let stop = Interrupter::new();
    let stopped = stop.clone();
    let result = std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            // The directory is never written: no file logger, checkpointer or summary.
            let training = SupervisedTraining::<M>::new(
                std::env::temp_dir().join("xprune-launch-unused"),
                train,
                valid,
            )
            .num_epochs(1)
            .with_interrupter(stop.clone())
            .with_application_logger(None)
            .with_metric_logger(InMemoryMetricLogger::default())
            .renderer(Box::new(Silent))
            .with_custom_checkpointers(kept_model, kept_o, kept_s)
            .with_checkpointing_strategy(EveryEpoch)
            .with_training_strategy(strategy.into())
            .metric_train(Read {
                name: Arc::new("xprune training steps".into()),
                read: read_train,
                train: true,
                events: sender.clone(),
                stop: stop.clone(),
            })
            .metric_valid(Read {
                name: Arc::new("xprune validation batches".into()),
                read: read_valid,
                train: false,
                events: sender.clone(),
                stop,
            });
            let result = training.launch(learner);
            let _ = sender.send(Message::Done);
            result
        });
        for message in events.iter() {
            match message {
                Message::Seen(seen) => on_seen(seen),
                Message::Done => break,
            }
        }
        worker.join()
    });
    let result = result.map_err(|panic| LaunchError::Panicked(panic_message(panic.as_ref())))?;
    if let Some(error) = result.error {
        return Err(LaunchError::Failed(error.to_string()));
    }
    Ok(Launched {
        model: result.model,
        state: LearnerState {
            optimizer: kept_optimizer.take(),
            scheduler: kept_scheduler.take(),
        },
        stopped: stopped.should_stop(),
    })
}

/// The message of a panic payload.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_string(),
        (_, Some(s)) => s.clone(),
        _ => "(no message)".into(),
    }
}

/// What the metric thread sends to the calling thread.
enum Message<E> {
    Seen(Seen<E>),
    Done,
}

/// The `burn-train` metric that applies a [`Reader`] and sends its result.
struct Read<T, E> {
    name: MetricName,
    read: Reader<T, E>,
    train: bool,
    events: Sender<Message<E>>,
    stop: Interrupter,
}

impl<T, E> Clone for Read<T, E> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            read: self.read,
            train: self.train,
            events: self.events.clone(),
            stop: self.stop.clone(),
        }
    }
}

impl<T: 'static, E: Send + 'static> Metric for Read<T, E> {
    type Input = T;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn update(
        &mut self,
        item: &T,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let (value, stop) = (self.read)(item)?;
        if stop {
            self.stop.stop(Some("a reader asked to stop"));
        }
        let seen = if self.train {
            Seen::Train(value)
        } else {
            Seen::Valid(value)
        };
        // The receiver only goes away when the launch already failed.
        let _ = self.events.send(Message::Seen(seen));
        Ok(SerializedEntry::not_available(None))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(SerializedEntry::not_available(None))
    }

    fn clear(&mut self) {}
}

/// A renderer that shows nothing.
struct Silent;

impl MetricsRendererTraining for Silent {
    fn update_train(&mut self, _state: MetricState) {}
    fn update_valid(&mut self, _state: MetricState) {}
}

impl MetricsRendererEvaluation for Silent {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}
}

impl TrainingProgressLogger for Silent {
    fn start(&mut self, _: usize, _: usize, _: Option<usize>, _: Option<&str>) {}
    fn update_epoch(&mut self, _epoch: usize) {}
    fn start_split(&mut self, _split: &str, _total_items: usize) {}
    fn update_split(&mut self, _items_processed: usize) {}
    fn end_split(&mut self) {}
    fn end(&mut self) {}
    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for Silent {
    fn start_global_progress(&mut self, _total_tests: usize) {}
    fn start_test(&mut self, _name: &str, _total_items: usize) {}
    fn update_test_progress(&mut self, _items_processed: usize) {}
    fn end_test(&mut self) {}
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for Silent {
    fn manual_close(&mut self) {}
    fn register_metric(&mut self, _definition: MetricDefinition) {}
}

/// A checkpointer that keeps the last saved record in memory.
struct Kept<R>(Arc<Mutex<Option<R>>>);

impl<R> Clone for Kept<R> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<R> Default for Kept<R> {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(None)))
    }
}

impl<R> Kept<R> {
    fn take(&self) -> Option<R> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl<R: Checkpoint> Checkpointer<R> for Kept<R> {
    fn save(&self, _epoch: usize, record: R) -> Result<(), CheckpointerError> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(record);
        Ok(())
    }

    fn delete(&self, _epoch: usize) -> Result<(), CheckpointerError> {
        Ok(())
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        self.take()
            .ok_or_else(|| CheckpointerError::Unknown(format!("no record of epoch {epoch}")))
    }
}

/// Saves after every epoch (the [`Kept`] checkpointers overwrite).
struct EveryEpoch;

impl CheckpointingStrategy for EveryEpoch {
    fn checkpointing(
        &mut self,
        _epoch: usize,
        _store: &EventStoreClient,
    ) -> Vec<CheckpointingAction> {
        vec![CheckpointingAction::Save]
    }
}
