//! The built-in rules, with Zennit's parameters and defaults.

use crate::error::{LrpError, Result};
use crate::modifier::{Bound, InputMod, ParamMod};
use crate::rule::{DEFAULT_STABILIZER, Gate, Group, Propagation, Rule, Term};

use InputMod as I;
use ParamMod as P;

/// LRP-epsilon: `R_in = x * T(R_out / (z + eps * sign0(z)))` with `z = f(x; w, b)`.
/// `epsilon = 0` gives LRP-0 (the stabiliser is then 0 as well).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Epsilon {
    epsilon: f64,
}

impl Epsilon {
    /// Epsilon rule; `epsilon` must be finite and non-negative.
    pub fn new(epsilon: f64) -> Result<Self> {
        if !(epsilon.is_finite() && epsilon >= 0.0) {
            return Err(LrpError::InvalidRule(format!(
                "epsilon must be finite and >= 0, got {epsilon}"
            )));
        }
        Ok(Self { epsilon })
    }

    /// The stabiliser.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }
}

impl Default for Epsilon {
    /// Zennit's default, `epsilon = 1e-6`.
    fn default() -> Self {
        Self { epsilon: 1e-6 }
    }
}

impl Rule for Epsilon {
    fn name(&self) -> String {
        format!("epsilon({})", self.epsilon)
    }

    fn propagation(&self) -> Propagation {
        Propagation::Terms {
            groups: vec![Group::new(vec![Term::identity()])],
            epsilon: self.epsilon,
        }
    }
}

/// The norm rule: epsilon with the fixed stabiliser `1e-6`, meant for parameter-free linear
/// layers (average pooling, sums of residual branches): relevance is split in proportion to
/// each input's contribution.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Norm;

impl Rule for Norm {
    fn name(&self) -> String {
        "norm".into()
    }

    fn propagation(&self) -> Propagation {
        Propagation::Terms {
            groups: vec![Group::new(vec![Term::identity()])],
            epsilon: DEFAULT_STABILIZER,
        }
    }
}

/// LRP-z+ (alpha = 1, beta = 0, allowing negative inputs):
/// `z = f(x+; w+, b+) + f(x-; w-, 0)`, `R_in = x+ * T_{w+}(s) + x- * T_{w-}(s)`, `s = R/z`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ZPlus;

impl Rule for ZPlus {
    fn name(&self) -> String {
        "z-plus".into()
    }

    fn propagation(&self) -> Propagation {
        Propagation::Terms {
            groups: vec![Group::new(vec![
                Term::new(I::Positive, P::Positive, P::Positive),
                Term::new(I::Negative, P::Negative, P::Zero),
            ])],
            epsilon: DEFAULT_STABILIZER,
        }
    }
}

/// LRP-alpha-beta: `alpha` times the z+ relevance of the positive contributions minus `beta`
/// times that of the negative contributions. Requires `alpha - beta = 1` and both `>= 0`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlphaBeta {
    alpha: f64,
    beta: f64,
}

impl AlphaBeta {
    /// Alpha-beta rule; an error unless `alpha >= 0`, `beta >= 0` and `alpha - beta = 1`
    /// (within `1e-9`).
    pub fn new(alpha: f64, beta: f64) -> Result<Self> {
        if !(alpha.is_finite() && beta.is_finite()) || alpha < 0.0 || beta < 0.0 {
            return Err(LrpError::InvalidRule(format!(
                "alpha-beta needs alpha >= 0 and beta >= 0, got alpha = {alpha}, beta = {beta}"
            )));
        }
        if ((alpha - beta) - 1.0).abs() > 1e-9 {
            return Err(LrpError::InvalidRule(format!(
                "alpha-beta needs alpha - beta = 1, got alpha = {alpha}, beta = {beta} (difference {})",
                alpha - beta
            )));
        }
        Ok(Self { alpha, beta })
    }

    /// The common choice alpha = 2, beta = 1 (Zennit's default).
    pub fn alpha2_beta1() -> Self {
        Self {
            alpha: 2.0,
            beta: 1.0,
        }
    }

    /// Alpha.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Beta.
    pub fn beta(&self) -> f64 {
        self.beta
    }
}

impl Default for AlphaBeta {
    fn default() -> Self {
        Self::alpha2_beta1()
    }
}

impl Rule for AlphaBeta {
    fn name(&self) -> String {
        format!("alpha{}-beta{}", self.alpha, self.beta)
    }

    fn propagation(&self) -> Propagation {
        Propagation::Terms {
            groups: vec![
                Group::new(vec![
                    Term::new(I::Positive, P::Positive, P::Positive),
                    Term::new(I::Negative, P::Negative, P::Zero),
                ])
                .coefficient(self.alpha as f32),
                Group::new(vec![
                    Term::new(I::Positive, P::Negative, P::Negative),
                    Term::new(I::Negative, P::Positive, P::Zero),
                ])
                .coefficient(-(self.beta as f32)),
            ],
            epsilon: DEFAULT_STABILIZER,
        }
    }
}

