//! Tracing a user's Burn module into an xprune [`Graph`].
//!
//! A Burn user writes `#[derive(Module)] struct Net { conv1: Conv2d, bn1: BatchNorm, ... }`
//! with a hand-written `forward`. [`trace`] runs that forward once on Burn's graph-capture
//! device (`Device::capture()`, which records operations instead of executing them), reads the
//! recorded layer-level operations (`Conv2d`, `BatchNorm`, `Linear`, pools, activations,
//! additions, concatenations, reshapes, ...) and builds the graph xprune explains and prunes.
//! Nodes that hold parameters are named after the module path Burn gives them (`conv1`,
//! `block1.conv2`, `bn1`); parameterless ones get `<op>_<k>` names.
//!
//! The recorded operations are written as the same neutral ONNX-style graph the ONNX importer
//! builds, and imported by the same kinds' imports (so a traced model and its ONNX export give
//! the same graph, and every layer kind's import is written once). Operations the graph cannot
//! represent are a [`TraceError::Unsupported`] naming the operation and the modules around it.
//!
//! The user's module is not changed: it is traced through a `valid()` copy, whose running
//! statistics are not shared with the original (Burn's `RunningState` shares its value between
//! clones, and moving a clone to another device would move the original's too).
//!
//! ```
//! use burn::nn::{Linear, LinearConfig};
//! use burn::tensor::Device;
//! use xprune_io::trace::trace;
//!
//! let device = Device::flex();
//! let fc: Linear = LinearConfig::new(4, 2).init(&device);
//! let traced = trace(&fc, [1, 4], |fc, x| fc.forward(x), &device)?;
//! assert_eq!(traced.graph.output_shape().channels(), 2);
//! assert_eq!(traced.param("weight").map(|p| p.role.as_str()), Some("weight"));
//! # Ok::<(), xprune_io::trace::TraceError>(())
//! ```

mod ops;

use crate::onnx::OnnxError;
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use xprune_graph::{FeatureShape, Graph};

/// An error while tracing a module.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The example input's shape cannot be the input of an xprune graph.
    #[error("input shape {dims:?}: {why}")]
    Input {
        /// The dimensions given.
        dims: Vec<usize>,
        /// What is wrong with them.
        why: String,
    },
    /// The module's forward panicked while it was recorded (a shape mismatch, ...).
    #[error("the module's forward failed while it was traced: {0}")]
    Forward(String),
    /// Burn's capture device refused the recorded graph.
    #[error("Burn's graph capture failed: {0}")]
    Capture(String),
    /// The forward uses an operation xprune's graph cannot represent.
    #[error("the forward uses {op} ({context}), which xprune's graph cannot represent: {why}")]
    Unsupported {
        /// The operation, as Burn records it.
        op: String,
        /// Where it is: the module it belongs to, or the modules before and after it.
        context: String,
        /// Why, and what is supported instead.
        why: String,
    },
    /// The same module (parameter tensor) is applied more than once.
    #[error(
        "module `{path}` is applied {times} times in the forward; xprune graphs hold each layer \
         once (pruning it would change every use), so use one module per application"
    )]
    SharedModule {
        /// The module path.
        path: String,
        /// How many operations read its parameters.
        times: usize,
    },
    /// A module parameter is not found in the traced graph (the forward does not use it, or
    /// uses it in a way the graph does not keep).
    #[error("parameter `{path}` of the module {why}")]
    Parameter {
        /// The parameter path.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// The recorded operations, imported as a graph, were refused.
    #[error("the traced graph was refused: {0}")]
    Import(#[from] OnnxError),
}

/// One float tensor of a traced module: its module path and where the graph holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracedParam {
    /// The module path Burn gives the tensor (`block1.conv2.weight`).
    pub path: String,
    /// The graph node holding it (`block1.conv2`).
    pub node: String,
    /// Its role in that node (`weight`, `bias`, `gamma`, `running_mean`, ...).
    pub role: String,
    /// Its dimensions.
    pub dims: Vec<usize>,
}

/// A module traced into a [`Graph`].
#[derive(Clone, Debug)]
pub struct Traced {
    /// The graph: the module's forward, with nodes named after module paths.
    pub graph: Graph,
    /// Every float tensor of the module (parameters and running statistics) and the node and
    /// role holding it in [`Traced::graph`], in the module's visiting order.
    pub params: Vec<TracedParam>,
    /// The example input's dimensions (with the batch dimension) the module was traced with.
    pub input_dims: Vec<usize>,
}

impl Traced {
    /// The traced parameter at `path`.
    pub fn param(&self, path: &str) -> Option<&TracedParam> {
        self.params.iter().find(|p| p.path == path)
    }
}

/// One tensor found by [`Paths`]: its path, dims, capture id (when on the capture device) and
/// host data (when asked for).
type Found = (
    String,
    Vec<usize>,
    Option<burn_capture::TensorId>,
    Option<TensorData>,
);

/// Every float tensor of a module (parameters and running statistics) by module path, in the
/// module's visiting order.
struct Paths {
    stack: Vec<String>,
    data: bool,
    found: Vec<Found>,
}

impl ModuleVisitor for Paths {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.stack.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let data = self.data.then(|| tensor.to_data().convert::<f32>());
        let id = if self.data {
            None
        } else {
            ops::tensor_id(&tensor)
        };
        self.found
            .push((self.stack.join("."), tensor.dims().to_vec(), id, data));
    }
}

fn paths<M: Module>(module: &M, data: bool) -> Vec<Found> {
    let mut v = Paths {
        stack: Vec::new(),
        data,
        found: Vec::new(),
    };
    module.visit(&mut v);
    v.found
}

