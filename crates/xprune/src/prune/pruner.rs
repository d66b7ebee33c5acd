//! The [`Pruner`]: criterion + selection + surgery, one-shot or iterative with fine-tuning.

use super::error::{PruneError, Result};
use super::selection::{PruneTarget, Scope, Selection, fraction_of, select, select_with};
use crate::train::{TrainConfig, Trained, Trainer};
use std::collections::BTreeMap;
use xprune_criteria::{Criterion, Scores, ScoringContext};
use xprune_graph::burn::tensor::Device;
use xprune_graph::{Dataset, Graph};
use xprune_surgery::GroupOptions;
use xprune_surgery::{ChannelGroups, Counts, PrunePlan, count, prune};

/// What happened in one pruning step.
#[derive(Clone, Debug)]
pub struct PruneStep {
    /// 1-based step number.
    pub step: usize,
    /// The scores of the step's graph.
    pub scores: Scores,
    /// The plan applied to the step's graph (group names and indices of that graph).
    pub plan: PrunePlan,
    /// Counts before the step.
    pub before: Counts,
    /// Counts after the step.
    pub after: Counts,
}

/// The result of a pruning procedure.
#[derive(Clone, Debug)]
pub struct PruneOutcome {
    /// The pruned (and, for iterative pruning, fine-tuned) graph.
    pub graph: Graph,
    /// Every step.
    pub steps: Vec<PruneStep>,
    /// Counts of the original graph.
    pub original: Counts,
    /// Counts of the final graph.
    pub pruned: Counts,
    /// For every group (by name) that lost channels, the removed channel indices of the
    /// original graph.
    pub removed: BTreeMap<String, Vec<usize>>,
}

impl PruneOutcome {
    /// Original MACs divided by pruned MACs.
    pub fn mac_reduction(&self) -> f64 {
        self.original.mac_ratio(&self.pruned)
    }

    /// Original parameters divided by pruned parameters.
    pub fn param_reduction(&self) -> f64 {
        self.original.param_ratio(&self.pruned)
    }

    /// The removed original channels as a plan on the original graph (by group name).
    pub fn original_plan(&self) -> PrunePlan {
        let mut plan = PrunePlan::new();
        for (name, removed) in &self.removed {
            plan.insert(name.as_str(), removed.iter().copied());
        }
        plan
    }
}

/// Progress of a pruning procedure.
#[derive(Clone, Debug)]
pub enum PruneProgress {
    /// Scoring starts for a step.
    Scoring {
        /// 1-based step.
        step: usize,
        /// Total steps.
        steps: usize,
    },
    /// Channels were removed.
    Pruned {
        /// 1-based step.
        step: usize,
        /// Total steps.
        steps: usize,
        /// Channels removed in this step.
        removed: usize,
        /// Counts after the step.
        counts: Counts,
    },
    /// The fine-tuning callback returned.
    FineTuned {
        /// 1-based step.
        step: usize,
    },
}

/// Scores channels with a criterion, selects the ones to remove, and removes them.
///
/// ```
/// # use xprune::{LrpCriterion, Pruner, Selection};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let device = xprune::burn::tensor::Device::flex();
/// # let graph = xprune::models::mlp(2, &[16, 16], 2, &device, 0)?;
/// # let reference = xprune::io::data::synthetic::moons(40, 0.1, 1)?.per_class(10, 0)?;
/// let mut pruner = Pruner::new(LrpCriterion::default()).selection(Selection::ratio(0.5));
/// let outcome = pruner.one_shot(&graph, Some(&reference))?;
/// println!("{:.2}x fewer MACs", outcome.mac_reduction());
/// # assert_eq!(outcome.removed.values().map(Vec::len).sum::<usize>(), 16);
/// # Ok(())
/// # }
/// ```
pub struct Pruner<C> {
    criterion: C,
    selection: Selection,
    pinned: Vec<String>,
    prune_normalized: bool,
    batch_size: usize,
    seed: u64,
    devices: Vec<Device>,
    progress: Option<ProgressFn>,
}

/// The boxed progress callback of a [`Pruner`].
type ProgressFn = Box<dyn FnMut(&PruneProgress)>;

impl<C: Criterion> Pruner<C> {
    /// A pruner with the default selection (global, 30% of channels).
    pub fn new(criterion: C) -> Self {
        Self {
            criterion,
            selection: Selection::default(),
            pinned: Vec::new(),
            prune_normalized: false,
            batch_size: 64,
            seed: 0,
            devices: Vec::new(),
            progress: None,
        }
    }

