//! Attribution over a [`Graph`]: one recorded forward pass, then relevance propagated node by
//! node from the output to the input, with the rules of a [`Composite`].

use crate::canonize::canonize;
use crate::composite::Composite;
use crate::engine::{Hints, propagate};
use crate::error::{LrpError, Result, shape_err};
use crate::layers::{
    AffineChannels, CachedConv, ConvParamCache, concat_relevance, max_pool_relevance,
    sum_relevance_with,
};
use crate::rule::{Propagation, Rule, SharedRule};
use burn::tensor::{Int, Tensor, TensorData};
use xprune_graph::tensor_util::to_vec_int;
use xprune_graph::{Activation, Graph, Layer, NodeId, OpSpec, Recording};

/// The initial relevance at the model output.
#[derive(Clone, Debug)]
pub enum Target {
    /// One-hot at each sample's label (`[batch]` class indices).
    Labels(Tensor<1, Int>),
    /// One-hot at the same class for every sample.
    Class(usize),
    /// One-hot at each sample's highest output.
    ArgMax,
    /// The label's output value (logit) at the label, zero elsewhere.
    LabelLogits(Tensor<1, Int>),
    /// The highest output value at its class, zero elsewhere.
    ArgMaxLogits,
    /// A user tensor `[batch, outputs]` (outputs flattened for spatial model outputs).
    Custom(Tensor<2>),
}

impl Target {
    /// One-hot at the labels when given, else at the arg-max.
    pub fn labels_or_argmax(labels: Option<Tensor<1, Int>>) -> Self {
        labels.map_or(Self::ArgMax, Self::Labels)
    }
}

/// The result of an attribution.
#[derive(Clone, Debug)]
pub struct Attribution {
    /// Relevance at the input, in the input's layout.
    pub input: Activation,
    /// Relevance at every node's output, by node id (`nodes[0]` is the input). `None` for nodes
    /// the output does not depend on, or when the attributor keeps only the input.
    pub nodes: Vec<Option<Activation>>,
    /// Model outputs `[batch, outputs]`.
    pub logits: Tensor<2>,
    /// The initial relevance at the output `[batch, outputs]`.
    pub initial: Tensor<2>,
}

impl Attribution {
    /// Relevance at the output of node `id`, if kept.
    pub fn node(&self, id: NodeId) -> Option<&Activation> {
        self.nodes.get(id).and_then(|n| n.as_ref())
    }

    /// Relevance at the output of the node called `name` in `graph`.
    pub fn by_name(&self, graph: &Graph, name: &str) -> Result<Option<&Activation>> {
        Ok(self.node(graph.find(name)?))
    }

    /// Relevance of each channel of node `id` (summed over positions): `[batch, channels]`.
    pub fn channel_relevance(&self, id: NodeId) -> Option<Tensor<2>> {
        self.node(id).map(|a| a.channel_sums())
    }
}

/// Prepared attribution for one graph and composite: the (canonized) graph, each node's rule,
/// and which node outputs are known to be non-negative.
#[derive(Debug)]
pub struct Attributor {
    graph: Graph,
    rules: Vec<Option<SharedRule>>,
    nonnegative: Vec<bool>,
    /// Per convolution node, the modified weights and biases its rule needs, computed once.
    conv_params: Vec<Option<ConvParamCache>>,
    keep_nodes: bool,
}

impl Attributor {
    /// Prepares attribution of `graph` with `composite`: folds batch norms when the composite
    /// asks for it (the given graph is not modified) and resolves every node's rule.
    pub fn new(graph: &Graph, composite: &Composite) -> Result<Self> {
        let graph = if composite.canonizes() {
            canonize(graph)?
        } else {
            graph.clone()
        };
        let rules = composite.resolve(&graph)?;
        let nonnegative = nonnegative_nodes(&graph);
        let conv_params = graph
            .layers()
            .iter()
            .zip(&rules)
            .map(|(layer, rule)| match (layer, rule) {
                (Layer::Conv2d(conv), Some(rule)) => match rule.propagation() {
                    Propagation::Terms { groups, .. } => {
                        let terms: Vec<_> = groups.iter().flat_map(|g| &g.terms).collect();
                        Some(ConvParamCache::new(
                            conv,
                            terms.iter().map(|t| &t.weight),
                            terms.iter().map(|t| &t.bias),
                        ))
                    }
                    Propagation::Pass => None,
                },
                _ => None,
            })
            .collect();
        Ok(Self {
            graph,
            rules,
            nonnegative,
            conv_params,
            keep_nodes: true,
        })
    }

