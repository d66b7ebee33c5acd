//! Attribution over a [`Graph`]: one recorded forward pass, then relevance propagated node by
//! node from the output to the input, with the rules of a [`Composite`].

use crate::canonize::canonize;
use crate::composite::Composite;
use crate::engine::{Hints, modified_params, propagate, sum_relevance};
use crate::error::{LrpError, Result, shape_err};
use crate::rule::{Rule, SharedRule};
use burn::tensor::{Int, Tensor, TensorData};
use xprune_graph::kind::{AttentionRule, Modified};
use xprune_graph::tensor_util::to_vec_int;
use xprune_graph::{Activation, Graph, LrpView, NodeId, Recording};

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
    /// Per node with a linear view, the modified parameters of every term of its rule,
    /// computed once (the graph's parameters do not change between batches).
    params: Vec<Option<Vec<Modified>>>,
    keep_nodes: bool,
    /// The composite's rule for attention nodes and the stabiliser of its divisions.
    attention: AttentionRule,
    attention_epsilon: f32,
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
        let params = graph
            .layers()
            .iter()
            .zip(&rules)
            .map(|(layer, rule)| match (layer.lrp(), rule) {
                (LrpView::Linear { map, .. }, Some(rule)) => Some(modified_params(&*map, &**rule)),
                // Only linear maps with a rule have modified parameters; listed in full so a
                // new view must decide.
                (LrpView::Linear { .. }, None)
                | (
                    LrpView::Source
                    | LrpView::Pass
                    | LrpView::Sum
                    | LrpView::Redistribute(_)
                    | LrpView::Attention(_),
                    _,
                ) => None,
            })
            .collect();
        Ok(Self {
            graph,
            rules,
            nonnegative,
            params,
            keep_nodes: true,
            attention: composite.attention_rule(),
            attention_epsilon: composite.attention_epsilon(),
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
                let Some(c) = c else { continue };
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
            None => value(0)?.zeros_like(),
        };
        Ok(Attribution {
            input,
            nodes: rel,
            logits,
            initial,
        })
    }

    /// The relevance of each input of node `id`, given the relevance of its output (`None`
    /// for inputs that receive none).
    fn node_relevance(
        &self,
        id: NodeId,
        inputs: &[&Activation],
        output: &Activation,
        r: Activation,
    ) -> Result<Vec<Option<Activation>>> {
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
        match g.layers()[id].lrp() {
            LrpView::Source => Ok(Vec::new()),
            LrpView::Pass => {
                let x = inputs
                    .first()
                    .ok_or_else(|| shape_err(name, "a pass-through node has no input"))?;
                if r.dims() != x.dims() {
                    return Err(shape_err(
                        name,
                        format!(
                            "relevance has shape {:?}, the input {:?}",
                            r.dims(),
                            x.dims()
                        ),
                    ));
                }
                let r = r
                    .with_layout(x.layout())
                    .ok_or_else(|| shape_err(name, "relevance and input have different layouts"))?;
                Ok(vec![Some(r)])
            }
            LrpView::Linear { map, .. } => {
                let x = inputs
                    .first()
                    .ok_or_else(|| shape_err(name, "a linear node has no input"))?;
                let hints = Hints {
                    output: Some(output.clone()),
                    nonnegative_input: nonnegative,
                    name: Some(name.to_string()),
                    params: self.params[id].as_deref(),
                };
                Ok(vec![Some(propagate(&*map, x, r, rule()?, hints)?)])
            }
            LrpView::Sum => Ok(sum_relevance(inputs, r, rule()?, Some(output), name)?
                .into_iter()
                .map(Some)
                .collect()),
            LrpView::Redistribute(d) => d
                .redistribute(inputs, output, r)
                .map_err(|m| shape_err(name, m)),
            LrpView::Attention(a) => a
                .relevance(inputs, r, self.attention, self.attention_epsilon)
                .map_err(|m| shape_err(name, m)),
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

/// Which node outputs are non-negative by construction (ReLU outputs, and pooling, flattening,
/// sums and concatenations of non-negative values), as each kind says.
fn nonnegative_nodes(graph: &Graph) -> Vec<bool> {
    let mut nonneg = vec![false; graph.len()];
    for (id, node) in graph.nodes().iter().enumerate() {
        let inputs: Vec<bool> = node.inputs.iter().map(|&i| nonneg[i]).collect();
        nonneg[id] = graph.layers()[id].nonnegative(&inputs);
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
