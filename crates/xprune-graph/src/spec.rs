//! [`GraphSpec`]: the readable, serialisable structure of a graph (no weights).

use crate::error::{GraphError, Result};
use crate::graph::{Graph, NodeDef};
use crate::init::Initializer;
use crate::kinds::input::InputOp;
use crate::registry::OpSpec;
use crate::shape::add_channels;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The format tag written into structure descriptions.
pub const SPEC_FORMAT: &str = "xprune-graph/1";

/// One node of a [`GraphSpec`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Unique node name.
    pub name: String,
    /// Layer kind and hyper-parameters.
    #[serde(flatten)]
    pub op: OpSpec,
    /// Names of the input nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
}

/// The structure of a graph: its nodes in order (the first is the input) and its output.
///
/// Serialised as JSON, this is the readable part of a saved model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphSpec {
    /// Format tag, [`SPEC_FORMAT`].
    pub format: String,
    /// Nodes in topological order.
    pub nodes: Vec<NodeSpec>,
    /// Name of the output node.
    pub output: String,
}

impl GraphSpec {
    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a graph spec serialises")
    }

    /// Parses JSON.
    pub fn from_json(json: &str) -> Result<Self> {
        let spec: Self = serde_json::from_str(json).map_err(|e| GraphError::Spec(e.to_string()))?;
        if spec.format != SPEC_FORMAT {
            return Err(GraphError::Spec(format!(
                "format `{}` is not supported (expected `{SPEC_FORMAT}`)",
                spec.format
            )));
        }
        Ok(spec)
    }
}

impl GraphSpec {
    /// The per-sample shapes of every node, inferred from the structure alone (no weights are
    /// created); an error names the first node that does not fit.
    pub fn shapes(&self) -> Result<Vec<crate::FeatureShape>> {
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut shapes = Vec::with_capacity(self.nodes.len());
        let mut channels = 0usize;
        for (id, node) in self.nodes.iter().enumerate() {
            let input_shapes = node
                .inputs
                .iter()
                .map(|name| {
                    ids.get(name.as_str()).map(|&i| shapes[i]).ok_or_else(|| {
                        GraphError::Spec(format!(
                            "node `{}` reads `{name}`, which is not defined before it",
                            node.name
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let s = node
                .op
                .infer_shape(&input_shapes)
                .and_then(|s| add_channels(&mut channels, &s).map(|()| s))
                .map_err(|message| GraphError::Shape {
                    node: node.name.clone(),
                    message,
                })?;
            ids.insert(node.name.as_str(), id);
            shapes.push(s);
        }
        Ok(shapes)
    }

    /// The number of tensor values (parameters and state) a graph of this structure holds,
    /// computed from the structure alone.
    pub fn values(&self) -> Result<u64> {
        let shapes = self.shapes()?;
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut total = 0u64;
        for (id, node) in self.nodes.iter().enumerate() {
            let inputs: Vec<_> = node
                .inputs
                .iter()
                .filter_map(|n| ids.get(n.as_str()).map(|&i| shapes[i]))
                .collect();
            let c = node.op.counts(&inputs, shapes[id]);
            total = total.saturating_add(c.params).saturating_add(c.buffers);
            ids.insert(node.name.as_str(), id);
        }
        Ok(total)
    }
}

impl Graph {
    /// The structure of this graph.
    pub fn spec(&self) -> GraphSpec {
        GraphSpec {
            format: SPEC_FORMAT.to_string(),
            nodes: self
                .nodes()
                .iter()
                .map(|n| NodeSpec {
                    name: n.name.clone(),
                    op: n.op.clone(),
                    inputs: n.inputs.iter().map(|&i| self.name(i).to_string()).collect(),
                })
                .collect(),
            output: self.name(self.output()).to_string(),
        }
    }

    /// Builds a graph from a structure with seeded initial weights on `device`.
    pub fn from_spec(spec: &GraphSpec, device: &Device, seed: u64) -> Result<Self> {
        let Some(first) = spec.nodes.first() else {
            return Err(GraphError::Spec("no nodes".into()));
        };
        let OpSpec::Input(InputOp { shape }) = first.op else {
            return Err(GraphError::Spec(format!(
                "the first node `{}` must be the input, found {}",
                first.name,
                first.op.kind_name()
            )));
        };
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut init = Initializer::new(seed);
        let mut defs = Vec::with_capacity(spec.nodes.len());
        for (id, node) in spec.nodes.iter().enumerate() {
            let inputs = node
                .inputs
                .iter()
                .map(|name| {
                    ids.get(name.as_str()).copied().ok_or_else(|| {
                        GraphError::Spec(format!(
                            "node `{}` reads `{name}`, which is not defined before it",
                            node.name
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            if ids.insert(node.name.as_str(), id).is_some() {
                return Err(GraphError::DuplicateName(node.name.clone()));
            }
            defs.push((node, inputs));
        }
        // Infer shapes from the specs alone before allocating weights, so that bad
        // hyper-parameters in a corrupt file are reported by node name.
        let mut shapes = Vec::with_capacity(defs.len());
        let mut channels = 0usize;
        for (node, inputs) in &defs {
            let input_shapes: Vec<_> = inputs.iter().map(|&i| shapes[i]).collect();
            let s = node
                .op
                .infer_shape(&input_shapes)
                .and_then(|s| add_channels(&mut channels, &s).map(|()| s))
                .map_err(|message| GraphError::Shape {
                    node: node.name.clone(),
                    message,
                })?;
            shapes.push(s);
        }
        let output = *ids.get(spec.output.as_str()).ok_or_else(|| {
            GraphError::Spec(format!("output node `{}` is not defined", spec.output))
        })?;
        let defs = defs
            .into_iter()
            .map(|(node, inputs)| {
                NodeDef::new(node.name.clone(), node.op.init(&mut init, device), inputs)
            })
            .collect();
        Graph::from_nodes(shape, defs, output)
    }
}
