//! [`GraphBuilder`]: a small API to build graphs node by node, checking shapes as it goes.

use crate::error::{GraphError, Result};
use crate::graph::{Graph, NodeDef, NodeId};
use crate::init::Initializer;
use crate::kinds::adaptive_avg_pool2d::AdaptiveAvgPool2dOp;
use crate::kinds::add::AddOp;
use crate::kinds::avg_pool2d::AvgPool2dOp;
use crate::kinds::batch_norm::BatchNormOp;
use crate::kinds::concat::ConcatOp;
use crate::kinds::conv2d::Conv2dOp;
use crate::kinds::dropout::DropoutOp;
use crate::kinds::flatten::FlattenOp;
use crate::kinds::identity::IdentityOp;
use crate::kinds::input::Input;
use crate::kinds::linear::LinearOp;
use crate::kinds::max_pool2d::MaxPool2dOp;
use crate::kinds::relu::ReluOp;
use crate::registry::{Layer, OpSpec};
use crate::shape::{FeatureShape, Padding2d, same_padding};
use burn::tensor::Device;

/// Padding of a convolution or pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// No padding.
    Valid,
    /// Output size `ceil(input / stride)`, extra padding at the end (TensorFlow/ONNX
    /// `SAME_UPPER`).
    Same,
    /// The same padding on every side.
    Uniform(usize),
    /// `[top, left, bottom, right]`.
    Explicit(Padding2d),
}

impl Padding {
    fn resolve(
        self,
        hw: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
    ) -> Padding2d {
        match self {
            Self::Valid => [0; 4],
            Self::Uniform(p) => [p; 4],
            Self::Explicit(p) => p,
            Self::Same => {
                let (t, b) = same_padding(hw[0], kernel[0], stride[0], dilation[0], true);
                let (l, r) = same_padding(hw[1], kernel[1], stride[1], dilation[1], true);
                [t, l, b, r]
            }
        }
    }
}

/// Hyper-parameters of a 2-D convolution for [`GraphBuilder::conv2d`]; input channels come
/// from the input node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dSpec {
    /// Output channels.
    pub out_channels: usize,
    /// Kernel `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// Padding.
    pub padding: Padding,
    /// Dilation `[height, width]`.
    pub dilation: [usize; 2],
    /// Groups (`in_channels` for a depthwise convolution).
    pub groups: usize,
    /// Whether the convolution has a bias.
    pub bias: bool,
}

impl Conv2dSpec {
    /// A `kernel x kernel` convolution with `out_channels` outputs, stride 1, no padding, bias.
    pub fn new(out_channels: usize, kernel: usize) -> Self {
        Self {
            out_channels,
            kernel: [kernel, kernel],
            stride: [1, 1],
            padding: Padding::Valid,
            dilation: [1, 1],
            groups: 1,
            bias: true,
        }
    }

    /// Sets the same stride in both dimensions.
    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = [stride, stride];
        self
    }

    /// Sets the same padding on every side.
    pub fn padding(mut self, padding: usize) -> Self {
        self.padding = Padding::Uniform(padding);
        self
    }

    /// Sets any padding.
    pub fn with_padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// Sets the same dilation in both dimensions.
    pub fn dilation(mut self, dilation: usize) -> Self {
        self.dilation = [dilation, dilation];
        self
    }

    /// Sets the number of groups.
    pub fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// Removes the bias.
    pub fn no_bias(mut self) -> Self {
        self.bias = false;
        self
    }
}

/// Builds a [`Graph`] node by node with seeded weights, checking every node's input shapes as
/// it is added.
///
/// ```
/// # use xprune_graph::{Conv2dSpec, FeatureShape, GraphBuilder};
/// # fn main() -> Result<(), xprune_graph::GraphError> {
/// # let device = burn::tensor::Device::flex();
/// let mut b = GraphBuilder::new(FeatureShape::spatial(3, 32, 32), &device).seed(7);
/// let x = b.input();
/// let x = b.conv2d("conv1", x, Conv2dSpec::new(16, 3).padding(1))?;
/// let x = b.relu("relu1", x)?;
/// let x = b.global_avg_pool("pool", x)?;
/// let x = b.flatten("flatten", x)?;
/// let x = b.linear("fc", x, 10)?;
/// let graph = b.build(x)?;
/// assert_eq!(graph.nodes()[graph.find("conv1")?].shape, FeatureShape::spatial(16, 32, 32));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct GraphBuilder {
    input: FeatureShape,
    defs: Vec<NodeDef>,
    shapes: Vec<FeatureShape>,
    init: Initializer,
    device: Device,
}