    /// With a selection.
    pub fn selection(mut self, selection: Selection) -> Self {
        self.selection = selection;
        self
    }

    /// Never prunes the output channels of these nodes.
    pub fn pin<S: Into<String>>(mut self, nodes: impl IntoIterator<Item = S>) -> Self {
        self.pinned.extend(nodes.into_iter().map(Into::into));
        self
    }

    /// Also prunes the channels that layer norms (and other normalisations across channels)
    /// read: ConvNeXt's and transformers' residual streams. Off by default, because removing
    /// such channels changes the normalisation of the others, so the pruned model differs
    /// from the masked one; Torch-Pruning prunes them.
    pub fn prune_normalized(mut self, allow: bool) -> Self {
        self.prune_normalized = allow;
        self
    }

    /// Samples per forward pass while scoring.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Seed of every random choice of the criterion.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Scores on these devices: the reference batches of LRP, feature relevance, gradient and
    /// Taylor, and Shapley's permutation walks, are dealt round-robin to them, each device
    /// working on its own copy of the graph in a thread of its own, and the results are
    /// combined in order (see [`ScoringContext::with_devices`]). The scores equal the
    /// single-device ones (exactly on devices of one kind, within float tolerance across
    /// kinds, such as flex with wgpu); criteria that need only the weights ignore the list.
    /// Empty (the default): the graph's device alone. Devices may differ in kind; a device
    /// may be listed twice (two workers on it).
    ///
    /// [`Pruner::gradual`] also trains on these devices, with `burn-train`'s multi-device
    /// strategy ([`Trainer::devices`]): each device takes its own batches, so the training
    /// run (unlike the scores) differs from a one-device run.
    ///
    /// ```
    /// # use xprune::{LrpCriterion, Pruner, Selection};
    /// # use xprune::burn::tensor::Device;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let device = Device::flex();
    /// # let graph = xprune::models::mlp(2, &[16, 16], 2, &device, 0)?;
    /// # let reference = xprune::io::data::synthetic::moons(40, 0.1, 1)?.per_class(10, 0)?;
    /// let one = Pruner::new(LrpCriterion::default()).batch_size(8);
    /// let two = Pruner::new(LrpCriterion::default())
    ///     .batch_size(8)
    ///     .devices(vec![device.clone(), device.clone()]);
    /// let (_, a) = one.score(&graph, Some(&reference))?;
    /// let (_, b) = two.score(&graph, Some(&reference))?;
    /// assert_eq!(a, b);
    /// # Ok(())
    /// # }
    /// ```
    pub fn devices(mut self, devices: Vec<Device>) -> Self {
        self.devices = devices;
        self
    }

    /// The devices scoring is split across (empty: the graph's device).
    pub fn current_devices(&self) -> &[Device] {
        &self.devices
    }

    /// Reports progress to `callback`.
    pub fn on_progress(mut self, callback: impl FnMut(&PruneProgress) + 'static) -> Self {
        self.progress = Some(Box::new(callback));
        self
    }

    /// The criterion.
    pub fn criterion(&self) -> &C {
        &self.criterion
    }

    /// The selection.
    pub fn current_selection(&self) -> &Selection {
        &self.selection
    }

    fn report(&mut self, p: PruneProgress) {
        if let Some(cb) = self.progress.as_mut() {
            cb(&p);
        }
    }

    /// The channel groups of `graph` with this pruner's pinned nodes and options.
    pub fn groups(&self, graph: &Graph) -> Result<ChannelGroups> {
        let options = GroupOptions::default()
            .prune_normalized(self.prune_normalized)
            .pin_names(graph, &self.pinned)?;
        Ok(ChannelGroups::with_options(graph, &options))
    }

    /// Scores the channels of `graph` on `data` (which may be `None` for weight-only
    /// criteria).
    pub fn score(&self, graph: &Graph, data: Option<&Dataset>) -> Result<(ChannelGroups, Scores)> {
        let groups = self.groups(graph)?;
        let device = graph.device();
        let mut ctx = ScoringContext::new(graph, &groups, &device)
            .with_batch_size(self.batch_size)
            .with_seed(self.seed)
            .with_devices(&self.devices);
        if let Some(d) = data {
            ctx = ctx.with_data(d);
        }
        let scores = self.criterion.score(&ctx)?;
        scores.check_complete(&groups)?;
        Ok((groups, scores))
    }

