//! [`Composite`]: which rule each layer of a graph gets — by layer kind, for the first layer,
//! and by node name — with Zennit's named composites.

use crate::error::{LrpError, Result};
use crate::modifier::Bound;
use crate::rule::{Rule, SharedRule};
use crate::rules::{
    AlphaBeta, Epsilon, Flat, Gamma, IgnoreBias, Norm, Pass, Stabilized, ZBox, ZPlus,
};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use xprune_graph::{Graph, OpSpec};

/// The layer kinds that take a rule. (ReLU, dropout and identity pass relevance, max pooling
/// gives it to the winner, flatten and concatenation rearrange it.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LayerKind {
    /// 2-D convolution.
    Conv2d,
    /// Fully connected layer.
    Linear,
    /// Batch norm that was not folded into the layer before it.
    BatchNorm,
    /// Average pooling.
    AvgPool2d,
    /// Adaptive (and global) average pooling.
    AdaptiveAvgPool2d,
    /// Element-wise sum (residual connection).
    Add,
}

impl LayerKind {
    /// Every kind.
    pub const ALL: [LayerKind; 6] = [
        Self::Conv2d,
        Self::Linear,
        Self::BatchNorm,
        Self::AvgPool2d,
        Self::AdaptiveAvgPool2d,
        Self::Add,
    ];

    /// The kind of a graph op, if it takes a rule.
    pub fn of(op: &OpSpec) -> Option<Self> {
        Some(match op {
            OpSpec::Conv2d { .. } => Self::Conv2d,
            OpSpec::Linear { .. } => Self::Linear,
            OpSpec::BatchNorm { .. } => Self::BatchNorm,
            OpSpec::AvgPool2d { .. } => Self::AvgPool2d,
            OpSpec::AdaptiveAvgPool2d { .. } => Self::AdaptiveAvgPool2d,
            OpSpec::Add => Self::Add,
            _ => return None,
        })
    }

    /// The graph's name of the kind (`conv2d`, `linear`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Conv2d => "conv2d",
            Self::Linear => "linear",
            Self::BatchNorm => "batch_norm",
            Self::AvgPool2d => "avg_pool2d",
            Self::AdaptiveAvgPool2d => "adaptive_avg_pool2d",
            Self::Add => "add",
        }
    }
}

impl fmt::Display for LayerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The names of the built-in composites (hyphens; underscores are accepted too).
pub const COMPOSITE_NAMES: [&str; 6] = [
    "epsilon",
    "epsilon-plus",
    "epsilon-plus-flat",
    "epsilon-gamma-box",
    "epsilon-alpha2-beta1",
    "epsilon-alpha2-beta1-flat",
];

/// A mapping from the layers of a graph to rules.
///
/// A node's rule is, in order of precedence: the rule given for its name, the first-layer rule
/// if it is the first node (in forward order) of one of the first-layer kinds, the rule of its
/// kind. Every composite starts from Zennit's base map: the norm rule for sums and average
/// pooling, and pass for batch norm that was not folded. By default the attributor
/// folds batch norms into the layer before them first ([`Composite::canonize`]), as Zennit's
/// canonizers do.
#[derive(Clone)]
pub struct Composite {
    name: String,
    kinds: HashMap<LayerKind, SharedRule>,
    first: Option<(Vec<LayerKind>, SharedRule)>,
    names: Vec<(String, SharedRule)>,
    ignore_bias: bool,
    stabilizer: Option<f64>,
    canonize: bool,
}

impl fmt::Debug for Composite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kinds: Vec<_> = self.kinds.iter().map(|(k, r)| (*k, r.name())).collect();
        kinds.sort();
        f.debug_struct("Composite")
            .field("name", &self.name)
            .field("kinds", &kinds)
            .field("first", &self.first.as_ref().map(|(k, r)| (k, r.name())))
            .field(
                "names",
                &self
                    .names
                    .iter()
                    .map(|(n, r)| (n, r.name()))
                    .collect::<Vec<_>>(),
            )
            .field("ignore_bias", &self.ignore_bias)
            .field("stabilizer", &self.stabilizer)
            .field("canonize", &self.canonize)
            .finish()
    }
}