/// The generalised LRP-gamma rule (Zennit's `Gamma`): it favours positive contributions by
/// `gamma` and handles negative inputs and outputs. Outputs with a positive unmodified value
/// distribute relevance through `f(x+; w + gamma w+) + f(x-; w + gamma w-)`, outputs with a
/// negative value through `f(x+; w + gamma w-) + f(x-; w + gamma w+)`; zero outputs distribute
/// nothing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gamma {
    gamma: f64,
}

impl Gamma {
    /// Gamma rule; `gamma` must be finite and non-negative.
    pub fn new(gamma: f64) -> Result<Self> {
        if !(gamma.is_finite() && gamma >= 0.0) {
            return Err(LrpError::InvalidRule(format!(
                "gamma must be finite and >= 0, got {gamma}"
            )));
        }
        Ok(Self { gamma })
    }

    /// Gamma.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }
}

impl Default for Gamma {
    /// Zennit's default, `gamma = 0.25`.
    fn default() -> Self {
        Self { gamma: 0.25 }
    }
}

impl Rule for Gamma {
    fn name(&self) -> String {
        format!("gamma({})", self.gamma)
    }

    fn propagation(&self) -> Propagation {
        let g = self.gamma as f32;
        Propagation::Terms {
            groups: vec![
                Group::new(vec![
                    Term::new(I::Positive, P::AddPositive(g), P::AddPositive(g)),
                    Term::new(I::Negative, P::AddNegative(g), P::Zero),
                ])
                .gate(Gate::PositiveOutput),
                Group::new(vec![
                    Term::new(I::Positive, P::AddNegative(g), P::AddNegative(g)),
                    Term::new(I::Negative, P::AddPositive(g), P::Zero),
                ])
                .gate(Gate::NegativeOutput),
            ],
            epsilon: DEFAULT_STABILIZER,
        }
    }
}

/// LRP-z^B (z-box) for bounded inputs (usually the first layer on pixels):
/// `z = f(x; w, b) - f(l; w+, b+) - f(h; w-, b-)`,
/// `R_in = x * T_w(s) - l * T_{w+}(s) - h * T_{w-}(s)`.
#[derive(Clone, Debug, PartialEq)]
pub struct ZBox {
    low: Bound,
    high: Bound,
}

impl ZBox {
    /// Z-box rule with the lowest and highest possible input values (scalars, per channel, or
    /// per element). An error if a value is not finite or a low bound exceeds its high bound.
    pub fn new(low: impl Into<Bound>, high: impl Into<Bound>) -> Result<Self> {
        let (low, high) = (low.into(), high.into());
        let (l, h) = (low.values(), high.values());
        if l.iter().chain(&h).any(|v| !v.is_finite()) {
            return Err(LrpError::InvalidRule(format!(
                "z-box bounds must be finite, got low = {l:?}, high = {h:?}"
            )));
        }
        let comparable = l.len() == h.len() || l.len() == 1 || h.len() == 1;
        if comparable {
            let n = l.len().max(h.len());
            for i in 0..n {
                let (lo, hi) = (l[i.min(l.len() - 1)], h[i.min(h.len() - 1)]);
                if lo > hi {
                    return Err(LrpError::InvalidRule(format!(
                        "z-box low bound {lo} exceeds high bound {hi} (index {i})"
                    )));
                }
            }
        }
        Ok(Self { low, high })
    }

    /// The lower bound.
    pub fn low(&self) -> &Bound {
        &self.low
    }

    /// The upper bound.
    pub fn high(&self) -> &Bound {
        &self.high
    }
}

impl Rule for ZBox {
    fn name(&self) -> String {
        "z-box".into()
    }

    fn propagation(&self) -> Propagation {
        Propagation::Terms {
            groups: vec![Group::new(vec![
                Term::identity(),
                Term::new(I::Bound(self.low.clone()), P::Positive, P::Positive).negated(),
                Term::new(I::Bound(self.high.clone()), P::Negative, P::Negative).negated(),
            ])],
            epsilon: DEFAULT_STABILIZER,
        }
    }
}

/// The flat rule: relevance is spread uniformly over each output's receptive field,
/// `R_in = T_1(R / f(1; 1, 0))` (all-ones input and weights, no bias).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Flat;

impl Rule for Flat {
    fn name(&self) -> String {
        "flat".into()
    }

    fn propagation(&self) -> Propagation {
        Propagation::Terms {
            groups: vec![Group::new(vec![Term::new(I::Ones, P::Ones, P::Zero)])],
            epsilon: DEFAULT_STABILIZER,
        }
    }
}

/// The w-square rule: `R_in = T_{w^2}(R / f(1; w^2, b^2))`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WSquare;

impl Rule for WSquare {
    fn name(&self) -> String {
        "w-square".into()
    }