    /// Scores and selects: the plan one-shot pruning would apply.
    pub fn plan(
        &self,
        graph: &Graph,
        data: Option<&Dataset>,
    ) -> Result<(ChannelGroups, Scores, PrunePlan)> {
        let (groups, scores) = self.score(graph, data)?;
        let plan = select(graph, &groups, &scores, &self.selection)?;
        Ok((groups, scores, plan))
    }

    /// Scores once, removes the selected channels, and returns the smaller graph (no
    /// fine-tuning). The given graph is not modified.
    pub fn one_shot(&mut self, graph: &Graph, data: Option<&Dataset>) -> Result<PruneOutcome> {
        self.iterative(graph, data, 1, |g, _| Ok(g))
    }

    /// Reaches the selection's target in `steps` equal steps; every step re-scores the current
    /// graph, removes its share of channels, and hands the smaller graph to `fine_tune`
    /// (return it unchanged to skip fine-tuning). Targets are relative to the original graph:
    /// a ratio of 0.5 in 5 steps removes 10% of the original channels per step. With
    /// [`Scope::PerGroup`], step `s` brings every group to the cumulative count
    /// [`fraction_of`]`(ratio * s / steps, original channels)`, so the last step reaches
    /// exactly what one-shot pruning removes (a 10-channel group at 0.5 in 5 steps loses 5).
    /// A step whose target the floors block is an error, as in [`select`].
    pub fn iterative(
        &mut self,
        graph: &Graph,
        data: Option<&Dataset>,
        steps: usize,
        mut fine_tune: impl FnMut(Graph, &PruneStep) -> std::result::Result<Graph, String>,
    ) -> Result<PruneOutcome> {
        if steps == 0 {
            return Err(PruneError::Config(
                "iterative pruning needs at least one step".into(),
            ));
        }
        self.selection.validate()?;
        let original = count(graph);
        let groups0 = self.groups(graph)?;
        let total0: usize = groups0.prunable().map(|g| g.channels()).sum();
        // Original channel indices still present, per group name.
        let mut alive: BTreeMap<String, Vec<usize>> = groups0
            .prunable()
            .map(|g| (g.name().to_string(), (0..g.channels()).collect()))
            .collect();
        let mut current = graph.clone();
        let mut removed_so_far = 0usize;
        let mut out_steps = Vec::with_capacity(steps);
        for step in 1..=steps {
            self.report(PruneProgress::Scoring { step, steps });
            let before = count(&current);
            let frac = step as f64 / steps as f64;
            // Per group, every step aims at the cumulative fraction of the group's original
            // size, so the last step reaches the one-shot count exactly.
            let mut per_group: Option<BTreeMap<String, usize>> = None;
            let step_target = match (self.selection.target, self.selection.scope) {
                (PruneTarget::ChannelRatio(r), Scope::Global) => {
                    let goal = (r * frac * total0 as f64).round() as usize;
                    PruneTarget::Channels(goal.saturating_sub(removed_so_far))
                }
                (PruneTarget::ChannelRatio(r), Scope::PerGroup) => {
                    let fraction = if step == steps { r } else { r * frac };
                    per_group = Some(
                        groups0
                            .prunable()
                            .map(|g| {
                                let goal = fraction_of(fraction, g.channels());
                                let gone = g.channels() - alive[g.name()].len();
                                (g.name().to_string(), goal.saturating_sub(gone))
                            })
                            .collect(),
                    );
                    self.selection.target
                }
                (PruneTarget::Channels(n), _) => {
                    let goal = (n as f64 * frac).round() as usize;
                    PruneTarget::Channels(goal.saturating_sub(removed_so_far))
                }
                (PruneTarget::MacBudget(b), _) => {
                    let goal = original.macs as f64 * (1.0 - (1.0 - b) * frac);
                    PruneTarget::MacBudget((goal / before.macs.max(1) as f64).min(1.0))
                }
                (PruneTarget::ParamBudget(b), _) => {
                    let goal = original.params as f64 * (1.0 - (1.0 - b) * frac);
                    PruneTarget::ParamBudget((goal / before.params.max(1) as f64).min(1.0))
                }
                (PruneTarget::LatencyBudget(b), _) => {
                    let model = self.selection.latency.as_deref().expect("validated");
                    let first = model.predict(graph)?;
                    let now = model.predict(&current)?;
                    let goal = first * (1.0 - (1.0 - b) * frac);
                    PruneTarget::LatencyBudget((goal / now.max(f64::MIN_POSITIVE)).min(1.0))
                }
            };
            let selection = Selection {
                target: step_target,
                ..self.selection.clone()
            };
            let request = StepRequest {
                selection: &selection,
                per_group: per_group.as_ref(),
                strict: true,
            };
            let (pruned, record) = self.step(&current, data, request, step, steps, &mut alive)?;
            removed_so_far += record.plan.removed_channels();
            current = fine_tune(pruned, &record)
                .map_err(|message| PruneError::FineTune { step, message })?;
            self.report(PruneProgress::FineTuned { step });
            out_steps.push(record);
        }
        Ok(outcome(current, out_steps, original, &groups0, &alive))
    }

