//! Latency models: how long each layer of a graph takes on a device against its channel
//! counts, measured once by a short probe ([`LatencyModel::probe`]), saved to a file and
//! reused, and used to select channels for a latency budget
//! ([`PruneTarget::LatencyBudget`](crate::PruneTarget::LatencyBudget)).
//!
//! The probe times every node alone (in inference form, its folded layer) on random inputs (the device synchronised around each
//! run, the fastest of several) at a grid of kept channel counts, on the graph's Burn device
//! ([`DeviceTimer`]) or in any other runtime ([`LatencyModel::probe_with`] a [`LayerTimer`],
//! for example a [`RunnerTimer`] that has onnxruntime time each layer as an ONNX file): for a convolution or linear
//! layer whose input and output channels both belong to prunable groups, a grid of input by
//! output counts; for a layer whose channels follow one group (batch norm, activations,
//! depthwise convolutions, adds), a line; for a layer no group reaches, one time. Identical
//! layers (the repeated blocks of a ResNet) are timed once. The kept counts of a group of `C`
//! channels are `max(1, round(C k / P))` for `k = 1..P` ([`ProbeOptions::points`], 8 by
//! default). A model's predicted latency is the sum of its nodes' times, interpolated
//! (linearly, bilinearly on grids) at their channel counts and scaled by the ratio of the
//! dense model's measured forward time to the sum of its nodes' times (the overhead of running
//! the nodes together, [`LatencyModel::scale`]).
//!
//! Every measurement is taken in [`ProbeOptions::sweeps`] sweeps over the whole probe (2 by
//! default), keeping its fastest time, so that a slow phase of a shared machine (seconds long)
//! inflates at most one of them.
//!
//! **Hardware-aware rounding.** A group's kept count is rounded up to an *efficient* count
//! ([`LatencyModel::efficient_counts`]): one of its measured counts that is faster, by more than
//! [`EFFICIENCY_MARGIN`], than every larger measured count (with the other groups intact).
//! Keeping channels that cost no time is free accuracy; counts where the kernel is slow for
//! its size are skipped.
//!
//! A model is tied to the structure of the graph it was probed on (node names, kinds, inputs,
//! spatial sizes: [`LatencyModel::fingerprint`]), to the batch size and to the device; it
//! predicts for that graph and for every graph pruned from it (channel counts at most the
//! original ones).

mod probe;
mod runner;
#[cfg(test)]
mod tests;
mod timer;

pub use probe::ProbeOptions;
pub use runner::{RUNNER_TIMEOUT, RunnerTimer};
pub use timer::{DeviceTimer, LayerTimer};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use xprune_graph::{FeatureShape, Graph};
use xprune_surgery::{ChannelGroups, SurgeryError};

/// The version of the latency model file format.
pub const FORMAT_VERSION: u32 = 1;

/// A measured count is efficient when it is faster than every larger measured count of its
/// group by more than this fraction of the larger one's time (timing noise is smaller).
pub const EFFICIENCY_MARGIN: f64 = 0.01;

