//! [`Graph`]: a Burn module holding a DAG of named nodes.

use crate::error::{GraphError, Result};
use crate::kind::Counts;
use crate::registry::{Layer, OpSpec};
use crate::shape::FeatureShape;
use burn::module::Module;
use burn::tensor::Device;

/// Index of a node in a [`Graph`]; nodes are stored in topological order and node 0 is the
/// input.
pub type NodeId = usize;

/// A node to assemble into a graph with [`Graph::from_nodes`]: a name, a layer and the ids of
/// its inputs (earlier nodes).
#[derive(Debug, Clone)]
pub struct NodeDef {
    /// Unique node name.
    pub name: String,
    /// The node's Burn module.
    pub layer: Layer,
    /// Ids of the input nodes, in order.
    pub inputs: Vec<NodeId>,
}

impl NodeDef {
    /// A node definition.
    pub fn new(name: impl Into<String>, layer: Layer, inputs: Vec<NodeId>) -> Self {
        Self {
            name: name.into(),
            layer,
            inputs,
        }
    }
}

/// Structural information about one node, computed when the graph is built.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Unique node name.
    pub name: String,
    /// Ids of the input nodes.
    pub inputs: Vec<NodeId>,
    /// Ids of the nodes that consume this node's output.
    pub consumers: Vec<NodeId>,
    /// Per-sample output shape.
    pub shape: FeatureShape,
    /// Hyper-parameters of the node's layer.
    pub op: OpSpec,
}

/// The structure of a graph: nodes in topological order and the output node.
#[derive(Debug, Clone)]
pub struct Topology {
    pub(crate) nodes: Vec<NodeInfo>,
    output: NodeId,
    /// For each node, the last node (in order) that reads it; the output is read at the end.
    last_use: Vec<NodeId>,
}

/// A neural network as a Burn module: a DAG of named nodes, each holding a Burn layer.
///
/// Node 0 is the input; every node's inputs come before it. Shapes are inferred and checked
/// when the graph is built, so a graph that exists always runs on inputs of its input shape.
/// Build one with [`GraphBuilder`](crate::GraphBuilder), from a structure description with
/// [`Graph::from_spec`](crate::Graph::from_spec), or assemble nodes with
/// [`Graph::from_nodes`].
#[derive(Module, Debug)]
pub struct Graph {
    /// One layer per node, in node order.
    pub(crate) layers: Vec<Layer>,
    #[module(skip)]
    pub(crate) topology: Topology,
}

impl Graph {
    /// Assembles a graph from node definitions. `nodes[0]` must be the input node (a
    /// [`Layer::Input`]); its shape is set to `input_shape`. Every other node's inputs must be
    /// earlier nodes. `output` is the node whose value `forward` returns.
    ///
    /// Shapes are inferred node by node; the first mismatch is returned as an error naming the
    /// node and the shapes. Shape-dependent settings (`Same`/`Valid` paddings) are made
    /// explicit ([`Layer::normalize`]).
    pub fn from_nodes(
        input_shape: FeatureShape,
        nodes: Vec<NodeDef>,
        output: NodeId,
    ) -> Result<Self> {
        if nodes.is_empty() {
            return Err(GraphError::Spec(
                "a graph needs at least its input node".into(),
            ));
        }
        if !matches!(nodes[0].layer, Layer::Input(_)) || !nodes[0].inputs.is_empty() {
            return Err(GraphError::Spec(format!(
                "node 0 (`{}`) must be the input node, found a {} with {} input(s)",
                nodes[0].name,
                nodes[0].layer.kind_name(),
                nodes[0].inputs.len()
            )));
        }
        if output >= nodes.len() {
            return Err(GraphError::InvalidNodeId {
                id: output,
                len: nodes.len(),
            });
        }
        let mut names = std::collections::HashSet::new();
        let mut channels = 0usize;
        let mut infos: Vec<NodeInfo> = Vec::with_capacity(nodes.len());
        let mut layers = Vec::with_capacity(nodes.len());
        for (id, def) in nodes.into_iter().enumerate() {
            if def.name.is_empty() {
                return Err(GraphError::Spec(format!("node {id} has an empty name")));
            }
            if !names.insert(def.name.clone()) {
                return Err(GraphError::DuplicateName(def.name));
            }
            if id > 0 && matches!(def.layer, Layer::Input(_)) {
                return Err(GraphError::Spec(format!(
                    "node `{}`: only node 0 can be an input",
                    def.name
                )));
            }
            for &i in &def.inputs {
                if i >= id {
                    return Err(GraphError::NotTopological {
                        node: def.name.clone(),
                        input: i,
                    });
                }
            }
            let input_shapes: Vec<FeatureShape> =
                def.inputs.iter().map(|&i| infos[i].shape).collect();
            let mut layer = def.layer;
            if let Layer::Input(input) = &mut layer {
                input.shape = input_shape;
            }
            layer.normalize(&input_shapes);
            let op = layer.spec();
            let shape = op
                .infer_shape(&input_shapes)
                .and_then(|s| crate::shape::add_channels(&mut channels, &s).map(|()| s))
                .map_err(|message| GraphError::Shape {
                    node: def.name.clone(),
                    message,
                })?;
            for &i in &def.inputs {
                infos[i].consumers.push(id);
            }
            infos.push(NodeInfo {
                name: def.name,
                inputs: def.inputs,
                consumers: Vec::new(),
                shape,
                op,
            });
            layers.push(layer);
        }
        let mut last_use: Vec<NodeId> = (0..infos.len()).collect();
        for (id, info) in infos.iter().enumerate() {
            for &i in &info.inputs {
                last_use[i] = last_use[i].max(id);
            }
        }
        last_use[output] = usize::MAX;
        Ok(Self {
            layers,
            topology: Topology {
                nodes: infos,
                output,
                last_use,
            },
        })
    }