    /// One scoring, selection and removal step on `current`; updates `alive` (the original
    /// channel indices still present, per group name).
    fn step(
        &mut self,
        current: &Graph,
        data: Option<&Dataset>,
        request: StepRequest<'_>,
        step: usize,
        steps: usize,
        alive: &mut BTreeMap<String, Vec<usize>>,
    ) -> Result<(Graph, PruneStep)> {
        let before = count(current);
        let (groups, scores) = self.score(current, data)?;
        let plan = select_with(
            current,
            &groups,
            &scores,
            request.selection,
            request.per_group,
            request.strict,
        )?;
        let pruned = if plan.is_empty() {
            current.clone()
        } else {
            prune(current, &groups, &plan)?
        };
        let resolved = plan.resolve(&groups)?;
        for (gid, removed) in resolved.iter() {
            let name = groups
                .get(gid)
                .map(|g| g.name().to_string())
                .unwrap_or_default();
            if let Some(list) = alive.get_mut(&name) {
                let drop: Vec<usize> = removed.iter().map(|&i| list[i]).collect();
                list.retain(|i| !drop.contains(i));
            }
        }
        let after = count(&pruned);
        self.report(PruneProgress::Pruned {
            step,
            steps,
            removed: plan.removed_channels(),
            counts: after.clone(),
        });
        Ok((
            pruned,
            PruneStep {
                step,
                scores,
                plan,
                before,
                after,
            },
        ))
    }

    /// Gradual pruning while training (Aketi et al., "Feature Relevance Scores"): trains a
    /// copy of `graph` on `train_data` with `config`, and at the end of every
    /// `schedule.every`-th epoch up to epoch `schedule.until` scores the current model on
    /// `reference` (the training data when `None`) and removes the `schedule.channels`
    /// lowest-scoring channels (globally; with [`Scope::PerGroup`], the `schedule.channels`
    /// lowest of every group). The selection's floors, rounding and normalisation apply (its
    /// target does not), and an event that would cross a floor removes only what the floor
    /// allows. Training continues on the
    /// smaller model; the optimizer state restarts after each removal, the learning-rate
    /// schedule does not. Returns the pruning outcome and the training record.
    ///
    /// The caller's graph is not modified. Errors: an invalid schedule (zero period or
    /// channels, `until` beyond the last epoch), and every error of training, scoring and
    /// surgery, with the epoch.
    pub fn gradual(
        &mut self,
        graph: &Graph,
        train_data: &Dataset,
        reference: Option<&Dataset>,
        config: &TrainConfig,
        schedule: GradualSchedule,
    ) -> Result<GradualOutcome> {
        schedule.validate(config.epochs)?;
        self.selection.validate()?;
        let original = count(graph);
        let groups0 = self.groups(graph)?;
        let mut alive: BTreeMap<String, Vec<usize>> = groups0
            .prunable()
            .map(|g| (g.name().to_string(), (0..g.channels()).collect()))
            .collect();
        let steps = schedule.events();
        let selection = Selection {
            target: PruneTarget::Channels(schedule.channels),
            ..self.selection.clone()
        };
        // Per group, every event removes `schedule.channels` from each group.
        let per_group: Option<BTreeMap<String, usize>> = (self.selection.scope == Scope::PerGroup)
            .then(|| {
                alive
                    .keys()
                    .map(|name| (name.clone(), schedule.channels))
                    .collect()
            });
        let data = reference.unwrap_or(train_data);
        let mut records = Vec::new();
        let mut failure: Option<PruneError> = None;
        let trained = {
            let records = &mut records;
            let failure = &mut failure;
            let alive = &mut alive;
            let this = &mut *self;
            Trainer::new(config.clone())
                .devices(this.devices.clone())
                .after_epoch(move |summary, current| {
                    if !schedule.prunes_after(summary.epoch) {
                        return Ok(None);
                    }
                    let step = records.len() + 1;
                    this.report(PruneProgress::Scoring { step, steps });
                    // Events beyond the floors remove what the floors allow (no error).
                    let request = StepRequest {
                        selection: &selection,
                        per_group: per_group.as_ref(),
                        strict: false,
                    };
                    match this.step(current, Some(data), request, step, steps, alive) {
                        Ok((pruned, record)) => {
                            records.push(record);
                            Ok(Some(pruned))
                        }
                        Err(e) => {
                            let message = e.to_string();
                            *failure = Some(e);
                            Err(message)
                        }
                    }
                })
                .fit(graph, train_data)
        };
        let trained = match (trained, failure) {
            (_, Some(e)) => return Err(e),
            (Ok(t), None) => t,
            (Err(e), None) => return Err(PruneError::Train(e)),
        };
        let outcome = outcome(trained.graph.clone(), records, original, &groups0, &alive);
        Ok(GradualOutcome { outcome, trained })
    }
}