impl GraphBuilder {
    /// A builder for a graph whose samples have shape `input`, creating weights on `device`
    /// with seed 0.
    pub fn new(input: FeatureShape, device: &Device) -> Self {
        Self {
            input,
            defs: vec![NodeDef::new(
                "input",
                Layer::Input(Input::new(input)),
                vec![],
            )],
            shapes: vec![input],
            init: Initializer::new(0),
            device: device.clone(),
        }
    }

    /// Sets the seed of the initial weights (call before adding layers).
    pub fn seed(mut self, seed: u64) -> Self {
        self.init = Initializer::new(seed);
        self
    }

    /// The device weights are created on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The input node.
    pub fn input(&self) -> NodeId {
        0
    }

    /// The most recently added node.
    pub fn last(&self) -> NodeId {
        self.defs.len() - 1
    }

    /// The output shape of a node added so far.
    pub fn shape(&self, id: NodeId) -> Result<FeatureShape> {
        self.shapes
            .get(id)
            .copied()
            .ok_or(GraphError::InvalidNodeId {
                id,
                len: self.shapes.len(),
            })
    }

    /// The id of a node added so far, by name.
    pub fn find(&self, name: &str) -> Result<NodeId> {
        self.defs
            .iter()
            .position(|d| d.name == name)
            .ok_or_else(|| GraphError::UnknownNode {
                name: name.to_string(),
                hint: crate::graph::name_hint(name, self.defs.iter().map(|d| d.name.as_str())),
            })
    }

    /// Adds a node of any kind from its hyper-parameters, with seeded weights.
    pub fn add_op(
        &mut self,
        name: impl Into<String>,
        op: impl Into<OpSpec>,
        inputs: &[NodeId],
    ) -> Result<NodeId> {
        let name = name.into();
        let op = op.into();
        let shapes = self.input_shapes(&name, inputs)?;
        op.infer_shape(&shapes)
            .map_err(|message| GraphError::Shape {
                node: name.clone(),
                message,
            })?;
        let layer = op.init(&mut self.init, &self.device);
        self.add_layer(name, layer, inputs)
    }

    /// Adds a node holding an existing Burn layer.
    pub fn add_layer(
        &mut self,
        name: impl Into<String>,
        layer: Layer,
        inputs: &[NodeId],
    ) -> Result<NodeId> {
        let name = name.into();
        if self.defs.iter().any(|d| d.name == name) {
            return Err(GraphError::DuplicateName(name));
        }
        if matches!(layer, Layer::Input(_)) {
            return Err(GraphError::Spec(format!(
                "node `{name}`: the graph already has its input"
            )));
        }
        let shapes = self.input_shapes(&name, inputs)?;
        let mut layer = layer;
        layer.normalize(&shapes);
        let shape = layer
            .spec()
            .infer_shape(&shapes)
            .map_err(|message| GraphError::Shape {
                node: name.clone(),
                message,
            })?;
        self.defs.push(NodeDef::new(name, layer, inputs.to_vec()));
        self.shapes.push(shape);
        Ok(self.defs.len() - 1)
    }

    fn input_shapes(&self, name: &str, inputs: &[NodeId]) -> Result<Vec<FeatureShape>> {
        inputs
            .iter()
            .map(|&i| {
                self.shapes
                    .get(i)
                    .copied()
                    .ok_or_else(|| GraphError::Shape {
                        node: name.to_string(),
                        message: format!(
                            "input node id {i} does not exist (the graph has {} nodes)",
                            self.shapes.len()
                        ),
                    })
            })
            .collect()
    }

    pub(crate) fn spatial_in(&self, name: &str, input: NodeId) -> Result<[usize; 3]> {
        match self.shape(input)? {
            FeatureShape::Spatial(s) => Ok(s),
            other => Err(GraphError::Shape {
                node: name.to_string(),
                message: format!(
                    "expects a [channels, height, width] map, its input `{}` has shape [{other}]",
                    self.defs[input].name
                ),
            }),
        }
    }

    /// Adds a 2-D convolution.
    pub fn conv2d(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        spec: Conv2dSpec,
    ) -> Result<NodeId> {
        let name = name.into();
        let [c, h, w] = self.spatial_in(&name, input)?;
        let op = Conv2dOp {
            in_channels: c,
            out_channels: spec.out_channels,
            kernel: spec.kernel,
            stride: spec.stride,
            padding: spec
                .padding
                .resolve([h, w], spec.kernel, spec.stride, spec.dilation),
            dilation: spec.dilation,
            groups: spec.groups,
            bias: spec.bias,
        };
        self.add_op(name, op, &[input])
    }

