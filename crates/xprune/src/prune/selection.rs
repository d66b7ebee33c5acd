//! Selection: from channel scores to a [`PrunePlan`], globally or per group, for a channel
//! ratio or a MAC or parameter budget, with floors and rounding.

use super::error::{PruneError, Result};
use super::estimate::counts_after;
use crate::latency::LatencyModel;
use std::collections::BTreeMap;
use std::sync::Arc;
use xprune_criteria::Scores;
use xprune_graph::Graph;
use xprune_surgery::{ChannelGroups, GroupId, PrunePlan, ResolvedPlan, shapes_after};

/// Where channels compete for removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Scope {
    /// All prunable channels of the network are ranked together (after normalisation), and
    /// the lowest go, wherever they are.
    #[default]
    Global,
    /// Every group loses the same fraction of its channels, its lowest-scored ones.
    PerGroup,
}

/// How each group's scores are rescaled before global ranking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Normalization {
    /// Raw scores.
    #[default]
    None,
    /// Divided by the sum of absolute values of the group's scores.
    L1,
    /// Divided by the Euclidean norm of the group's scores.
    L2,
    /// Divided by the largest absolute score of the group.
    Max,
}

impl Normalization {
    /// Applies the normalisation to one group's scores (all-zero scores stay zero).
    pub fn apply(self, scores: &[f64]) -> Vec<f64> {
        let d = match self {
            Self::None => 1.0,
            Self::L1 => scores.iter().map(|s| s.abs()).sum::<f64>(),
            Self::L2 => scores.iter().map(|s| s * s).sum::<f64>().sqrt(),
            Self::Max => scores.iter().fold(0.0f64, |m, s| m.max(s.abs())),
        };
        if d > 0.0 && d.is_finite() {
            scores.iter().map(|s| s / d).collect()
        } else {
            scores.to_vec()
        }
    }
}

/// How much to remove.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PruneTarget {
    /// Remove this fraction (in `[0, 1)`) of the prunable channels (of every group with
    /// [`Scope::PerGroup`]).
    ChannelRatio(f64),
    /// Remove this many channels in total (global scope only).
    Channels(usize),
    /// Remove channels until the MACs per sample are at most this fraction (in `(0, 1]`) of
    /// the original.
    MacBudget(f64),
    /// Remove channels until the parameters are at most this fraction (in `(0, 1]`) of the
    /// original.
    ParamBudget(f64),
    /// Remove channels until the latency predicted by the selection's
    /// [`LatencyModel`](crate::LatencyModel) ([`Selection::latency_model`]) is at most this
    /// fraction (in `(0, 1]`) of the original's, every group keeping one of its efficient
    /// counts ([`LatencyModel::efficient_counts`](crate::LatencyModel::efficient_counts),
    /// hardware-aware rounding in place of `round_to`).
    LatencyBudget(f64),
}

/// How scores become a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// Global ranking or the same fraction per group.
    pub scope: Scope,
    /// Per-group normalisation of scores before ranking.
    pub normalization: Normalization,
    /// How much to remove.
    pub target: PruneTarget,
    /// Every group keeps at least this many channels (at least 1).
    pub min_channels: usize,
    /// Every pruned group keeps a multiple of this many channels (1 = no rounding); rounding
    /// removes fewer channels, never more.
    pub round_to: usize,
    /// The latency model of a [`PruneTarget::LatencyBudget`] (probed on the graph being
    /// pruned, or on the graph it was pruned from).
    pub latency: Option<Arc<LatencyModel>>,
}

impl Default for Selection {
    fn default() -> Self {
        Self {
            scope: Scope::Global,
            normalization: Normalization::None,
            target: PruneTarget::ChannelRatio(0.3),
            min_channels: 1,
            round_to: 1,
            latency: None,
        }
    }
}

impl Selection {
    /// Global selection of a channel ratio.
    pub fn ratio(ratio: f64) -> Self {
        Self {
            target: PruneTarget::ChannelRatio(ratio),
            ..Self::default()
        }
    }