    /// Number of nodes, the input included.
    pub fn len(&self) -> usize {
        self.topology.nodes.len()
    }

    /// Whether the graph has only its input node.
    pub fn is_empty(&self) -> bool {
        self.len() <= 1
    }

    /// Structural information of a node.
    pub fn node(&self, id: NodeId) -> Result<&NodeInfo> {
        self.topology
            .nodes
            .get(id)
            .ok_or(GraphError::InvalidNodeId {
                id,
                len: self.len(),
            })
    }

    /// All nodes' structural information, in order.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.topology.nodes
    }

    /// The layer of a node.
    pub fn layer(&self, id: NodeId) -> Result<&Layer> {
        self.layers.get(id).ok_or(GraphError::InvalidNodeId {
            id,
            len: self.len(),
        })
    }

    /// All layers, in node order.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The id of the node called `name`.
    pub fn find(&self, name: &str) -> Result<NodeId> {
        self.topology
            .nodes
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| GraphError::UnknownNode {
                name: name.to_string(),
                hint: name_hint(name, self.topology.nodes.iter().map(|n| n.name.as_str())),
            })
    }

    /// The name of a node (empty for an invalid id).
    pub fn name(&self, id: NodeId) -> &str {
        self.topology
            .nodes
            .get(id)
            .map(|n| n.name.as_str())
            .unwrap_or("")
    }

    /// Per-sample input shape.
    pub fn input_shape(&self) -> FeatureShape {
        self.topology.nodes[0].shape
    }

    /// The output node.
    pub fn output(&self) -> NodeId {
        self.topology.output
    }

    /// Per-sample output shape.
    pub fn output_shape(&self) -> FeatureShape {
        self.topology.nodes[self.topology.output].shape
    }

    /// The device holding the graph's parameters (the default device for a graph without any).
    pub fn device(&self) -> Device {
        self.devices().into_iter().next().unwrap_or_default()
    }

    /// For each node, the last node that reads its value (`usize::MAX` for the output).
    pub(crate) fn last_use(&self) -> &[NodeId] {
        &self.topology.last_use
    }

    /// The node definitions and output of this graph, to modify and reassemble with
    /// [`Graph::from_nodes`].
    pub fn to_node_defs(&self) -> (FeatureShape, Vec<NodeDef>, NodeId) {
        let defs = self
            .topology
            .nodes
            .iter()
            .zip(&self.layers)
            .map(|(info, layer)| NodeDef {
                name: info.name.clone(),
                layer: layer.clone(),
                inputs: info.inputs.clone(),
            })
            .collect();
        (self.input_shape(), defs, self.topology.output)
    }

    /// A new graph with the layer of node `id` replaced; shapes are checked again.
    pub fn with_layer(&self, id: NodeId, layer: Layer) -> Result<Self> {
        self.node(id)?;
        let (input, mut defs, output) = self.to_node_defs();
        defs[id].layer = layer;
        Self::from_nodes(input, defs, output)
    }

    /// The parameters, state and multiply-accumulates of node `id` for one sample (see
    /// [`Counts`] for the convention).
    pub fn node_counts(&self, id: NodeId) -> Result<Counts> {
        let n = self.node(id)?;
        let inputs: Vec<FeatureShape> = n
            .inputs
            .iter()
            .map(|&i| self.topology.nodes[i].shape)
            .collect();
        Ok(n.op.counts(&inputs, n.shape))
    }

    /// Number of multiply-accumulate operations of one forward pass of one sample.
    pub fn macs(&self) -> u64 {
        (0..self.len())
            .filter_map(|id| self.node_counts(id).ok())
            .map(|c| c.macs)
            .sum()
    }

    /// A one-line-per-node listing: id, name, kind, inputs and output shape.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for (id, n) in self.topology.nodes.iter().enumerate() {
            let inputs: Vec<&str> = n.inputs.iter().map(|&i| self.name(i)).collect();
            out.push_str(&format!(
                "{id:>4}  {:<24} {:<20} <- [{}]  -> [{}]\n",
                n.name,
                n.op.kind_name(),
                inputs.join(", "),
                n.shape
            ));
        }
        out.push_str(&format!(
            "values (parameters and batch-norm statistics): {}, MACs per sample: {}\n",
            self.num_params(),
            self.macs()
        ));
        out
    }
}

/// A hint for an unknown name: the closest known names, or the list of names when short.
pub(crate) fn name_hint<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    let known: Vec<&str> = known.collect();
    let close: Vec<&str> = known
        .iter()
        .copied()
        .filter(|k| k.contains(name) || name.contains(*k))
        .take(5)
        .collect();
    if !close.is_empty() {
        format!(" (did you mean {}?)", close.join(", "))
    } else if known.len() <= 12 {
        format!(" (nodes: {})", known.join(", "))
    } else {
        format!(" ({} nodes, e.g. {})", known.len(), known[..6].join(", "))
    }
}