/// The largest latency model file [`LatencyModel::load`] reads.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Why a latency model could not be probed, read or used.
#[derive(Debug, thiserror::Error)]
pub enum LatencyError {
    /// A probe option is out of range.
    #[error("invalid latency probe options: {0}")]
    Config(String),
    /// The device failed (synchronisation or a layer's forward pass).
    #[error("timing node `{node}`: {message}")]
    Run {
        /// The node being timed.
        node: String,
        /// What went wrong.
        message: String,
    },
    /// The model was made for another graph, batch size or device.
    #[error("the latency model does not fit: {0}")]
    Mismatch(String),
    /// A node has more channels than the model measured.
    #[error("node `{node}` has {channels} channels where the latency model measured at most {max}")]
    OutOfRange {
        /// The node.
        node: String,
        /// Its channel count.
        channels: usize,
        /// The largest count measured.
        max: usize,
    },
    /// Groups, plans or slicing failed.
    #[error(transparent)]
    Surgery(#[from] SurgeryError),
    /// The inference form could not be made.
    #[error(transparent)]
    Inference(#[from] crate::InferenceError),
    /// The graph failed.
    #[error(transparent)]
    Graph(#[from] xprune_graph::GraphError),
    /// Reading or writing the file failed.
    #[error("latency model file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid latency model.
    #[error("latency model file {path}: {message}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Result alias of this module.
pub type Result<T, E = LatencyError> = std::result::Result<T, E>;

/// Which channel count a line of measurements follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Axis {
    /// The channels of the node's first input.
    Input,
    /// The node's output channels.
    Output,
}

/// The measured times of one node, in milliseconds per batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LatencyTable {
    /// The node's channels do not change (or it vanishes in inference form: 0 ms).
    Constant(f64),
    /// Times against one channel count (ascending counts).
    Line {
        /// The count followed.
        axis: Axis,
        /// Channel counts, ascending.
        counts: Vec<usize>,
        /// Milliseconds at each count.
        ms: Vec<f64>,
    },
    /// Times against the first input's and the output's channel counts.
    Grid {
        /// Input channel counts, ascending.
        inputs: Vec<usize>,
        /// Output channel counts, ascending.
        outputs: Vec<usize>,
        /// Milliseconds, row-major: `ms[i * outputs.len() + j]`.
        ms: Vec<f64>,
    },
}

impl LatencyTable {
    /// The time at `input` input channels and `output` output channels: linear (bilinear on
    /// grids) between measured counts, the smallest measured time below the smallest count
    /// (a conservative estimate), an error above the largest.
    pub fn at(&self, node: &str, input: usize, output: usize) -> Result<f64> {
        match self {
            Self::Constant(ms) => Ok(*ms),
            Self::Line { axis, counts, ms } => {
                let x = match axis {
                    Axis::Input => input,
                    Axis::Output => output,
                };
                let (i, w) = locate(node, counts, x)?;
                Ok(lerp(ms[i], ms[(i + 1).min(ms.len() - 1)], w))
            }
            Self::Grid {
                inputs,
                outputs,
                ms,
            } => {
                let (i, wi) = locate(node, inputs, input)?;
                let (j, wj) = locate(node, outputs, output)?;
                let n = outputs.len();
                let i1 = (i + 1).min(inputs.len() - 1);
                let j1 = (j + 1).min(n - 1);
                let low = lerp(ms[i * n + j], ms[i * n + j1], wj);
                let high = lerp(ms[i1 * n + j], ms[i1 * n + j1], wj);
                Ok(lerp(low, high, wi))
            }
        }
    }

    /// Every time the table holds, in its order (one for a constant).
    pub fn times(&self) -> &[f64] {
        match self {
            Self::Constant(ms) => std::slice::from_ref(ms),
            Self::Line { ms, .. } | Self::Grid { ms, .. } => ms,
        }
    }

    /// The same measured counts with the times `ms(input, output)` (`ms(0, 0)` for a constant):
    /// a model of known times, for tests and for what-if studies.
    pub fn with_times(&self, ms: impl Fn(usize, usize) -> f64) -> Self {
        match self {
            Self::Constant(_) => Self::Constant(ms(0, 0)),
            Self::Line { axis, counts, .. } => Self::Line {
                axis: *axis,
                counts: counts.clone(),
                ms: counts
                    .iter()
                    .map(|&c| match axis {
                        Axis::Input => ms(c, 0),
                        Axis::Output => ms(0, c),
                    })
                    .collect(),
            },
            Self::Grid {
                inputs, outputs, ..
            } => Self::Grid {
                inputs: inputs.clone(),
                outputs: outputs.clone(),
                ms: inputs
                    .iter()
                    .flat_map(|&a| outputs.iter().map(move |&b| (a, b)))
                    .map(|(a, b)| ms(a, b))
                    .collect(),
            },
        }
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let finite = |ms: &[f64]| ms.iter().all(|t| t.is_finite() && *t >= 0.0);
        let ascending =
            |c: &[usize]| !c.is_empty() && c[0] >= 1 && c.windows(2).all(|w| w[0] < w[1]);
        match self {
            Self::Constant(ms) if finite(&[*ms]) => Ok(()),
            Self::Line { counts, ms, .. }
                if ascending(counts) && counts.len() == ms.len() && finite(ms) =>
            {
                Ok(())
            }
            Self::Grid {
                inputs,
                outputs,
                ms,
            } if ascending(inputs)
                && ascending(outputs)
                && inputs.len().checked_mul(outputs.len()) == Some(ms.len())
                && finite(ms) =>
            {
                Ok(())
            }
            _ => Err("a table has unsorted counts, a wrong length or a negative time".into()),
        }
    }
}

/// The segment of `counts` holding `x` and the weight of its upper end.
fn locate(node: &str, counts: &[usize], x: usize) -> Result<(usize, f64)> {
    let max = *counts.last().expect("validated non-empty");
    if x > max {
        return Err(LatencyError::OutOfRange {
            node: node.to_string(),
            channels: x,
            max,
        });
    }
    if x <= counts[0] {
        return Ok((0, 0.0));
    }
    let i = counts.partition_point(|&c| c <= x) - 1;
    if i + 1 == counts.len() {
        return Ok((i, 0.0));
    }
    let w = (x - counts[i]) as f64 / (counts[i + 1] - counts[i]) as f64;
    Ok((i, w))
}

fn lerp(a: f64, b: f64, w: f64) -> f64 {
    a + (b - a) * w
}

/// The measured times of one node of the probed graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeLatency {
    /// The node's name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Its times.
    pub table: LatencyTable,
}

/// The kept channel counts the probe measured for one prunable group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupCounts {
    /// The group's name.
    pub name: String,
    /// Its channel count in the probed graph.
    pub channels: usize,
    /// The measured kept counts, ascending (the last is `channels`).
    pub kept: Vec<usize>,
}

