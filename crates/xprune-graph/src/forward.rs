//! Running a [`Graph`]: plain, recorded, masked, and resumed from cached activations.

use crate::activation::Activation;
use crate::error::{GraphError, Result};
use crate::graph::{Graph, NodeId};
use crate::mask::ChannelMasks;
use burn::tensor::Tensor;

/// Whether layers behave as in training (batch statistics, dropout) or in inference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Inference: batch norm uses running statistics, dropout is off.
    #[default]
    Eval,
    /// Training: batch norm uses batch statistics (and updates running ones on an autodiff
    /// device), dropout is on.
    Train,
}

/// The values computed by a run, by node id.
///
/// Unless the run was asked to record, only the output is kept.
#[derive(Clone, Debug)]
pub struct Recording {
    values: Vec<Option<Activation>>,
    output: NodeId,
}

impl Recording {
    /// The value of a node, if it was kept.
    pub fn get(&self, id: NodeId) -> Option<&Activation> {
        self.values.get(id).and_then(|v| v.as_ref())
    }

    /// Takes the value of a node out of the recording.
    pub fn take(&mut self, id: NodeId) -> Option<Activation> {
        self.values.get_mut(id).and_then(|v| v.take())
    }

    /// The value of the graph's output node.
    pub fn output(&self) -> &Activation {
        self.values[self.output]
            .as_ref()
            .expect("a completed run keeps its output")
    }

    /// Consumes the recording and returns the output value.
    pub fn into_output(mut self) -> Activation {
        self.values[self.output]
            .take()
            .expect("a completed run keeps its output")
    }

    /// All values by node id (`None` where a value was not kept or not computed).
    pub fn values(&self) -> &[Option<Activation>] {
        &self.values
    }