/// Every float tensor of a module (parameters and running statistics, which Burn visits like
/// parameters) by module path, as Burn's visitors name them (`block1.conv2.weight`;
/// `Vec` items are indices, `Option` adds nothing), in the module's visiting order.
pub fn module_tensors<M: Module>(module: &M) -> Vec<(String, TensorData)> {
    paths(module, true)
        .into_iter()
        .filter_map(|(path, _, _, data)| data.map(|d| (path, d)))
        .collect()
}

/// Traces `module`'s forward into a [`Graph`] on `device`.
///
/// `input_dims` is the shape of an example input, batch dimension first (`[1, 3, 32, 32]`
/// for images, `[1, 64]` for vectors); `forward` calls the module (`|net, x| net.forward(x)`).
/// Nodes holding parameters are named after their module paths. The module itself is not
/// changed.
///
/// # Errors
///
/// A [`TraceError`] when the input shape is not one a graph takes, the forward panics, it uses
/// an operation the graph cannot represent (named, with the modules around it), or applies a
/// module twice.
pub fn trace<M, const D: usize, const O: usize, F>(
    module: &M,
    input_dims: [usize; D],
    forward: F,
    device: &Device,
) -> Result<Traced, TraceError>
where
    M: Module,
    F: FnOnce(&M, Tensor<D>) -> Tensor<O>,
{
    let input_shape = input_shape(&input_dims)?;
    let capture = Device::capture();
    let mut found = Vec::new();
    let mut boundary = None;
    // A panic inside the user's forward unwinds out of the capture scope (which closes its
    // session on unwinding) and is reported as an error.
    let captured = catch_unwind(AssertUnwindSafe(|| {
        capture.capture_scope(|scope| {
            // `valid()` gives running statistics of their own: moving a clone to the capture
            // device would otherwise move the caller's statistics too.
            let copy = module.valid().to_device(&capture);
            found = paths(&copy, false);
            let input = Tensor::<D>::zeros(input_dims, device).to_device(&capture);
            let output = forward(&copy, input.clone());
            let ids = (ops::tensor_id(&input), ops::tensor_id(&output));
            boundary = Some(ids);
            match ids {
                (Some(i), Some(o)) => scope.complete([i], [o]),
                _ => scope.complete([], []),
            }
        })
    }))
    .map_err(|panic| TraceError::Forward(crate::onnx::panic_message(panic.as_ref())))?
    .map_err(|e| TraceError::Capture(e.to_string()))?;
    let mut ids = Vec::with_capacity(found.len());
    for (path, dims, id, _) in found {
        let Some(id) = id else {
            return Err(TraceError::Capture(format!(
                "parameter `{path}` is not on the capture device"
            )));
        };
        ids.push((path, id, dims));
    }
    match boundary {
        Some((Some(_), Some(_))) => {}
        _ => {
            return Err(TraceError::Capture(
                "the input or output tensor is not on the capture device".into(),
            ));
        }
    }

    let names: HashMap<burn_capture::TensorId, String> = ids
        .iter()
        .map(|(path, id, _)| (*id, path.clone()))
        .collect();
    let built = ops::build(&captured, &names, input_shape, device)?;

    let mut params = Vec::with_capacity(ids.len());
    for (path, id, dims) in ids {
        let Some((node, role)) = built.sites.get(&id) else {
            return Err(TraceError::Parameter {
                path,
                why: "is not read by the traced forward (xprune graphs hold only what the \
                      forward computes with; remove the unused module or its parameter)"
                    .into(),
            });
        };
        params.push(TracedParam {
            path,
            node: node.clone(),
            role: role.clone(),
            dims,
        });
    }
    check_sites(&built.graph, &params)?;
    Ok(Traced {
        graph: built.graph,
        params,
        input_dims: input_dims.to_vec(),
    })
}

/// Every traced parameter must be a tensor of its node, with the module's dimensions.
fn check_sites(graph: &Graph, params: &[TracedParam]) -> Result<(), TraceError> {
    for p in params {
        let Ok(id) = graph.find(&p.node) else {
            return Err(TraceError::Parameter {
                path: p.path.clone(),
                why: format!("maps to node `{}`, which the graph does not have", p.node),
            });
        };
        let found = graph.layers()[id]
            .params()
            .into_iter()
            .find(|t| t.role == p.role)
            .map(|t| t.dims());
        match found {
            Some(dims) if dims == p.dims => {}
            Some(dims) => {
                return Err(TraceError::Parameter {
                    path: p.path.clone(),
                    why: format!(
                        "has dimensions {:?}, but `{}.{}` in the graph has {dims:?}",
                        p.dims, p.node, p.role
                    ),
                });
            }
            None => {
                return Err(TraceError::Parameter {
                    path: p.path.clone(),
                    why: format!(
                        "maps to `{}.{}`, which the graph does not hold",
                        p.node, p.role
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The per-sample shape of an example input.
fn input_shape(dims: &[usize]) -> Result<FeatureShape, TraceError> {
    let bad = |why: &str| TraceError::Input {
        dims: dims.to_vec(),
        why: why.to_string(),
    };
    if dims.contains(&0) {
        return Err(bad("every dimension must be positive"));
    }
    match *dims {
        [_, f] => Ok(FeatureShape::flat(f)),
        [_, l, c] => Ok(FeatureShape::tokens(l, c)),
        [_, c, h, w] => Ok(FeatureShape::spatial(c, h, w)),
        _ => Err(bad(
            "xprune graphs take [batch, features], [batch, length, channels] or \
             [batch, channels, height, width] inputs",
        )),
    }
}
