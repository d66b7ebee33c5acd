//! The probe: times every node of a graph alone at a grid of kept channel counts.

use super::timer::{DeviceTimer, LayerTimer};
use super::{
    Axis, FORMAT_VERSION, GroupCounts, LatencyError, LatencyModel, LatencyTable, NodeLatency,
    Result,
};
use std::collections::{BTreeSet, HashMap, HashSet};
use xprune_graph::{FeatureShape, Graph, GraphError, Layer, NodeId};
use xprune_surgery::{ChannelGroups, GroupId, NodeRemovals, PrunePlan, slice_as};

/// How a latency model is measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeOptions {
    /// Samples per batch (time grows with it; probe at the batch size you deploy).
    pub batch: usize,
    /// Untimed runs before the timed ones, per measurement.
    pub warmup: usize,
    /// Timed runs per measurement; the fastest is kept (other load on the machine only ever
    /// slows a run down, so the fastest run is the least disturbed one).
    pub reps: usize,
    /// Kept counts measured per group (from `C / points` to `C`), at least 2.
    pub points: usize,
    /// Sweeps over every measurement (and the dense forward pass), keeping each one's fastest
    /// time, 1 to 10. A shared machine has slow phases lasting seconds, longer than the runs of
    /// one measurement; a second sweep, a probe's length later, is unlikely to meet the same
    /// phase at the same point.
    pub sweeps: usize,
    /// Model the inference form ([`crate::inference_form`]): folded batch norms, identities
    /// and dropouts take no time, and the dense time is the inference form's.
    pub inference_form: bool,
    /// Seed of the random inputs.
    pub seed: u64,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            batch: 32,
            warmup: 1,
            reps: 5,
            points: 8,
            sweeps: 2,
            inference_form: false,
            seed: 0,
        }
    }
}

impl ProbeOptions {
    fn validate(&self) -> Result<()> {
        if self.batch == 0 || self.batch > 1 << 16 {
            return Err(LatencyError::Config(format!(
                "batch {} must be in 1..=65536",
                self.batch
            )));
        }
        if self.reps == 0 || self.reps > 1000 || self.warmup > 1000 {
            return Err(LatencyError::Config(format!(
                "reps {} must be in 1..=1000 and warm-up {} at most 1000",
                self.reps, self.warmup
            )));
        }
        if !(1..=10).contains(&self.sweeps) {
            return Err(LatencyError::Config(format!(
                "sweeps {} must be in 1..=10",
                self.sweeps
            )));
        }
        if !(2..=64).contains(&self.points) {
            return Err(LatencyError::Config(format!(
                "points {} must be in 2..=64",
                self.points
            )));
        }
        Ok(())
    }
}

/// The kept counts measured for a group of `channels`: `max(1, round(channels k / points))`
/// for `k = 1..=points`, one entry per `k` (small groups repeat counts).
fn kept_counts(channels: usize, points: usize) -> Vec<usize> {
    (1..=points)
        .map(|k| ((channels * k) as f64 / points as f64).round().max(1.0) as usize)
        .map(|k| k.min(channels))
        .collect()
}

/// A timer that measures each distinct layer and input shapes once per sweep and keeps the
/// fastest time of all sweeps so far.
struct Cached<'t> {
    timer: &'t mut dyn LayerTimer,
    /// Fastest time and the sweep that last measured it, by layer and input shapes.
    cache: HashMap<String, (f64, usize)>,
    sweep: usize,
}

impl Cached<'_> {
    fn time(&mut self, node: &str, layer: &Layer, shapes: &[FeatureShape]) -> Result<f64> {
        let key = format!("{:?}|{shapes:?}", layer.spec());
        let known = self.cache.get(&key).copied();
        if let Some((ms, sweep)) = known
            && sweep == self.sweep
        {
            return Ok(ms);
        }
        let ms = self.timer.time_layer(node, layer, shapes)?;
        let ms = known.map_or(ms, |(old, _)| old.min(ms));
        self.cache.insert(key, (ms, self.sweep));
        Ok(ms)
    }
}

/// The prunable groups whose channels a node's output holds.
fn output_groups(graph: &Graph, groups: &ChannelGroups) -> Vec<BTreeSet<GroupId>> {
    let mut out = vec![BTreeSet::new(); graph.len()];
    for g in groups.prunable() {
        for m in g.members().iter().filter(|m| !m.is_consumer()) {
            out[m.node()].insert(g.id());
        }
    }
    out
}