    /// Number of node slots (the number of nodes of the graph).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the recording has no slots.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// A function applied to every node's output during a run (after its mask), for example to
/// attach autodiff probes to intermediate values.
pub type OutputHook<'a> = &'a mut dyn FnMut(NodeId, Activation) -> Activation;

/// A configured execution of a graph; create it with [`Graph::run`] or [`Graph::resume`],
/// then call [`Run::execute`].
pub struct Run<'a> {
    graph: &'a Graph,
    input: Option<Activation>,
    cached: Option<(&'a Recording, NodeId)>,
    repeat: usize,
    masks: Option<&'a ChannelMasks>,
    mode: Mode,
    record: bool,
    until: Option<NodeId>,
    hook: Option<OutputHook<'a>>,
}

impl std::fmt::Debug for Run<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("resume", &self.cached.map(|(_, start)| start))
            .field("repeat", &self.repeat)
            .field("masks", &self.masks.map(|m| m.len()))
            .field("mode", &self.mode)
            .field("record", &self.record)
            .field("until", &self.until)
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

impl<'a> Run<'a> {
    /// Applies `hook` to every computed node output (after its mask; node 0 included when the
    /// run starts from an input). The hook must keep the value's shape.
    pub fn hook(mut self, hook: OutputHook<'a>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Multiplies node outputs by channel masks (see [`ChannelMasks`]).
    pub fn masks(mut self, masks: &'a ChannelMasks) -> Self {
        self.masks = Some(masks);
        self
    }

    /// Runs in training mode (batch statistics, dropout).
    pub fn train(mut self) -> Self {
        self.mode = Mode::Train;
        self
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Keeps every node's value in the returned [`Recording`].
    pub fn record(mut self) -> Self {
        self.record = true;
        self
    }

    /// When resuming, tiles the cached batch `times` times along the batch dimension, so that
    /// per-sample masks of `times * batch` rows can evaluate many variants in one pass.
    pub fn repeat(mut self, times: usize) -> Self {
        self.repeat = times.max(1);
        self
    }

    /// Stops after computing node `id` (and keeps its value).
    pub fn until(mut self, id: NodeId) -> Self {
        self.until = Some(id);
        self
    }

    /// Runs the graph.
    pub fn execute(mut self) -> Result<Recording> {
        let g = self.graph;
        let n = g.len();
        let stop = self.until.unwrap_or(n - 1);
        if stop >= n {
            return Err(GraphError::InvalidNodeId { id: stop, len: n });
        }
        let keep_until = self.until;
        let mut values: Vec<Option<Activation>> = vec![None; n];
        let resumed = self.input.is_none();
        let start = match (self.input.take(), self.cached) {
            (Some(input), _) => {
                let dims = input.dims();
                let want = g.input_shape();
                let fits = dims[0] > 0
                    && crate::FeatureShape::from_batch_dims_in(&dims, want.layout()) == Some(want);
                let Some(input) = input.with_layout(want.layout()).filter(|_| fits) else {
                    return Err(GraphError::InputShape {
                        expected: want.to_string(),
                        found: dims,
                    });
                };
                let batch = dims[0];
                let v = self.apply_mask(0, input, batch)?;
                values[0] = Some(self.apply_hook(0, v)?);
                1
            }
            (None, Some((cache, start))) => {
                if start == 0 || start > n {
                    return Err(GraphError::Execution(format!(
                        "resume start node {start} must be in 1..={}",
                        n - 1
                    )));
                }
                let last_use = g.last_use();
                for id in 0..start {
                    let needed = last_use[id] >= start || id == stop;
                    if needed {
                        let v = cache.get(id).ok_or_else(|| {
                            GraphError::Execution(format!(
                                "resuming at node `{}` needs the value of node `{}`, which the recording does not hold",
                                g.name(start),
                                g.name(id)
                            ))
                        })?;
                        values[id] = Some(v.repeat_batch(self.repeat));
                    }
                }
                start
            }
            (None, None) => unreachable!("a run has an input or a cache"),
        };
        let batch = values
            .iter()
            .flatten()
            .next()
            .map(|v| v.batch())
            .unwrap_or(0);
        if resumed {
            // Cached values are unmasked outputs: masks of nodes before `start` apply to them.
            for id in 0..start {
                if let Some(v) = values[id].take() {
                    values[id] = Some(self.apply_mask(id, v, batch)?);
                }
            }
        }
        let training = self.mode == Mode::Train;
        let last_use = g.last_use();
        for id in start..=stop {
            let info = &g.topology.nodes[id];
            let inputs: Vec<Activation> = info
                .inputs
                .iter()
                .map(|&i| {
                    values[i].clone().ok_or_else(|| {
                        GraphError::Execution(format!(
                            "node `{}` needs the value of node `{}`, which is not available",
                            info.name,
                            g.name(i)
                        ))
                    })
                })
                .collect::<Result<_>>()?;
            let out = g.layers[id]
                .forward(inputs, training)
                .map_err(|e| GraphError::Execution(format!("node `{}`: {e}", info.name)))?;
            let out = self.apply_mask(id, out, batch)?;
            values[id] = Some(self.apply_hook(id, out)?);
            if !self.record {
                for &i in &info.inputs {
                    if last_use[i] == id && Some(i) != keep_until {
                        values[i] = None;
                    }
                }
            }
        }
        let output = if self.until.is_some() {
            stop
        } else {
            g.output()
        };
        Ok(Recording { values, output })
    }

    fn apply_hook(&mut self, id: NodeId, value: Activation) -> Result<Activation> {
        let Some(hook) = self.hook.as_mut() else {
            return Ok(value);
        };
        let dims = value.dims();
        let out = hook(id, value);
        if out.dims() != dims {
            return Err(GraphError::Execution(format!(
                "the output hook changed the shape of node `{}` from {dims:?} to {:?}",
                self.graph.name(id),
                out.dims()
            )));
        }
        Ok(out)
    }

    fn apply_mask(&self, id: NodeId, value: Activation, batch: usize) -> Result<Activation> {
        let Some(mask) = self.masks.and_then(|m| m.get(id)) else {
            return Ok(value);
        };
        let [rows, channels] = mask.dims();
        let expected = self.graph.topology.nodes[id].shape.channels();
        if channels != expected {
            return Err(GraphError::Mask {
                node: self.graph.name(id).to_string(),
                message: format!("mask has {channels} channels, the node has {expected}"),
            });
        }
        if rows != 1 && rows != batch {
            return Err(GraphError::Mask {
                node: self.graph.name(id).to_string(),
                message: format!("mask has {rows} rows; it needs 1 or one per sample ({batch})"),
            });
        }
        Ok(value.scale_channels(mask.clone()))
    }
}

impl Graph {
    /// Prepares a run on an input batch (`[batch, features]` or `[batch, C, H, W]`).
    pub fn run(&self, input: impl Into<Activation>) -> Run<'_> {
        Run {
            graph: self,
            input: Some(input.into()),
            cached: None,
            repeat: 1,
            masks: None,
            mode: Mode::Eval,
            record: false,
            until: None,
            hook: None,
        }
    }

    /// Prepares a run that takes the values of nodes before `start` from `cached` (a recorded
    /// run) and computes only nodes `start..`. With [`Run::repeat`] and per-sample masks this
    /// evaluates many masked variants of the suffix in one batched pass. Masks of nodes before
    /// `start` are applied to their cached (tiled) values, so a node's mask can take effect
    /// without recomputing the node: resume at the node after it.
    pub fn resume<'a>(&'a self, cached: &'a Recording, start: NodeId) -> Run<'a> {
        Run {
            graph: self,
            input: None,
            cached: Some((cached, start)),
            repeat: 1,
            masks: None,
            mode: Mode::Eval,
            record: false,
            until: None,
            hook: None,
        }
    }

    /// Inference forward pass; returns the output node's value.
    pub fn forward(&self, input: impl Into<Activation>) -> Result<Activation> {
        Ok(self.run(input).execute()?.into_output())
    }

    /// Training-mode forward pass (batch statistics, dropout).
    pub fn forward_train(&self, input: impl Into<Activation>) -> Result<Activation> {
        Ok(self.run(input).train().execute()?.into_output())
    }

    /// Inference forward pass keeping every node's value.
    pub fn forward_recorded(&self, input: impl Into<Activation>) -> Result<Recording> {
        self.run(input).record().execute()
    }

    /// Inference forward pass with node outputs multiplied by channel masks.
    pub fn forward_masked(
        &self,
        input: impl Into<Activation>,
        masks: &ChannelMasks,
    ) -> Result<Activation> {
        Ok(self.run(input).masks(masks).execute()?.into_output())
    }

    /// Inference forward pass returning the output as `[batch, outputs]` (feature maps are
    /// flattened).
    pub fn logits(&self, input: impl Into<Activation>) -> Result<Tensor<2>> {
        Ok(self.forward(input)?.flatten())
    }
}