    /// Whether the relevance of every node is kept in the result (default), or only the
    /// input's (less memory).
    pub fn keep_nodes(mut self, keep: bool) -> Self {
        self.keep_nodes = keep;
        self
    }

    /// The graph attribution runs on (canonized if the composite asks for it; same node ids and
    /// names as the original).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The rule of each node, by node id.
    pub fn rules(&self) -> &[Option<SharedRule>] {
        &self.rules
    }

    /// Runs the model on `input` and propagates the relevance of `target` back to the input.
    pub fn attribute(&self, input: impl Into<Activation>, target: Target) -> Result<Attribution> {
        let recording = self.graph.forward_recorded(input)?;
        self.attribute_recorded(&recording, target)
    }

    /// Propagates relevance using a recorded forward pass of [`Attributor::graph`] (every node
    /// recorded, no masks).
    pub fn attribute_recorded(&self, recording: &Recording, target: Target) -> Result<Attribution> {
        let g = &self.graph;
        if recording.len() != g.len() {
            return Err(LrpError::Composite(format!(
                "the recording has {} nodes, the graph {}",
                recording.len(),
                g.len()
            )));
        }
        let value = |id: NodeId| -> Result<&Activation> {
            recording.get(id).ok_or_else(|| {
                LrpError::Composite(format!(
                    "the recording does not hold the value of node `{}`; record every node",
                    g.name(id)
                ))
            })
        };
        let output = value(g.output())?;
        let logits = output.clone().flatten();
        let initial = initial_relevance(&logits, target)?;
        let n = g.len();
        let mut rel: Vec<Option<Activation>> = vec![None; n];
        rel[g.output()] = Some(output.unflatten_like(initial.clone()));
        for id in (1..n).rev() {
            let Some(r) = (if self.keep_nodes {
                rel[id].clone()
            } else {
                rel[id].take()
            }) else {
                continue;
            };
            let info = &g.nodes()[id];
            let inputs: Vec<&Activation> = info
                .inputs
                .iter()
                .map(|&i| value(i))
                .collect::<Result<_>>()?;
            let contributions = self.node_relevance(id, &inputs, value(id)?, r)?;
            for (&i, c) in info.inputs.iter().zip(contributions) {
                rel[i] = Some(match rel[i].take() {
                    Some(acc) => acc.checked_add(c).ok_or_else(|| {
                        shape_err(
                            g.name(i),
                            "relevance from two consumers has different layouts",
                        )
                    })?,
                    None => c,
                });
            }
        }
        let input = match &rel[0] {
            Some(r) => r.clone(),
            None => value(0)?
                .clone()
                .map(|t| t.zeros_like(), |t| t.zeros_like()),
        };
        Ok(Attribution {
            input,
            nodes: rel,
            logits,
            initial,
        })
    }

