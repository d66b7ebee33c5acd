//! [`Composite`]: which rule each layer of a graph gets — by class of layer (Zennit's abstract
//! layer types), by kind name, for the first layer, and by node name — with Zennit's named
//! composites.

use crate::error::{LrpError, Result};
use crate::modifier::Bound;
use crate::rule::{Rule, SharedRule};
use crate::rules::{
    AlphaBeta, Epsilon, Flat, Gamma, IgnoreBias, Norm, Pass, Stabilized, ZBox, ZPlus,
};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use xprune_graph::kind::AttentionRule;
use xprune_graph::{Graph, LrpView, RuleClass};

/// The classes of layers that take a rule (see [`RuleClass`]; the old name of this type).
pub type LayerKind = RuleClass;

/// The names of the built-in composites (hyphens; underscores are accepted too).
pub const COMPOSITE_NAMES: [&str; 8] = [
    "epsilon",
    "epsilon-plus",
    "epsilon-plus-flat",
    "epsilon-gamma-box",
    "epsilon-alpha2-beta1",
    "epsilon-alpha2-beta1-flat",
    "attnlrp",
    "cp-lrp",
];

/// A mapping from the layers of a graph to rules.
///
/// A node takes a rule when its kind is a linear map or a sum (see
/// [`LrpView`](xprune_graph::LrpView)); its rule is, in order of precedence: the rule given for
/// its name, the first-layer rule if it is the first node (in forward order) of one of the
/// first-layer classes, the rule of its kind name (`conv2d`, `linear`, `layer_norm`, ...), the
/// rule of its class ([`RuleClass`]). Every composite starts from Zennit's base map: the norm
/// rule for sums and average pooling, pass for per-channel affine maps (batch norm that was not
/// folded, layer scale), and epsilon for layer norm (its standard deviation held constant, as
/// AttnLRP does). By default the attributor folds batch norms into the layer before them first
/// ([`Composite::canonize`]), as Zennit's canonizers do.
#[derive(Clone)]
pub struct Composite {
    name: String,
    kinds: HashMap<RuleClass, SharedRule>,
    kind_names: Vec<(String, SharedRule)>,
    first: Option<(Vec<RuleClass>, SharedRule)>,
    names: Vec<(String, SharedRule)>,
    ignore_bias: bool,
    stabilizer: Option<f64>,
    canonize: bool,
    attention: AttentionRule,
}

impl fmt::Debug for Composite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kinds: Vec<_> = self.kinds.iter().map(|(k, r)| (*k, r.name())).collect();
        kinds.sort();
        f.debug_struct("Composite")
            .field("name", &self.name)
            .field("kinds", &kinds)
            .field(
                "kind_names",
                &self
                    .kind_names
                    .iter()
                    .map(|(n, r)| (n, r.name()))
                    .collect::<Vec<_>>(),
            )
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
            .field("attention", &self.attention)
            .finish()
    }
}