    fn propagation(&self) -> Propagation {
        Propagation::Terms {
            groups: vec![Group::new(vec![Term::new(I::Ones, P::Square, P::Square)])],
            epsilon: DEFAULT_STABILIZER,
        }
    }
}

/// Passes relevance unchanged (for layers whose input and output shapes agree, e.g. batch
/// norm).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pass;

impl Rule for Pass {
    fn name(&self) -> String {
        "pass".into()
    }

    fn propagation(&self) -> Propagation {
        Propagation::Pass
    }
}

/// Any rule with the layer biases ignored (Zennit's `zero_params=['bias']`): every bias
/// modifier becomes zero. The gate of the gamma rule still reads the unmodified output.
#[derive(Clone, Debug)]
pub struct IgnoreBias<R>(pub R);

impl<R: Rule> Rule for IgnoreBias<R> {
    fn name(&self) -> String {
        format!("{} (no bias)", self.0.name())
    }

    fn propagation(&self) -> Propagation {
        self.0.propagation().without_bias()
    }
}

/// Any rule with another stabiliser `eps` in its denominators `z + eps * sign0(z)` (Zennit's
/// `stabilizer` argument; for the epsilon rule this is epsilon itself).
#[derive(Clone, Debug)]
pub struct Stabilized<R> {
    /// The rule.
    pub rule: R,
    /// The stabiliser.
    pub epsilon: f64,
}

impl<R: Rule> Rule for Stabilized<R> {
    fn name(&self) -> String {
        format!("{} (stabilizer {})", self.rule.name(), self.epsilon)
    }

    fn propagation(&self) -> Propagation {
        match self.rule.propagation() {
            Propagation::Terms { groups, .. } => Propagation::Terms {
                groups,
                epsilon: self.epsilon,
            },
            Propagation::Pass => Propagation::Pass,
        }
    }
}

/// Convenience methods on every rule.
pub trait RuleExt: Rule + Sized {
    /// The same rule with layer biases ignored.
    fn ignore_bias(self) -> IgnoreBias<Self> {
        IgnoreBias(self)
    }

    /// The same rule with stabiliser `epsilon` (must be finite and `>= 0`).
    fn with_stabilizer(self, epsilon: f64) -> Result<Stabilized<Self>> {
        if !(epsilon.is_finite() && epsilon >= 0.0) {
            return Err(LrpError::InvalidRule(format!(
                "the stabilizer must be finite and >= 0, got {epsilon}"
            )));
        }
        Ok(Stabilized {
            rule: self,
            epsilon,
        })
    }
}

impl<R: Rule> RuleExt for R {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_parameters_are_errors() {
        let err = AlphaBeta::new(2.0, 0.5).unwrap_err().to_string();
        assert!(
            err.contains("alpha - beta = 1") && err.contains("2") && err.contains("0.5"),
            "{err}"
        );
        assert!(
            AlphaBeta::new(-1.0, -2.0)
                .unwrap_err()
                .to_string()
                .contains(">= 0")
        );
        assert!(AlphaBeta::new(1.0, 0.0).is_ok());
        assert!(AlphaBeta::new(1.1, 0.1).is_ok());
        assert!(Epsilon::new(-1.0).is_err());
        assert!(Epsilon::new(f64::NAN).is_err());
        assert!(Gamma::new(-0.1).is_err());
        assert!(
            ZBox::new(1.0, 0.0)
                .unwrap_err()
                .to_string()
                .contains("exceeds")
        );
        assert!(
            ZBox::new(
                Bound::PerChannel(vec![0.0, 0.0]),
                Bound::PerChannel(vec![1.0, -1.0])
            )
            .is_err()
        );
        assert!(ZBox::new(f32::INFINITY, 1.0).is_err());
    }

    #[test]
    fn defaults_match_zennit() {
        assert_eq!(Epsilon::default().epsilon(), 1e-6);
        assert_eq!(Gamma::default().gamma(), 0.25);
        assert_eq!(AlphaBeta::default().alpha(), 2.0);
        assert_eq!(AlphaBeta::default().beta(), 1.0);
    }

    #[test]
    fn ignore_bias_zeroes_every_bias_modifier() {
        let Propagation::Terms { groups, .. } = Gamma::default().ignore_bias().propagation() else {
            panic!("gamma has terms")
        };
        assert!(
            groups
                .iter()
                .flat_map(|g| &g.terms)
                .all(|t| t.bias.is_zero())
        );
        assert!(matches!(
            Pass.ignore_bias().propagation(),
            Propagation::Pass
        ));
    }

    #[test]
    fn stabilizer_can_be_replaced() {
        let Propagation::Terms { epsilon, groups } =
            ZPlus.with_stabilizer(1e-3).unwrap().propagation()
        else {
            panic!("z-plus has terms")
        };
        assert_eq!(epsilon, 1e-3);
        assert_eq!(groups.len(), 1);
        assert!(ZPlus.with_stabilizer(-1.0).is_err());
        assert!(ZPlus.with_stabilizer(f64::INFINITY).is_err());
    }
}