    /// The relevance of each input of node `id`, given the relevance of its output.
    fn node_relevance(
        &self,
        id: NodeId,
        inputs: &[&Activation],
        output: &Activation,
        r: Activation,
    ) -> Result<Vec<Activation>> {
        let g = &self.graph;
        let name = g.name(id);
        let rule = || -> Result<&dyn Rule> {
            self.rules[id]
                .as_deref()
                .ok_or_else(|| LrpError::Composite(format!("node `{name}` has no rule")))
        };
        let nonnegative = g.nodes()[id]
            .inputs
            .first()
            .is_some_and(|&i| self.nonnegative[i]);
        let hints = |out| node_hints(out, nonnegative, name);
        let hints2 = |out| node_hints(out, nonnegative, name);
        let one = |a: Activation| Ok(vec![a]);
        match &g.layers()[id] {
            Layer::Input(_) => Ok(Vec::new()),
            Layer::Relu(_) | Layer::Dropout(_) | Layer::Identity(_) => one(r),
            Layer::Conv2d(conv) => {
                let x = spatial(inputs[0], name)?;
                let out = spatial(output, name)?.clone();
                let r = into_spatial(r, name)?;
                let r = match &self.conv_params[id] {
                    Some(cache) => {
                        let layer = CachedConv { conv, cache };
                        propagate(&layer, x, r, rule()?, hints(Some(out)))?
                    }
                    None => propagate(conv, x, r, rule()?, hints(Some(out)))?,
                };
                one(Activation::Spatial(r))
            }
            Layer::Linear(linear) => {
                let x = inputs[0].clone().flatten();
                let out = output.clone().flatten();
                let r = propagate(linear, &x, r.flatten(), rule()?, hints2(Some(out)))?;
                one(inputs[0].unflatten_like(r))
            }
            Layer::BatchNorm(bn) => {
                let affine = AffineChannels::from_batch_norm(bn);
                match (inputs[0], output) {
                    (Activation::Spatial(x), Activation::Spatial(o)) => {
                        let r = propagate(
                            &affine,
                            x,
                            into_spatial(r, name)?,
                            rule()?,
                            hints(Some(o.clone())),
                        )?;
                        one(Activation::Spatial(r))
                    }
                    (x, o) => {
                        let x = x.clone().flatten();
                        let r = propagate(
                            &affine,
                            &x,
                            r.flatten(),
                            rule()?,
                            hints2(Some(o.clone().flatten())),
                        )?;
                        one(Activation::Flat(r))
                    }
                }
            }
            Layer::AvgPool2d(pool) => {
                let x = spatial(inputs[0], name)?;
                let out = spatial(output, name)?.clone();
                let r = propagate(pool, x, into_spatial(r, name)?, rule()?, hints(Some(out)))?;
                one(Activation::Spatial(r))
            }
            Layer::AdaptiveAvgPool2d(pool) => {
                let x = spatial(inputs[0], name)?;
                let out = spatial(output, name)?.clone();
                let r = propagate(pool, x, into_spatial(r, name)?, rule()?, hints(Some(out)))?;
                one(Activation::Spatial(r))
            }
            Layer::MaxPool2d(pool) => {
                let x = spatial(inputs[0], name)?;
                one(Activation::Spatial(max_pool_relevance(
                    pool,
                    x,
                    into_spatial(r, name)?,
                    name,
                )?))
            }
            Layer::Flatten(_) => one(inputs[0].unflatten_like(r.flatten())),
            Layer::Add(_) => match output {
                Activation::Spatial(o) => {
                    let xs: Vec<Tensor<4>> = inputs
                        .iter()
                        .map(|a| spatial(a, name).cloned())
                        .collect::<Result<_>>()?;
                    let rs = sum_relevance_with(
                        &xs,
                        into_spatial(r, name)?,
                        rule()?,
                        Some(o.clone()),
                        name,
                    )?;
                    Ok(rs.into_iter().map(Activation::Spatial).collect())
                }
                Activation::Flat(o) => {
                    let xs: Vec<Tensor<2>> =
                        inputs.iter().map(|a| (*a).clone().flatten()).collect();
                    let rs = sum_relevance_with(&xs, r.flatten(), rule()?, Some(o.clone()), name)?;
                    Ok(rs.into_iter().map(Activation::Flat).collect())
                }
            },
            Layer::Concat(_) => match r {
                Activation::Spatial(r) => {
                    let xs: Vec<Tensor<4>> = inputs
                        .iter()
                        .map(|a| spatial(a, name).cloned())
                        .collect::<Result<_>>()?;
                    Ok(concat_relevance(&xs, r)?
                        .into_iter()
                        .map(Activation::Spatial)
                        .collect())
                }
                Activation::Flat(r) => {
                    let xs: Vec<Tensor<2>> =
                        inputs.iter().map(|a| (*a).clone().flatten()).collect();
                    Ok(concat_relevance(&xs, r)?
                        .into_iter()
                        .map(Activation::Flat)
                        .collect())
                }
            },
        }
    }
}