/// A per-device latency model of a graph (see the module documentation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyModel {
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// What it was measured on: a Burn device's debug form, or [`LayerTimer::device`].
    pub device: String,
    /// The batch size of the measurements.
    pub batch: usize,
    /// Whether it models the inference form (batch norms folded, identities removed: those
    /// nodes take no time).
    pub inference_form: bool,
    /// [`LatencyModel::fingerprint`] of the probed graph.
    pub fingerprint: String,
    /// The measured forward time of the dense graph (of its inference form with
    /// `inference_form`), ms per batch.
    pub dense_ms: f64,
    /// The sum of the dense graph's node times, ms per batch.
    pub nodes_ms: f64,
    /// Every node's times, in node order.
    pub nodes: Vec<NodeLatency>,
    /// The measured kept counts of every prunable group.
    pub groups: Vec<GroupCounts>,
}

impl LatencyModel {
    /// The structure a model is tied to: for every node, its name, kind, inputs, layout and
    /// positions per channel (not the channel counts, which pruning changes). FNV-1a, hex.
    pub fn fingerprint(graph: &Graph) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |s: &str| {
            for b in s.bytes().chain(std::iter::once(0xff)) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for n in graph.nodes() {
            feed(&n.name);
            feed(n.op.kind_name());
            feed(&format!("{:?}", n.inputs));
            feed(n.shape.layout().name());
            feed(&n.shape.positions().to_string());
        }
        format!("{h:016x}")
    }

    /// The factor from summed node times to the measured forward time.
    pub fn scale(&self) -> f64 {
        if self.nodes_ms > 0.0 {
            self.dense_ms / self.nodes_ms
        } else {
            1.0
        }
    }

    /// Checks that the model applies to `graph` (the probed graph or one pruned from it) and
    /// to `batch`.
    pub fn check(&self, graph: &Graph) -> Result<()> {
        let fp = Self::fingerprint(graph);
        if fp != self.fingerprint || graph.len() != self.nodes.len() {
            return Err(LatencyError::Mismatch(format!(
                "it was probed on a graph of {} nodes with fingerprint {}, this graph has {} \
                 nodes and fingerprint {fp}",
                self.nodes.len(),
                self.fingerprint,
                graph.len()
            )));
        }
        Ok(())
    }

    /// The predicted forward time of `graph` (ms per batch of [`LatencyModel::batch`]).
    pub fn predict(&self, graph: &Graph) -> Result<f64> {
        let shapes: Vec<FeatureShape> = graph.nodes().iter().map(|n| n.shape).collect();
        self.predict_shapes(graph, &shapes)
    }

    /// The predicted forward time of `graph` with its nodes' output shapes replaced by
    /// `shapes` (for example [`xprune_surgery::shapes_after`] a plan).
    pub fn predict_shapes(&self, graph: &Graph, shapes: &[FeatureShape]) -> Result<f64> {
        self.check(graph)?;
        if shapes.len() != graph.len() {
            return Err(LatencyError::Mismatch(format!(
                "{} shapes for a graph of {} nodes",
                shapes.len(),
                graph.len()
            )));
        }
        let mut total = 0.0;
        for (id, (info, node)) in graph.nodes().iter().zip(&self.nodes).enumerate() {
            let input = info.inputs.first().map_or(0, |&i| shapes[i].channels());
            total += node.table.at(&node.name, input, shapes[id].channels())?;
        }
        Ok(total * self.scale())
    }