    /// Adds a fully connected layer with bias.
    pub fn linear(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        out_features: usize,
    ) -> Result<NodeId> {
        self.linear_with_bias(name, input, out_features, true)
    }

    /// Adds a fully connected layer, choosing whether it has a bias.
    pub fn linear_with_bias(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        out_features: usize,
        bias: bool,
    ) -> Result<NodeId> {
        let in_features = self.shape(input)?.channels();
        self.add_op(
            name,
            LinearOp {
                in_features,
                out_features,
                bias,
            },
            &[input],
        )
    }

    /// Adds a batch norm over the input's channels (epsilon 1e-5, momentum 0.1).
    pub fn batch_norm(&mut self, name: impl Into<String>, input: NodeId) -> Result<NodeId> {
        let features = self.shape(input)?.channels();
        self.add_op(
            name,
            BatchNormOp {
                features,
                epsilon: 1e-5,
                momentum: 0.1,
            },
            &[input],
        )
    }

    /// Adds a ReLU.
    pub fn relu(&mut self, name: impl Into<String>, input: NodeId) -> Result<NodeId> {
        self.add_op(name, ReluOp {}, &[input])
    }

    /// Adds a max pool with a square window, the given stride and no padding.
    pub fn max_pool2d(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        kernel: usize,
        stride: usize,
    ) -> Result<NodeId> {
        self.max_pool2d_with(name, input, [kernel; 2], [stride; 2], Padding::Valid, false)
    }

    /// Adds a max pool with any window, stride, padding and ceil mode.
    pub fn max_pool2d_with(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: Padding,
        ceil_mode: bool,
    ) -> Result<NodeId> {
        let name = name.into();
        let [_, h, w] = self.spatial_in(&name, input)?;
        let op = MaxPool2dOp {
            kernel,
            stride,
            padding: padding.resolve([h, w], kernel, stride, [1, 1]),
            dilation: [1, 1],
            ceil_mode,
        };
        self.add_op(name, op, &[input])
    }

    /// Adds an average pool with a square window, the given stride and no padding.
    pub fn avg_pool2d(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        kernel: usize,
        stride: usize,
    ) -> Result<NodeId> {
        self.add_op(
            name,
            AvgPool2dOp {
                kernel: [kernel; 2],
                stride: [stride; 2],
                padding: [0; 4],
                count_include_pad: true,
                ceil_mode: false,
            },
            &[input],
        )
    }

    /// Adds an adaptive average pool to `output` size.
    pub fn adaptive_avg_pool2d(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        output: [usize; 2],
    ) -> Result<NodeId> {
        self.add_op(name, AdaptiveAvgPool2dOp { output }, &[input])
    }

    /// Adds a global average pool (adaptive average pool to 1x1).
    pub fn global_avg_pool(&mut self, name: impl Into<String>, input: NodeId) -> Result<NodeId> {
        self.adaptive_avg_pool2d(name, input, [1, 1])
    }

    /// Adds a flatten.
    pub fn flatten(&mut self, name: impl Into<String>, input: NodeId) -> Result<NodeId> {
        self.add_op(name, FlattenOp {}, &[input])
    }

    /// Adds an element-wise sum.
    pub fn add(&mut self, name: impl Into<String>, inputs: &[NodeId]) -> Result<NodeId> {
        self.add_op(name, AddOp {}, inputs)
    }

    /// Adds a channel concatenation.
    pub fn concat(&mut self, name: impl Into<String>, inputs: &[NodeId]) -> Result<NodeId> {
        self.add_op(name, ConcatOp {}, inputs)
    }

    /// Adds a dropout with drop probability `prob`.
    pub fn dropout(&mut self, name: impl Into<String>, input: NodeId, prob: f64) -> Result<NodeId> {
        self.add_op(name, DropoutOp { prob }, &[input])
    }

    /// Adds an identity.
    pub fn identity(&mut self, name: impl Into<String>, input: NodeId) -> Result<NodeId> {
        self.add_op(name, IdentityOp {}, &[input])
    }

    /// Finishes the graph with `output` as its output node.
    pub fn build(self, output: NodeId) -> Result<Graph> {
        Graph::from_nodes(self.input, self.defs, output)
    }

    /// Finishes the graph with the last added node as output.
    pub fn build_last(self) -> Result<Graph> {
        let last = self.last();
        self.build(last)
    }
}