/// What one pruning step selects: the selection, optionally the channels per group (by name)
/// instead of its target, and whether a target the floors block is an error.
#[derive(Clone, Copy)]
struct StepRequest<'a> {
    selection: &'a Selection,
    per_group: Option<&'a BTreeMap<String, usize>>,
    strict: bool,
}

/// The final [`PruneOutcome`] from the original groups and the surviving channels.
fn outcome(
    graph: Graph,
    steps: Vec<PruneStep>,
    original: Counts,
    groups0: &ChannelGroups,
    alive: &BTreeMap<String, Vec<usize>>,
) -> PruneOutcome {
    let removed = groups0
        .prunable()
        .filter_map(|g| {
            let alive = &alive[g.name()];
            let gone: Vec<usize> = (0..g.channels()).filter(|i| !alive.contains(i)).collect();
            (!gone.is_empty()).then(|| (g.name().to_string(), gone))
        })
        .collect();
    let pruned = count(&graph);
    PruneOutcome {
        graph,
        steps,
        original,
        pruned,
        removed,
    }
}

/// When [`Pruner::gradual`] removes channels: after every `every`-th epoch up to and
/// including epoch `until`, `channels` channels at a time (the FRS paper's n, N1 and x).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GradualSchedule {
    /// Period in epochs (at least 1).
    pub every: usize,
    /// Last epoch after which channels may be removed (at least `every`, at most the
    /// number of training epochs).
    pub until: usize,
    /// Channels removed at each event (at least 1).
    pub channels: usize,
}

impl GradualSchedule {
    /// Removes `channels` channels after every `every`-th epoch up to epoch `until`.
    pub fn new(every: usize, until: usize, channels: usize) -> Self {
        Self {
            every,
            until,
            channels,
        }
    }

    /// Number of pruning events.
    pub fn events(&self) -> usize {
        self.until.checked_div(self.every).unwrap_or(0)
    }

    /// Whether channels are removed after `epoch` (counted from 1).
    pub fn prunes_after(&self, epoch: usize) -> bool {
        self.every > 0 && epoch <= self.until && epoch.is_multiple_of(self.every)
    }

    fn validate(&self, epochs: usize) -> Result<()> {
        if self.every == 0 || self.channels == 0 {
            return Err(PruneError::Config(format!(
                "gradual pruning needs a positive period and channel count (every {}, channels {})",
                self.every, self.channels
            )));
        }
        if self.until < self.every || self.until > epochs {
            return Err(PruneError::Config(format!(
                "gradual pruning until epoch {} must lie between the period {} and the {} training epochs",
                self.until, self.every, epochs
            )));
        }
        Ok(())
    }
}

/// The result of [`Pruner::gradual`]: the pruning record and the training record.
#[derive(Debug)]
pub struct GradualOutcome {
    /// The pruned and trained graph, every pruning event, the counts and removed channels.
    pub outcome: PruneOutcome,
    /// The training history (per-epoch loss, accuracy, evaluation) and time.
    pub trained: Trained,
}