/// Runs `graph` on `input` and returns the relevance of `target` with `composite` (a one-shot
/// [`Attributor`]).
pub fn attribute(
    graph: &Graph,
    input: impl Into<Activation>,
    target: Target,
    composite: &Composite,
) -> Result<Attribution> {
    Attributor::new(graph, composite)?.attribute(input, target)
}

fn node_hints<const D: usize>(
    output: Option<Tensor<D>>,
    nonnegative_input: bool,
    name: &str,
) -> Hints<D> {
    Hints {
        output,
        nonnegative_input,
        name: Some(name.to_string()),
    }
}

fn spatial<'a>(a: &'a Activation, name: &str) -> Result<&'a Tensor<4>> {
    a.as_spatial().ok_or_else(|| {
        shape_err(
            name,
            format!(
                "expected a feature map, got a flat activation {:?}",
                a.dims()
            ),
        )
    })
}

fn into_spatial(a: Activation, name: &str) -> Result<Tensor<4>> {
    match a {
        Activation::Spatial(t) => Ok(t),
        Activation::Flat(t) => Err(shape_err(
            name,
            format!(
                "expected feature-map relevance, got a flat tensor {:?}",
                t.dims()
            ),
        )),
    }
}

/// Which node outputs are non-negative by construction (ReLU outputs, and pooling, flattening,
/// sums and concatenations of non-negative values).
fn nonnegative_nodes(graph: &Graph) -> Vec<bool> {
    let mut nonneg = vec![false; graph.len()];
    for (id, node) in graph.nodes().iter().enumerate() {
        let all_inputs = !node.inputs.is_empty() && node.inputs.iter().all(|&i| nonneg[i]);
        nonneg[id] = match node.op {
            OpSpec::Relu => true,
            OpSpec::MaxPool2d { .. }
            | OpSpec::AvgPool2d { .. }
            | OpSpec::AdaptiveAvgPool2d { .. }
            | OpSpec::Flatten
            | OpSpec::Dropout { .. }
            | OpSpec::Identity
            | OpSpec::Add
            | OpSpec::Concat => all_inputs,
            _ => false,
        };
    }
    nonneg
}

/// The initial relevance `[batch, outputs]` of a target, checking labels and shapes.
fn initial_relevance(logits: &Tensor<2>, target: Target) -> Result<Tensor<2>> {
    let [batch, classes] = logits.dims();
    let device = logits.device();
    let one_hot = |labels: &[i64]| -> Result<Tensor<2>> {
        if labels.len() != batch {
            return Err(LrpError::Target(format!(
                "{} labels for a batch of {batch} samples",
                labels.len()
            )));
        }
        let mut v = vec![0.0f32; batch * classes];
        for (i, &l) in labels.iter().enumerate() {
            if l < 0 || l as usize >= classes {
                return Err(LrpError::Target(format!(
                    "label {l} of sample {i} is out of range: the model has {classes} outputs"
                )));
            }
            v[i * classes + l as usize] = 1.0;
        }
        Ok(Tensor::from_data(
            TensorData::new(v, [batch, classes]),
            &device,
        ))
    };
    let argmax = || to_vec_int(&logits.clone().argmax(1).reshape([batch]));
    Ok(match target {
        Target::Labels(l) => one_hot(&to_vec_int(&l))?,
        Target::Class(c) => one_hot(&vec![c as i64; batch])?,
        Target::ArgMax => one_hot(&argmax())?,
        Target::LabelLogits(l) => one_hot(&to_vec_int(&l))? * logits.clone(),
        Target::ArgMaxLogits => one_hot(&argmax())? * logits.clone(),
        Target::Custom(t) => {
            if t.dims() != [batch, classes] {
                return Err(LrpError::Target(format!(
                    "custom initial relevance has shape {:?}, the model output is [{batch}, {classes}]",
                    t.dims()
                )));
            }
            t
        }
    })
}