    /// With a scope.
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// With a normalisation.
    pub fn normalization(mut self, normalization: Normalization) -> Self {
        self.normalization = normalization;
        self
    }

    /// With a target.
    pub fn target(mut self, target: PruneTarget) -> Self {
        self.target = target;
        self
    }

    /// With a per-group floor.
    pub fn min_channels(mut self, min: usize) -> Self {
        self.min_channels = min;
        self
    }

    /// With rounding of kept channels to a multiple of `n`.
    pub fn round_to(mut self, n: usize) -> Self {
        self.round_to = n;
        self
    }

    /// With the latency model of a [`PruneTarget::LatencyBudget`].
    pub fn latency_model(mut self, model: impl Into<Arc<LatencyModel>>) -> Self {
        self.latency = Some(model.into());
        self
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        self.validate_floors()?;
        match self.target {
            PruneTarget::ChannelRatio(r) if !(r.is_finite() && (0.0..1.0).contains(&r)) => {
                return Err(PruneError::Config(format!(
                    "channel ratio {r} must be in [0, 1)"
                )));
            }
            PruneTarget::MacBudget(b)
            | PruneTarget::ParamBudget(b)
            | PruneTarget::LatencyBudget(b)
                if !(b.is_finite() && b > 0.0 && b <= 1.0) =>
            {
                return Err(PruneError::Config(format!("budget {b} must be in (0, 1]")));
            }
            PruneTarget::LatencyBudget(_) if self.latency.is_none() => {
                return Err(PruneError::Config(
                    "a latency budget needs a latency model (Selection::latency_model, from \
                     LatencyModel::probe or LatencyModel::load)"
                        .into(),
                ));
            }
            PruneTarget::LatencyBudget(_) if self.round_to > 1 => {
                return Err(PruneError::Config(format!(
                    "round_to {} does not combine with a latency budget: the latency model \
                     chooses the kept counts",
                    self.round_to
                )));
            }
            PruneTarget::Channels(_) if self.scope == Scope::PerGroup => {
                return Err(PruneError::Config(
                    "a channel count target needs the global scope".into(),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks the floors (`min_channels`, `round_to`), which every selection uses whatever
    /// its target.
    fn validate_floors(&self) -> Result<()> {
        if self.min_channels == 0 {
            return Err(PruneError::Config(
                "min_channels must be at least 1 (a group cannot lose every channel)".into(),
            ));
        }
        if self.round_to == 0 {
            return Err(PruneError::Config("round_to must be at least 1".into()));
        }
        Ok(())
    }
}

/// One prunable group as selection sees it.
struct Candidate {
    id: GroupId,
    name: String,
    channels: usize,
    /// Channel indices from least to most important.
    order: Vec<usize>,
    /// Normalised scores by channel index.
    scores: Vec<f64>,
    /// Most channels that may go.
    room: usize,
}

fn candidates(groups: &ChannelGroups, scores: &Scores, sel: &Selection) -> Result<Vec<Candidate>> {
    scores.check_complete(groups)?;
    let mut out = Vec::new();
    for g in groups.prunable() {
        let raw = scores.get(g.id()).expect("checked complete");
        let norm = sel.normalization.apply(raw);
        let mut order: Vec<usize> = (0..g.channels()).collect();
        order.sort_by(|a, b| norm[*a].total_cmp(&norm[*b]).then(a.cmp(b)));
        let min_kept = sel.min_channels.div_ceil(sel.round_to) * sel.round_to;
        let room = g.channels().saturating_sub(min_kept);
        out.push(Candidate {
            id: g.id(),
            name: g.name().to_string(),
            channels: g.channels(),
            order,
            scores: norm,
            room,
        });
    }
    Ok(out)
}

/// Rounds a removal count down so that the kept count is a multiple of `n`.
fn rounded(channels: usize, remove: usize, n: usize) -> usize {
    let kept = channels - remove;
    let kept = kept.div_ceil(n) * n;
    channels.saturating_sub(kept.min(channels))
}

/// Relative tolerance of [`fraction_of`]: a product this close to an integer counts as it.
pub const FRACTION_TOLERANCE: f64 = 1e-9;

/// The number of channels a fraction of `channels` makes: `fraction * channels` rounded down,
/// except that a product within [`FRACTION_TOLERANCE`] (relative, at least absolute) of an
/// integer counts as that integer, so that the rounding error of the float product never
/// costs a channel (`0.29 * 100` is `28.999999999999996` and gives 29). Negative or NaN
/// products give 0; the result is at most `channels`.
pub fn fraction_of(fraction: f64, channels: usize) -> usize {
    let x = fraction * channels as f64;
    if x.is_nan() || x <= 0.0 {
        return 0;
    }
    let nearest = x.round();
    let n = if (x - nearest).abs() <= FRACTION_TOLERANCE * nearest.max(1.0) {
        nearest
    } else {
        x.floor()
    };
    (n as usize).min(channels)
}

/// Removal counts per candidate when the first `m` channels of the global order go, and how
/// many of the `m` the floors let go (before rounding).
fn global_counts(
    cands: &[Candidate],
    global: &[(usize, usize)],
    m: usize,
    round_to: usize,
) -> (Vec<usize>, usize) {
    let mut counts = vec![0usize; cands.len()];
    let mut taken = 0;
    for &(c, _) in global {
        if taken == m {
            break;
        }
        if counts[c] < cands[c].room {
            counts[c] += 1;
            taken += 1;
        }
    }
    let counts = counts
        .iter()
        .zip(cands)
        .map(|(&r, c)| rounded(c.channels, r, round_to))
        .collect();
    (counts, taken)
}

/// The error for a global target of `m` channels of which the floors let only `taken` go.
fn check_global(cands: &[Candidate], m: usize, taken: usize, sel: &Selection) -> Result<()> {
    if taken >= m {
        return Ok(());
    }
    let min_kept = sel.min_channels.div_ceil(sel.round_to) * sel.round_to;
    let closed: Vec<String> = cands
        .iter()
        .filter(|c| c.room == 0)
        .map(|c| format!("`{}` ({} channels)", c.name, c.channels))
        .collect();
    let closed = if closed.is_empty() {
        String::new()
    } else {
        format!("; no channel can go from {}", closed.join(", "))
    };
    Err(PruneError::Unreachable(format!(
        "{m} channels should go, but with every group keeping at least {min_kept} channels \
         (min_channels {}, round_to {}) only {taken} can{closed}",
        sel.min_channels, sel.round_to
    )))
}

/// Removal counts per candidate for the wanted counts `wants`, within the floors and rounded.
fn capped_counts(cands: &[Candidate], wants: &[usize], round_to: usize) -> Vec<usize> {
    cands
        .iter()
        .zip(wants)
        .map(|(c, &w)| rounded(c.channels, w.min(c.room), round_to))
        .collect()
}

fn per_group_counts(cands: &[Candidate], ratio: f64, round_to: usize) -> Vec<usize> {
    let wants: Vec<usize> = cands
        .iter()
        .map(|c| fraction_of(ratio, c.channels))
        .collect();
    capped_counts(cands, &wants, round_to)
}

/// The error for groups whose floor keeps them from losing the channels wanted of them.
fn check_floors(cands: &[Candidate], wants: &[usize], sel: &Selection) -> Result<()> {
    let short: Vec<String> = cands
        .iter()
        .zip(wants)
        .filter(|(c, w)| **w > c.room)
        .map(|(c, w)| {
            format!(
                "`{}` ({} channels) should lose {w} but can lose {}",
                c.name, c.channels, c.room
            )
        })
        .collect();
    if short.is_empty() {
        return Ok(());
    }
    Err(PruneError::Unreachable(format!(
        "every group keeps at least {} channels (min_channels {}, round_to {}): {}",
        sel.min_channels.div_ceil(sel.round_to) * sel.round_to,
        sel.min_channels,
        sel.round_to,
        short.join("; ")
    )))
}

/// The channels each candidate loses: the first `counts[c]` of its order that can go without
/// leaving any node with no channel. Nodes are shared between groups (a concatenation, or the
/// slices of a shuffled concatenation, hold channels of several), so what remains at each node
/// is tracked across the candidates, in order.
fn removals(groups: &ChannelGroups, cands: &[Candidate], counts: &[usize]) -> Vec<Vec<usize>> {
    let mut remaining: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    cands
        .iter()
        .zip(counts)
        .map(|(c, &r)| {
            let Some(group) = groups.get(c.id).filter(|_| r > 0) else {
                return Vec::new();
            };
            let holders: Vec<_> = group
                .members()
                .iter()
                .filter(|m| !m.is_consumer())
                .collect();
            let mut out = Vec::with_capacity(r);
            for &k in &c.order {
                if out.len() == r {
                    break;
                }
                let widths: Vec<(usize, usize)> = holders
                    .iter()
                    .map(|m| (m.node(), m.slot.indices(k).count()))
                    .filter(|&(_, w)| w > 0)
                    .collect();
                let fits = widths.iter().all(|&(node, w)| {
                    let left = *remaining
                        .entry(node)
                        .or_insert_with(|| groups.node_shape(node).map_or(0, |s| s.channels()));
                    w < left
                });
                if !fits {
                    continue;
                }
                for (node, w) in widths {
                    *remaining.get_mut(&node).expect("inserted above") -= w;
                }
                out.push(k);
            }
            out.sort_unstable();
            out
        })
        .collect()
}

fn plan_of(groups: &ChannelGroups, cands: &[Candidate], counts: &[usize]) -> PrunePlan {
    let mut plan = PrunePlan::new();
    for (c, removed) in cands.iter().zip(removals(groups, cands, counts)) {
        if !removed.is_empty() {
            plan.insert(c.name.as_str(), removed);
        }
    }
    plan
}

/// The validated plan of removing `counts[c]` channels from each candidate.
fn resolved(groups: &ChannelGroups, cands: &[Candidate], counts: &[usize]) -> Result<ResolvedPlan> {
    let mut plan = PrunePlan::new();
    for (c, removed) in cands.iter().zip(removals(groups, cands, counts)) {
        if !removed.is_empty() {
            plan.insert(c.id, removed);
        }
    }
    Ok(plan.resolve(groups)?)
}

fn cost(
    graph: &Graph,
    groups: &ChannelGroups,
    cands: &[Candidate],
    counts: &[usize],
    params: bool,
) -> Result<u64> {
    let (p, m) = counts_after(graph, groups, &resolved(groups, cands, counts)?);
    Ok(if params { p } else { m })
}

/// Turns scores into a plan (see [`Selection`]). The plan names groups by name, so it stays
/// valid for groups found again on the same graph.
///
/// Errors: an invalid selection ([`PruneError::Config`]), scores of another graph, and a
/// target the floors (`min_channels`, `round_to`) do not let it reach
/// ([`PruneError::Unreachable`], naming the groups that cannot lose what they should); the
/// rounding of `round_to` itself may remove fewer channels than asked, which is no error.
pub fn select(
    graph: &Graph,
    groups: &ChannelGroups,
    scores: &Scores,
    sel: &Selection,
) -> Result<PrunePlan> {
    select_with(graph, groups, scores, sel, None, true)
}

/// [`select`], or, with `per_group`, the number of channels each group (by name; missing
/// groups lose none) should lose instead of the selection's target. With `strict`, a count
/// the floors do not allow is an error; without, the group loses what the floor allows.
pub(crate) fn select_with(
    graph: &Graph,
    groups: &ChannelGroups,
    scores: &Scores,
    sel: &Selection,
    per_group: Option<&BTreeMap<String, usize>>,
    strict: bool,
) -> Result<PrunePlan> {
    match per_group {
        Some(_) => sel.validate_floors()?,
        None => sel.validate()?,
    }
    groups.check(graph)?;
    let cands = candidates(groups, scores, sel)?;
    if let Some(wants) = per_group {
        let wants: Vec<usize> = cands
            .iter()
            .map(|c| wants.get(&c.name).copied().unwrap_or(0))
            .collect();
        if strict {
            check_floors(&cands, &wants, sel)?;
        }
        let counts = capped_counts(&cands, &wants, sel.round_to);
        return Ok(plan_of(groups, &cands, &counts));
    }
    let total: usize = cands.iter().map(|c| c.channels).sum();
    // (candidate, channel, rank of the channel in its group's own order)
    let mut ranked: Vec<(usize, usize, usize)> = Vec::with_capacity(total);
    for (ci, c) in cands.iter().enumerate() {
        for (rank, &k) in c.order.iter().enumerate() {
            ranked.push((ci, k, rank));
        }
    }
    ranked.sort_by(|a, b| {
        cands[a.0].scores[a.1]
            .total_cmp(&cands[b.0].scores[b.1])
            .then(cands[a.0].id.cmp(&cands[b.0].id))
            .then(a.2.cmp(&b.2))
    });
    let global: Vec<(usize, usize)> = ranked.into_iter().map(|(c, k, _)| (c, k)).collect();
    let counts = match (sel.target, sel.scope) {
        (PruneTarget::ChannelRatio(r), Scope::Global) => {
            let m = (r * total as f64).round() as usize;
            let (counts, taken) = global_counts(&cands, &global, m, sel.round_to);
            if strict {
                check_global(&cands, m, taken, sel)?;
            }
            counts
        }
        (PruneTarget::ChannelRatio(r), Scope::PerGroup) => {
            let wants: Vec<usize> = cands.iter().map(|c| fraction_of(r, c.channels)).collect();
            if strict {
                check_floors(&cands, &wants, sel)?;
            }
            capped_counts(&cands, &wants, sel.round_to)
        }
        (PruneTarget::Channels(n), _) => {
            let (counts, taken) = global_counts(&cands, &global, n, sel.round_to);
            if strict {
                check_global(&cands, n, taken, sel)?;
            }
            counts
        }
        (PruneTarget::LatencyBudget(b), scope) => {
            let model = sel.latency.as_deref().expect("validated");
            latency_counts(graph, groups, &cands, &global, model, b, scope)?
        }
        (PruneTarget::MacBudget(b), scope) | (PruneTarget::ParamBudget(b), scope) => {
            let params = matches!(sel.target, PruneTarget::ParamBudget(_));
            let zero = vec![0; cands.len()];
            let original = cost(graph, groups, &cands, &zero, params)?;
            let budget = (b * original as f64).floor() as u64;
            if original <= budget {
                zero
            } else {
                match scope {
                    Scope::Global => {
                        let (most, _) = global_counts(&cands, &global, total, sel.round_to);
                        let least = cost(graph, groups, &cands, &most, params)?;
                        if least > budget {
                            return Err(PruneError::Unreachable(format!(
                                "removing every removable channel leaves {least} {}, the budget is {budget}",
                                if params { "parameters" } else { "MACs" }
                            )));
                        }
                        // smallest m whose cost fits the budget
                        let (mut lo, mut hi) = (0usize, total);
                        while lo < hi {
                            let mid = (lo + hi) / 2;
                            let (c, _) = global_counts(&cands, &global, mid, sel.round_to);
                            if cost(graph, groups, &cands, &c, params)? <= budget {
                                hi = mid;
                            } else {
                                lo = mid + 1;
                            }
                        }
                        global_counts(&cands, &global, lo, sel.round_to).0
                    }
                    Scope::PerGroup => {
                        let most = per_group_counts(&cands, 1.0 - 1e-12, sel.round_to);
                        if cost(graph, groups, &cands, &most, params)? > budget {
                            return Err(PruneError::Unreachable(format!(
                                "removing every removable channel of every group does not reach the {} budget {budget}",
                                if params { "parameter" } else { "MAC" }
                            )));
                        }
                        let (mut lo, mut hi) = (0.0f64, 1.0 - 1e-12);
                        for _ in 0..40 {
                            let mid = (lo + hi) / 2.0;
                            let c = per_group_counts(&cands, mid, sel.round_to);
                            if cost(graph, groups, &cands, &c, params)? <= budget {
                                hi = mid;
                            } else {
                                lo = mid;
                            }
                        }
                        per_group_counts(&cands, hi, sel.round_to)
                    }
                }
            }
        }
    };
    Ok(plan_of(groups, &cands, &counts))
}

/// The predicted latency (ms per batch) with `counts` channels removed per candidate.
fn latency_of(
    graph: &Graph,
    groups: &ChannelGroups,
    cands: &[Candidate],
    counts: &[usize],
    model: &LatencyModel,
) -> Result<f64> {
    let plan = resolved(groups, cands, counts)?;
    Ok(model.predict_shapes(graph, &shapes_after(graph, groups, &plan))?)
}

/// Removal counts for a latency budget: the smallest removal (in the global order, or the
/// smallest per-group fraction) whose predicted latency, with every group's kept count
/// rounded up to an efficient count, fits `budget` times the original's.
fn latency_counts(
    graph: &Graph,
    groups: &ChannelGroups,
    cands: &[Candidate],
    global: &[(usize, usize)],
    model: &LatencyModel,
    budget: f64,
    scope: Scope,
) -> Result<Vec<usize>> {
    let efficient = model.efficient_counts(graph, groups)?;
    // Rounds removal counts so that each group keeps an efficient count (never fewer
    // channels than asked, and no fewer than its floor allows).
    let round = |counts: Vec<usize>| -> Vec<usize> {
        cands
            .iter()
            .zip(counts)
            .map(|(c, r)| {
                let kept = c.channels - r;
                let up = efficient
                    .get(&c.name)
                    .and_then(|e| e.iter().copied().find(|&k| k >= kept))
                    .unwrap_or(c.channels);
                c.channels - up
            })
            .collect()
    };
    let zero = vec![0; cands.len()];
    let original = latency_of(graph, groups, cands, &zero, model)?;
    let goal = budget * original;
    if original <= goal {
        return Ok(zero);
    }
    let total: usize = cands.iter().map(|c| c.channels).sum();
    let at = |counts: &[usize]| latency_of(graph, groups, cands, counts, model);
    match scope {
        Scope::Global => {
            let most = round(global_counts(cands, global, total, 1).0);
            let least = at(&most)?;
            if least > goal {
                return Err(PruneError::Unreachable(format!(
                    "removing every removable channel leaves a predicted {least:.2} ms, the \
                     budget is {goal:.2} ms ({budget} of {original:.2} ms)"
                )));
            }
            let (mut lo, mut hi) = (0usize, total);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if at(&round(global_counts(cands, global, mid, 1).0))? <= goal {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            Ok(round(global_counts(cands, global, lo, 1).0))
        }
        Scope::PerGroup => {
            let most = round(per_group_counts(cands, 1.0 - 1e-12, 1));
            let least = at(&most)?;
            if least > goal {
                return Err(PruneError::Unreachable(format!(
                    "removing every removable channel of every group leaves a predicted \
                     {least:.2} ms, the budget is {goal:.2} ms ({budget} of {original:.2} ms)"
                )));
            }
            let (mut lo, mut hi) = (0.0f64, 1.0 - 1e-12);
            for _ in 0..40 {
                let mid = (lo + hi) / 2.0;
                if at(&round(per_group_counts(cands, mid, 1)))? <= goal {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            Ok(round(per_group_counts(cands, hi, 1)))
        }
    }
}