impl Composite {
    /// A user composite called `name` with Zennit's base map only (norm for sums and average
    /// pooling, pass for unfolded batch norm); add rules with the builder methods.
    pub fn new(name: impl Into<String>) -> Self {
        let mut kinds: HashMap<LayerKind, SharedRule> = HashMap::new();
        kinds.insert(LayerKind::Add, Arc::new(Norm));
        kinds.insert(LayerKind::AvgPool2d, Arc::new(Norm));
        kinds.insert(LayerKind::AdaptiveAvgPool2d, Arc::new(Norm));
        kinds.insert(LayerKind::BatchNorm, Arc::new(Pass));
        Self {
            name: name.into(),
            kinds,
            first: None,
            names: Vec::new(),
            ignore_bias: false,
            stabilizer: None,
            canonize: true,
        }
    }

    /// A built-in composite by name (see [`COMPOSITE_NAMES`]; `_` and `-` are interchangeable),
    /// with Zennit's defaults (epsilon `1e-6`, gamma `0.25`). `epsilon-gamma-box` uses the
    /// bounds of raw image data, `[0, 1]`; use [`Composite::epsilon_gamma_box`] for others.
    pub fn named(name: &str) -> Result<Self> {
        let key = name.trim().to_ascii_lowercase().replace('_', "-");
        let eps = Epsilon::default();
        Ok(match key.as_str() {
            "epsilon" => Self::epsilon(eps),
            "epsilon-plus" => Self::epsilon_plus(eps),
            "epsilon-plus-flat" => Self::epsilon_plus_flat(eps),
            "epsilon-gamma-box" => {
                Self::epsilon_gamma_box(eps, Gamma::default(), ZBox::new(0.0, 1.0)?)
            }
            "epsilon-alpha2-beta1" => Self::epsilon_alpha2_beta1(eps),
            "epsilon-alpha2-beta1-flat" => Self::epsilon_alpha2_beta1_flat(eps),
            _ => {
                return Err(LrpError::UnknownComposite {
                    name: name.to_string(),
                    known: COMPOSITE_NAMES.join(", "),
                });
            }
        })
    }

    /// `epsilon`: the epsilon rule on every convolution and fully connected layer.
    pub fn epsilon(epsilon: Epsilon) -> Self {
        Self::new("epsilon")
            .rule_for_kind(LayerKind::Conv2d, epsilon)
            .rule_for_kind(LayerKind::Linear, epsilon)
    }

    /// `epsilon-plus`: z+ on convolutions, epsilon on fully connected layers.
    pub fn epsilon_plus(epsilon: Epsilon) -> Self {
        Self::new("epsilon-plus")
            .rule_for_kind(LayerKind::Conv2d, ZPlus)
            .rule_for_kind(LayerKind::Linear, epsilon)
    }

    /// `epsilon-plus-flat`: as `epsilon-plus`, with the flat rule on the first convolution or
    /// fully connected layer.
    pub fn epsilon_plus_flat(epsilon: Epsilon) -> Self {
        let mut c =
            Self::epsilon_plus(epsilon).first_layer(&[LayerKind::Conv2d, LayerKind::Linear], Flat);
        c.name = "epsilon-plus-flat".into();
        c
    }

    /// `epsilon-gamma-box`: z-box on the first convolution, gamma on the other convolutions,
    /// epsilon on fully connected layers.
    pub fn epsilon_gamma_box(epsilon: Epsilon, gamma: Gamma, zbox: ZBox) -> Self {
        Self::new("epsilon-gamma-box")
            .rule_for_kind(LayerKind::Conv2d, gamma)
            .rule_for_kind(LayerKind::Linear, epsilon)
            .first_layer(&[LayerKind::Conv2d], zbox)
    }

    /// `epsilon-gamma-box` with input bounds (scalars, per channel or per element) and
    /// Zennit's defaults for epsilon and gamma.
    pub fn epsilon_gamma_box_bounds(low: impl Into<Bound>, high: impl Into<Bound>) -> Result<Self> {
        Ok(Self::epsilon_gamma_box(
            Epsilon::default(),
            Gamma::default(),
            ZBox::new(low, high)?,
        ))
    }

    /// `epsilon-alpha2-beta1`: alpha = 2, beta = 1 on convolutions, epsilon on fully connected
    /// layers.
    pub fn epsilon_alpha2_beta1(epsilon: Epsilon) -> Self {
        Self::new("epsilon-alpha2-beta1")
            .rule_for_kind(LayerKind::Conv2d, AlphaBeta::alpha2_beta1())
            .rule_for_kind(LayerKind::Linear, epsilon)
    }