impl LatencyModel {
    /// Measures a latency model of `graph` on its device (see the module documentation).
    /// `groups` must have been found on `graph`. Takes seconds to a minute on a CPU: every
    /// distinct layer shape is run `warmup + reps` times.
    pub fn probe(graph: &Graph, groups: &ChannelGroups, options: &ProbeOptions) -> Result<Self> {
        let mut timer = DeviceTimer::new(graph.device(), options);
        Self::probe_with(graph, groups, options, &mut timer)
    }

    /// Measures a latency model of `graph` with `timer`: on another device or in another
    /// runtime ([`RunnerTimer`](super::RunnerTimer)), or with a timer of one's own.
    /// [`ProbeOptions::batch`] must be the batch the timer measures at.
    pub fn probe_with(
        graph: &Graph,
        groups: &ChannelGroups,
        options: &ProbeOptions,
        timer: &mut dyn LayerTimer,
    ) -> Result<Self> {
        options.validate()?;
        groups.check(graph)?;
        let mut timer = Cached {
            timer,
            cache: HashMap::new(),
            sweep: 0,
        };
        let (free, dense_graph) = if options.inference_form {
            let form = crate::inference_form(graph)?;
            let removed: HashSet<NodeId> = form
                .removed
                .iter()
                .map(|name| graph.find(name))
                .collect::<std::result::Result<_, GraphError>>()?;
            (removed, form.graph)
        } else {
            (HashSet::new(), graph.clone())
        };
        let kept: HashMap<GroupId, Vec<usize>> = groups
            .prunable()
            .map(|g| (g.id(), kept_counts(g.channels(), options.points)))
            .collect();
        let setup = Setup {
            graph,
            groups,
            dense_graph: &dense_graph,
            free: &free,
            kept: &kept,
            held: output_groups(graph, groups),
            options,
        };
        let mut nodes = Vec::with_capacity(graph.len());
        let mut dense_ms = f64::INFINITY;
        for sweep in 0..options.sweeps {
            timer.sweep = sweep;
            nodes.clear();
            dense_ms = dense_ms.min(timer.timer.time_graph(&dense_graph)?);
            for id in 0..graph.len() {
                nodes.push(setup.node_latency(&mut timer, id)?);
            }
        }
        let nodes_ms = nodes
            .iter()
            .zip(graph.nodes())
            .map(|(n, info)| {
                let input = info
                    .inputs
                    .first()
                    .map_or(0, |&i| graph.nodes()[i].shape.channels());
                n.table.at(&n.name, input, info.shape.channels())
            })
            .sum::<Result<f64>>()?;
        let groups = groups
            .prunable()
            .map(|g| {
                let mut k = kept[&g.id()].clone();
                k.dedup();
                GroupCounts {
                    name: g.name().to_string(),
                    channels: g.channels(),
                    kept: k,
                }
            })
            .collect();
        Ok(Self {
            version: FORMAT_VERSION,
            device: timer.timer.device(),
            batch: options.batch,
            inference_form: options.inference_form,
            fingerprint: Self::fingerprint(graph),
            dense_ms,
            nodes_ms,
            nodes,
            groups,
        })
    }
}

/// What every node's measurement needs: the probed graph, its groups, the kept counts per
/// group and the inference form.
struct Setup<'a> {
    graph: &'a Graph,
    groups: &'a ChannelGroups,
    /// The graph that runs: the inference form, or the graph itself.
    dense_graph: &'a Graph,
    /// Nodes the inference form removes (they take no time).
    free: &'a HashSet<NodeId>,
    kept: &'a HashMap<GroupId, Vec<usize>>,
    /// The prunable groups each node's output holds.
    held: Vec<BTreeSet<GroupId>>,
    options: &'a ProbeOptions,
}

