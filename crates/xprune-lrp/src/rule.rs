//! The [`Rule`] trait and the data a rule is made of ([`Propagation`], [`Group`], [`Term`]).
//!
//! A rule says how relevance crosses a layer that is linear in its input (convolution, fully
//! connected, batch norm in inference, average pooling, sums). It is data over the layer
//! arithmetic, in the form Zennit uses:
//!
//! For every [`Group`] `g` of terms `k` (each term: an input modifier, a weight modifier and a
//! bias modifier, and a sign `c_k = ±1`):
//!
//! ```text
//! z_k  = f(x'_k; w'_k, b'_k)                       modified forward pass
//! z_g  = sum_k c_k z_k
//! s_g  = gate_g(z) * R_out / stabilize(z_g)        stabilize(z) = z + eps * sign0(z), sign0(0) = 1
//! R_g  = sum_k c_k * x'_k * T_k(s_g)               T_k: transposed layer with weight w'_k
//! R_in = sum_g alpha_g * R_g
//! ```
//!
//! where `gate_g` is 1, or selects the outputs whose unmodified value `z = f(x; w, b)` is
//! positive (or negative) — the generalised gamma rule needs it.

use crate::modifier::{InputMod, ParamMod};
use std::fmt::Debug;
use std::sync::Arc;

/// Zennit's default stabiliser of all rules but epsilon (`1e-6`).
pub const DEFAULT_STABILIZER: f64 = 1e-6;

/// One modified forward pass of a rule: input, weight and bias modifiers and a sign.
#[derive(Clone, Debug)]
pub struct Term {
    /// Input modifier.
    pub input: InputMod,
    /// Weight modifier (ignored by parameter-free layers such as pooling and sums).
    pub weight: ParamMod,
    /// Bias modifier.
    pub bias: ParamMod,
    /// `+1` or `-1`: how the term enters the denominator and the relevance.
    pub sign: f32,
}

impl Term {
    /// A term with sign `+1`.
    pub fn new(input: InputMod, weight: ParamMod, bias: ParamMod) -> Self {
        Self {
            input,
            weight,
            bias,
            sign: 1.0,
        }
    }

    /// The same term with sign `-1`.
    pub fn negated(mut self) -> Self {
        self.sign = -self.sign;
        self
    }

    /// The unmodified forward pass (input, weight and bias as they are).
    pub fn identity() -> Self {
        Self::new(InputMod::Identity, ParamMod::Identity, ParamMod::Identity)
    }
}

/// Which outputs a group of terms distributes relevance from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Gate {
    /// Every output.
    #[default]
    All,
    /// Only outputs whose unmodified value (bias included) is positive.
    PositiveOutput,
    /// Only outputs whose unmodified value (bias included) is negative.
    NegativeOutput,
}

/// Terms sharing one denominator, weighted by a coefficient.
#[derive(Clone, Debug)]
pub struct Group {
    /// The terms; their signed outputs sum to the group's denominator.
    pub terms: Vec<Term>,
    /// Which outputs the group takes relevance from.
    pub gate: Gate,
    /// Weight of the group's relevance in the result (alpha, -beta, or 1).
    pub coefficient: f32,
}

impl Group {
    /// A group with gate [`Gate::All`] and coefficient 1.
    pub fn new(terms: Vec<Term>) -> Self {
        Self {
            terms,
            gate: Gate::All,
            coefficient: 1.0,
        }
    }

    /// Sets the gate.
    pub fn gate(mut self, gate: Gate) -> Self {
        self.gate = gate;
        self
    }

    /// Sets the coefficient.
    pub fn coefficient(mut self, coefficient: f32) -> Self {
        self.coefficient = coefficient;
        self
    }
}

/// How a rule propagates relevance: unchanged, or through modified forward passes.
#[derive(Clone, Debug)]
pub enum Propagation {
    /// The relevance passes unchanged (only for layers whose input and output shapes agree).
    Pass,
    /// Groups of modified forward passes (see the [module documentation](self)).
    Terms {
        /// The groups.
        groups: Vec<Group>,
        /// Stabiliser `eps` of the denominators: `z + eps * sign0(z)`.
        epsilon: f64,
    },
}

impl Propagation {
    /// The same propagation with every bias modifier replaced by [`ParamMod::Zero`].
    pub fn without_bias(self) -> Self {
        match self {
            Self::Pass => Self::Pass,
            Self::Terms { groups, epsilon } => Self::Terms {
                groups: groups
                    .into_iter()
                    .map(|mut g| {
                        for t in &mut g.terms {
                            t.bias = ParamMod::Zero;
                        }
                        g
                    })
                    .collect(),
                epsilon,
            },
        }
    }
}

/// An LRP rule: a name and a [`Propagation`].
///
/// Rules are an open trait: implement it to add a rule, usually by combining modifiers into
/// groups of terms (see `docs/lrp.md`). A rule applies to every layer kind that is linear in
/// its input; weight modifiers are ignored by parameter-free layers (pooling, sums), as in
/// Zennit.
pub trait Rule: Debug + Send + Sync {
    /// A short name for messages (`epsilon`, `z-plus`, ...).
    fn name(&self) -> String;

    /// How the rule propagates relevance.
    fn propagation(&self) -> Propagation;
}

impl<R: Rule + ?Sized> Rule for Arc<R> {
    fn name(&self) -> String {
        (**self).name()
    }

    fn propagation(&self) -> Propagation {
        (**self).propagation()
    }
}

impl<R: Rule + ?Sized> Rule for &R {
    fn name(&self) -> String {
        (**self).name()
    }

    fn propagation(&self) -> Propagation {
        (**self).propagation()
    }
}

impl<R: Rule + ?Sized> Rule for Box<R> {
    fn name(&self) -> String {
        (**self).name()
    }

    fn propagation(&self) -> Propagation {
        (**self).propagation()
    }
}

/// A shared, type-erased rule, as composites hold them.
pub type SharedRule = Arc<dyn Rule>;