    /// `epsilon-alpha2-beta1-flat`: as `epsilon-alpha2-beta1`, with the flat rule on the first
    /// convolution or fully connected layer.
    pub fn epsilon_alpha2_beta1_flat(epsilon: Epsilon) -> Self {
        let mut c = Self::epsilon_alpha2_beta1(epsilon)
            .first_layer(&[LayerKind::Conv2d, LayerKind::Linear], Flat);
        c.name = "epsilon-alpha2-beta1-flat".into();
        c
    }

    /// Sets the rule of every layer of `kind` (replacing an earlier one).
    pub fn rule_for_kind(mut self, kind: LayerKind, rule: impl Rule + 'static) -> Self {
        self.kinds.insert(kind, Arc::new(rule));
        self
    }

    /// Sets the rule of the first node (in forward order) whose kind is one of `kinds`.
    pub fn first_layer(mut self, kinds: &[LayerKind], rule: impl Rule + 'static) -> Self {
        self.first = Some((kinds.to_vec(), Arc::new(rule)));
        self
    }

    /// Sets the rule of the node called `name` (checked against the graph when resolved).
    pub fn rule_for_node(mut self, name: impl Into<String>, rule: impl Rule + 'static) -> Self {
        let name = name.into();
        self.names.retain(|(n, _)| *n != name);
        self.names.push((name, Arc::new(rule)));
        self
    }

    /// Ignores every layer's bias in every rule (Zennit's `zero_params=['bias']`).
    pub fn ignore_bias(mut self, ignore: bool) -> Self {
        self.ignore_bias = ignore;
        self
    }

    /// Overrides the stabiliser of every rule (epsilon's included), e.g. a tiny value to check
    /// conservation; an error unless finite and `>= 0`.
    pub fn stabilizer(mut self, epsilon: f64) -> Result<Self> {
        if !(epsilon.is_finite() && epsilon >= 0.0) {
            return Err(LrpError::InvalidRule(format!(
                "the stabilizer must be finite and >= 0, got {epsilon}"
            )));
        }
        self.stabilizer = Some(epsilon);
        Ok(self)
    }

    /// Whether the attributor folds batch norms into the layer before them first (default:
    /// yes).
    pub fn canonize(mut self, canonize: bool) -> Self {
        self.canonize = canonize;
        self
    }

    /// Renames the composite.
    pub fn renamed(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The composite's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether biases are ignored.
    pub fn ignores_bias(&self) -> bool {
        self.ignore_bias
    }

    /// Whether batch norms are folded before attribution.
    pub fn canonizes(&self) -> bool {
        self.canonize
    }

    /// The rule of a layer kind, if any.
    pub fn kind_rule(&self, kind: LayerKind) -> Option<&SharedRule> {
        self.kinds.get(&kind)
    }

    /// The rule of every node of `graph` (by node id; `None` for nodes that take no rule).
    ///
    /// An error if a node name given to [`Composite::rule_for_node`] is not in the graph, or a
    /// node that needs a rule has none.
    pub fn resolve(&self, graph: &Graph) -> Result<Vec<Option<SharedRule>>> {
        for (name, _) in &self.names {
            graph.find(name).map_err(|e| {
                LrpError::Composite(format!(
                    "composite `{}` names a node the graph does not have: {e}",
                    self.name
                ))
            })?;
        }
        let first = self.first.as_ref().and_then(|(kinds, rule)| {
            graph
                .nodes()
                .iter()
                .position(|n| LayerKind::of(&n.op).is_some_and(|k| kinds.contains(&k)))
                .map(|id| (id, rule.clone()))
        });
        let mut out = Vec::with_capacity(graph.len());
        for (id, node) in graph.nodes().iter().enumerate() {
            let Some(kind) = LayerKind::of(&node.op) else {
                out.push(None);
                continue;
            };
            let rule = if let Some((_, r)) = self.names.iter().find(|(n, _)| *n == node.name) {
                r.clone()
            } else if let Some((_, r)) = first.as_ref().filter(|(f, _)| *f == id) {
                r.clone()
            } else if let Some(r) = self.kinds.get(&kind) {
                r.clone()
            } else {
                return Err(LrpError::Composite(format!(
                    "composite `{}` has no rule for {kind} node `{}`; add one with rule_for_kind or rule_for_node",
                    self.name, node.name
                )));
            };
            let rule: SharedRule = if self.ignore_bias {
                Arc::new(IgnoreBias(rule))
            } else {
                rule
            };
            let rule: SharedRule = match self.stabilizer {
                Some(epsilon) => Arc::new(Stabilized { rule, epsilon }),
                None => rule,
            };
            out.push(Some(rule));
        }
        Ok(out)
    }
}