    /// The efficient kept counts of every prunable group of `groups` (found on `graph`, the
    /// probed graph or one pruned from it), by group name: the measured counts (at most the
    /// group's current size, which is always included) faster than every larger one by more
    /// than [`EFFICIENCY_MARGIN`], the other groups as they are. A group the probe did not
    /// see may keep any count.
    pub fn efficient_counts(
        &self,
        graph: &Graph,
        groups: &ChannelGroups,
    ) -> Result<BTreeMap<String, Vec<usize>>> {
        self.check(graph)?;
        let mut out = BTreeMap::new();
        for g in groups.prunable() {
            let channels = g.channels();
            let Some(measured) = self.groups.iter().find(|m| m.name == g.name()) else {
                out.insert(g.name().to_string(), (1..=channels).collect());
                continue;
            };
            let mut counts: Vec<usize> = measured
                .kept
                .iter()
                .copied()
                .filter(|&k| k < channels)
                .collect();
            counts.push(channels);
            let mut times = Vec::with_capacity(counts.len());
            for &k in &counts {
                let removed: Vec<usize> = (k..channels).collect();
                let plan = xprune_surgery::PrunePlan::new().remove(g.id(), removed);
                let resolved = plan.resolve(groups)?;
                let shapes = xprune_surgery::shapes_after(graph, groups, &resolved);
                times.push(self.predict_shapes(graph, &shapes)?);
            }
            // From the largest count down: keep a count only if it beats every larger one.
            let mut efficient = vec![channels];
            let mut best = *times.last().expect("at least the full count");
            for i in (0..counts.len() - 1).rev() {
                if times[i] < best * (1.0 - EFFICIENCY_MARGIN) {
                    efficient.push(counts[i]);
                    best = times[i];
                }
            }
            efficient.reverse();
            out.insert(g.name().to_string(), efficient);
        }
        Ok(out)
    }

    /// Writes the model as JSON.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let io = |source| LatencyError::Io {
            path: path.display().to_string(),
            source,
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| LatencyError::Format {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        std::fs::write(path, text).map_err(io)
    }

    /// Reads a model written by [`LatencyModel::save`], checking its format (at most
    /// [`MAX_FILE_BYTES`], the current [`FORMAT_VERSION`], sorted counts, finite times).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        use std::io::Read;
        let path = path.as_ref();
        let name = path.display().to_string();
        let io = |source| LatencyError::Io {
            path: name.clone(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut text = String::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(io)?;
        let format = |message: String| LatencyError::Format {
            path: name.clone(),
            message,
        };
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(format(format!("larger than {MAX_FILE_BYTES} bytes")));
        }
        let model: Self = serde_json::from_str(&text).map_err(|e| format(e.to_string()))?;
        model.validate().map_err(format)?;
        Ok(model)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.version != FORMAT_VERSION {
            return Err(format!(
                "format version {} (this xprune reads {FORMAT_VERSION})",
                self.version
            ));
        }
        if self.batch == 0 || self.nodes.is_empty() {
            return Err("no batch size or no nodes".into());
        }
        let valid = |t: f64| t.is_finite() && t >= 0.0;
        if !(valid(self.dense_ms) && valid(self.nodes_ms)) {
            return Err("the dense times are not finite".into());
        }
        for n in &self.nodes {
            n.table
                .validate()
                .map_err(|m| format!("node `{}`: {m}", n.name))?;
        }
        for g in &self.groups {
            let ok = !g.kept.is_empty()
                && g.kept[0] >= 1
                && g.kept.windows(2).all(|w| w[0] < w[1])
                && g.kept.last() == Some(&g.channels);
            if !ok {
                return Err(format!("group `{}`: bad kept counts", g.name));
            }
        }
        Ok(())
    }

    /// Loads the model at `path` if it exists and fits `graph`, `options` and the graph's
    /// device; otherwise probes it there and writes it. Returns the model and whether it was
    /// probed.
    pub fn probe_or_load(
        path: impl AsRef<Path>,
        graph: &Graph,
        groups: &ChannelGroups,
        options: &ProbeOptions,
    ) -> Result<(Self, bool)> {
        let mut timer = DeviceTimer::new(graph.device(), options);
        Self::probe_or_load_with(path, graph, groups, options, &mut timer)
    }

    /// [`LatencyModel::probe_or_load`] with `timer`: the file is reused if it fits `graph`,
    /// `options` and [`LayerTimer::device`].
    pub fn probe_or_load_with(
        path: impl AsRef<Path>,
        graph: &Graph,
        groups: &ChannelGroups,
        options: &ProbeOptions,
        timer: &mut dyn LayerTimer,
    ) -> Result<(Self, bool)> {
        let path = path.as_ref();
        if path.exists() {
            let model = Self::load(path)?;
            let fits = model.check(graph).is_ok()
                && model.batch == options.batch
                && model.inference_form == options.inference_form
                && model.device == timer.device();
            if fits {
                return Ok((model, false));
            }
        }
        let model = Self::probe_with(graph, groups, options, timer)?;
        model.save(path)?;
        Ok((model, true))
    }
}