impl Setup<'_> {
    /// The table of node `id`: a grid, a line or a constant, by the groups it reads and writes.
    fn node_latency(&self, timer: &mut Cached<'_>, id: NodeId) -> Result<NodeLatency> {
        let info = &self.graph.nodes()[id];
        let (name, kind) = (info.name.clone(), info.op.kind_name().to_string());
        if id == 0 || self.free.contains(&id) {
            let table = LatencyTable::Constant(0.0);
            return Ok(NodeLatency { name, kind, table });
        }
        // The layer that runs: in inference form, the folded one (a convolution with the batch
        // norm's scale and shift in its weights and bias).
        let source = match self.options.inference_form {
            true => self.dense_graph.layer(self.dense_graph.find(&info.name)?)?,
            false => self.graph.layer(id)?,
        };
        let ins: BTreeSet<GroupId> = info
            .inputs
            .iter()
            .flat_map(|&i| self.held[i].iter().copied())
            .collect();
        let outs: BTreeSet<GroupId> = self.held[id].difference(&ins).copied().collect();
        let mut measure = |i, a: &BTreeSet<GroupId>, j, b: &BTreeSet<GroupId>| {
            self.measure(timer, id, source, (i, a), (j, b))
        };
        let points = self.options.points;
        let last = points - 1;
        let none = BTreeSet::new();
        let table = match (ins.is_empty(), outs.is_empty()) {
            (true, true) => LatencyTable::Constant(measure(last, &none, last, &none)?.2),
            (false, true) | (true, false) => {
                let set = if ins.is_empty() { &outs } else { &ins };
                let measured = (0..points)
                    .map(|k| measure(k, set, last, &none))
                    .collect::<Result<Vec<_>>>()?;
                line(measured)
            }
            (false, false) => {
                let (mut inputs, mut outputs, mut ms) = (Vec::new(), Vec::new(), Vec::new());
                for i in 0..points {
                    for j in 0..points {
                        let (a, b, t) = measure(i, &ins, j, &outs)?;
                        if j == 0 {
                            inputs.push(a);
                        }
                        if i == 0 {
                            outputs.push(b);
                        }
                        ms.push(t);
                    }
                }
                grid(inputs, outputs, ms)
            }
        };
        Ok(NodeLatency { name, kind, table })
    }

    /// Times node `id` (its layer `source` sliced) with the groups of `a` at kept index `i`
    /// and those of `b` at `j`; returns (input channels, output channels, ms).
    fn measure(
        &self,
        timer: &mut Cached<'_>,
        id: NodeId,
        source: &Layer,
        (i, a): (usize, &BTreeSet<GroupId>),
        (j, b): (usize, &BTreeSet<GroupId>),
    ) -> Result<(usize, usize, f64)> {
        let mut plan = PrunePlan::new();
        for (set, k) in [(a, i), (b, j)] {
            for g in set {
                let channels = self.groups.get(*g).map_or(0, |g| g.channels());
                let keep = self.kept[g][k];
                if keep < channels {
                    plan.insert(*g, (keep..channels).collect::<Vec<_>>());
                }
            }
        }
        let resolved = plan.resolve(self.groups)?;
        let removals = NodeRemovals::new(self.graph, self.groups, &resolved);
        let shapes = removals.shapes(self.graph);
        let layer = slice_as(self.graph, &removals, id, source)?;
        let info = &self.graph.nodes()[id];
        let in_shapes: Vec<FeatureShape> = info.inputs.iter().map(|&i| shapes[i]).collect();
        let ms = timer.time(&info.name, &layer, &in_shapes)?;
        let input = in_shapes.first().map_or(0, |s| s.channels());
        Ok((input, shapes[id].channels(), ms))
    }
}

/// A line from measured points: on the output count if it varies, else on the input count;
/// repeated counts (small groups) keep their first time.
fn line(points: Vec<(usize, usize, f64)>) -> LatencyTable {
    let varies = points.windows(2).any(|w| w[0].1 != w[1].1);
    let axis = if varies { Axis::Output } else { Axis::Input };
    let mut counts: Vec<usize> = Vec::new();
    let mut ms = Vec::new();
    for (a, b, t) in points {
        let c = if varies { b } else { a };
        if counts.last().is_none_or(|&l| l < c) {
            counts.push(c);
            ms.push(t);
        }
    }
    if counts.len() == 1 {
        return LatencyTable::Constant(ms[0]);
    }
    LatencyTable::Line { axis, counts, ms }
}

/// A grid from row-major measurements, dropping repeated counts (small groups).
fn grid(inputs: Vec<usize>, outputs: Vec<usize>, ms: Vec<f64>) -> LatencyTable {
    let keep = |c: &[usize]| -> Vec<usize> {
        (0..c.len())
            .filter(|&k| k == 0 || c[k] > c[k - 1])
            .collect()
    };
    let (ri, rj) = (keep(&inputs), keep(&outputs));
    let n = outputs.len();
    let ms = ri
        .iter()
        .flat_map(|&i| rj.iter().map(move |&j| (i, j)))
        .map(|(i, j)| ms[i * n + j])
        .collect();
    LatencyTable::Grid {
        inputs: ri.iter().map(|&i| inputs[i]).collect(),
        outputs: rj.iter().map(|&j| outputs[j]).collect(),
        ms,
    }
}