impl Composite {
    /// A user composite called `name` with Zennit's base map only (norm for sums and average
    /// pooling, pass for unfolded batch norm and layer scale, epsilon for layer norm); add
    /// rules with the builder methods.
    pub fn new(name: impl Into<String>) -> Self {
        let mut kinds: HashMap<RuleClass, SharedRule> = HashMap::new();
        kinds.insert(RuleClass::Sum, Arc::new(Norm));
        kinds.insert(RuleClass::Pool, Arc::new(Norm));
        kinds.insert(RuleClass::Affine, Arc::new(Pass));
        kinds.insert(RuleClass::Norm, Arc::new(Epsilon::default()));
        Self {
            name: name.into(),
            kinds,
            kind_names: Vec::new(),
            first: None,
            names: Vec::new(),
            ignore_bias: false,
            stabilizer: None,
            canonize: true,
            attention: AttentionRule::Uniform,
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
            "attnlrp" => Self::attnlrp(eps),
            "cp-lrp" => Self::cp_lrp(eps),
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
            .rule_for_kind(RuleClass::Convolution, epsilon)
            .rule_for_kind(RuleClass::Dense, epsilon)
    }

    /// `epsilon-plus`: z+ on convolutions, epsilon on fully connected layers.
    pub fn epsilon_plus(epsilon: Epsilon) -> Self {
        Self::new("epsilon-plus")
            .rule_for_kind(RuleClass::Convolution, ZPlus)
            .rule_for_kind(RuleClass::Dense, epsilon)
    }

    /// `epsilon-plus-flat`: as `epsilon-plus`, with the flat rule on the first convolution or
    /// fully connected layer.
    pub fn epsilon_plus_flat(epsilon: Epsilon) -> Self {
        let mut c = Self::epsilon_plus(epsilon)
            .first_layer(&[RuleClass::Convolution, RuleClass::Dense], Flat);
        c.name = "epsilon-plus-flat".into();
        c
    }

    /// `epsilon-gamma-box`: z-box on the first convolution, gamma on the other convolutions,
    /// epsilon on fully connected layers.
    pub fn epsilon_gamma_box(epsilon: Epsilon, gamma: Gamma, zbox: ZBox) -> Self {
        Self::new("epsilon-gamma-box")
            .rule_for_kind(RuleClass::Convolution, gamma)
            .rule_for_kind(RuleClass::Dense, epsilon)
            .first_layer(&[RuleClass::Convolution], zbox)
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
            .rule_for_kind(RuleClass::Convolution, AlphaBeta::alpha2_beta1())
            .rule_for_kind(RuleClass::Dense, epsilon)
    }

    /// `epsilon-alpha2-beta1-flat`: as `epsilon-alpha2-beta1`, with the flat rule on the first
    /// convolution or fully connected layer.
    pub fn epsilon_alpha2_beta1_flat(epsilon: Epsilon) -> Self {
        let mut c = Self::epsilon_alpha2_beta1(epsilon)
            .first_layer(&[RuleClass::Convolution, RuleClass::Dense], Flat);
        c.name = "epsilon-alpha2-beta1-flat".into();
        c
    }

    /// `attnlrp` (Achtibat et al. 2024): epsilon on fully connected layers and convolutions
    /// (patch embeddings), layer norm with its standard deviation held constant (epsilon),
    /// activations such as GELU passing relevance unchanged, and AttnLRP's rules through
    /// attention ([`AttentionRule::Uniform`]).
    pub fn attnlrp(epsilon: Epsilon) -> Self {
        Self::epsilon(epsilon)
            .renamed("attnlrp")
            .attention(AttentionRule::Uniform)
    }

    /// `cp-lrp`: as `attnlrp`, with the attention weights held constant
    /// ([`AttentionRule::ConstantWeights`]: relevance reaches the values only).
    pub fn cp_lrp(epsilon: Epsilon) -> Self {
        Self::epsilon(epsilon)
            .renamed("cp-lrp")
            .attention(AttentionRule::ConstantWeights)
    }

    /// Sets how relevance passes through attention nodes (default: AttnLRP's
    /// [`AttentionRule::Uniform`], for every composite).
    pub fn attention(mut self, rule: AttentionRule) -> Self {
        self.attention = rule;
        self
    }

    /// The rule of attention nodes.
    pub fn attention_rule(&self) -> AttentionRule {
        self.attention
    }

    /// The stabiliser of the divisions of attention's rules: the composite's
    /// [`Composite::stabilizer`] if set, else Zennit's `1e-6`.
    pub fn attention_epsilon(&self) -> f32 {
        self.stabilizer.unwrap_or(1e-6) as f32
    }

    /// Sets the rule of every layer of `class` (replacing an earlier one).
    pub fn rule_for_kind(mut self, class: RuleClass, rule: impl Rule + 'static) -> Self {
        self.kinds.insert(class, Arc::new(rule));
        self
    }

    /// Sets the rule of every layer of the kind called `kind` (`conv2d`, `linear`,
    /// `layer_norm`, ...; see [`xprune_graph::KIND_NAMES`]), which takes precedence over its
    /// class's rule. An error for a name that is not a kind.
    pub fn rule_for_kind_name(mut self, kind: &str, rule: impl Rule + 'static) -> Result<Self> {
        if !xprune_graph::KIND_NAMES.contains(&kind) {
            return Err(LrpError::Composite(format!(
                "unknown layer kind `{kind}` (kinds: {})",
                xprune_graph::KIND_NAMES.join(", ")
            )));
        }
        self.kind_names.retain(|(n, _)| n != kind);
        self.kind_names.push((kind.to_string(), Arc::new(rule)));
        Ok(self)
    }

    /// Sets the rule of the first node (in forward order) whose class is one of `classes`.
    pub fn first_layer(mut self, classes: &[RuleClass], rule: impl Rule + 'static) -> Self {
        self.first = Some((classes.to_vec(), Arc::new(rule)));
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

    /// The rule of a class of layers, if any.
    pub fn kind_rule(&self, class: RuleClass) -> Option<&SharedRule> {
        self.kinds.get(&class)
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
        let classes: Vec<Option<RuleClass>> = graph.layers().iter().map(rule_class).collect();
        let first = self.first.as_ref().and_then(|(wanted, rule)| {
            classes
                .iter()
                .position(|c| c.is_some_and(|c| wanted.contains(&c)))
                .map(|id| (id, rule.clone()))
        });
        let mut out = Vec::with_capacity(graph.len());
        for (id, node) in graph.nodes().iter().enumerate() {
            let Some(class) = classes[id] else {
                out.push(None);
                continue;
            };
            let kind_name = node.op.kind_name();
            let rule = if let Some((_, r)) = self.names.iter().find(|(n, _)| *n == node.name) {
                r.clone()
            } else if let Some((_, r)) = first.as_ref().filter(|(f, _)| *f == id) {
                r.clone()
            } else if let Some((_, r)) = self.kind_names.iter().find(|(k, _)| k == kind_name) {
                r.clone()
            } else if let Some(r) = self.kinds.get(&class) {
                r.clone()
            } else {
                return Err(LrpError::Composite(format!(
                    "composite `{}` has no rule for {kind_name} node `{}` (class {class}); add one with rule_for_kind, rule_for_kind_name or rule_for_node",
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

/// The class of rules a layer takes, `None` for layers that take no rule.
pub fn rule_class(layer: &xprune_graph::Layer) -> Option<RuleClass> {
    match layer.lrp() {
        LrpView::Linear { class, .. } => Some(class),
        LrpView::Sum => Some(RuleClass::Sum),
        LrpView::Source | LrpView::Pass | LrpView::Redistribute(_) | LrpView::Attention(_) => None,
    }
}
