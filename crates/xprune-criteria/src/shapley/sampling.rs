//! Permutation sampling of Shapley values: walking random orders, the standard error of the
//! estimates, and the adaptive stopping rule.

use crate::shapley::game::{CoalitionGame, Pool, PoolError, ShapleyError, eval_one, mean};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Adaptive permutation sampling: start with `initial` draws and double the number of draws
/// until the estimates are precise enough for the group's ranking, or `max` draws are done.
///
/// A draw is one random order (with `antithetic`, the order and its reverse, counted as one
/// draw since the two are correlated). After each round the standard error of every player's
/// value (over draws) is compared with the spread of the values (their standard deviation
/// over the players): sampling stops once every standard error is at most
/// `tolerance * spread`. Doubling continues the same random stream, so with a given seed the
/// estimate after `m` draws equals fixed sampling with `m` draws.
#[derive(Clone, Debug, PartialEq)]
pub struct Adaptive {
    /// Draws of the first round (at least 2, so a standard error exists).
    pub initial: usize,
    /// Largest number of draws (at least `initial`).
    pub max: usize,
    /// Stop when every standard error is at most `tolerance` times the spread of the values.
    pub tolerance: f64,
    /// Also walk each order reversed (antithetic pairs).
    pub antithetic: bool,
    /// Truncation tolerance (see [`ShapleyMethod::Permutations`](crate::shapley::ShapleyMethod)).
    pub truncation: Option<f64>,
}

impl Adaptive {
    /// Checks the configuration.
    pub(crate) fn validate<E>(&self) -> Result<(), ShapleyError<E>> {
        if self.initial < 2 || self.max < self.initial {
            return Err(ShapleyError::Config(format!(
                "adaptive sampling needs 2 <= initial ({}) <= max ({}) draws (or a fixed number of permutations, without a tolerance)",
                self.initial, self.max
            )));
        }
        if !(self.tolerance.is_finite() && self.tolerance > 0.0) {
            return Err(ShapleyError::Config(format!(
                "adaptive tolerance {} must be a finite positive number",
                self.tolerance
            )));
        }
        Ok(())
    }
}

/// The running estimate of permutation sampling.
pub(crate) struct Sampler<'a> {
    n: usize,
    v_all: &'a [f64],
    v_none: &'a [f64],
    full_mean: f64,
    span: f64,
    antithetic: bool,
    truncation: Option<f64>,
    rng: StdRng,
    /// Sums over draws of the per-sample marginal contributions, `[player][sample]`.
    per_sample: Vec<Vec<f64>>,
    /// Per player, the running mean over draws of the draw's sample-mean value and the sum
    /// of squared deviations from it (Welford's algorithm: no cancellation when the draws
    /// agree).
    mean: Vec<f64>,
    m2: Vec<f64>,
    /// Draws so far.
    pub(crate) draws: usize,
}

impl<'a> Sampler<'a> {
    /// A sampler of `n` players with the grand and empty coalition values known.
    pub(crate) fn new(
        n: usize,
        v_all: &'a [f64],
        v_none: &'a [f64],
        antithetic: bool,
        truncation: Option<f64>,
        rng: StdRng,
    ) -> Self {
        let full_mean = mean(v_all);
        Self {
            n,
            v_all,
            v_none,
            full_mean,
            span: (full_mean - mean(v_none)).abs(),
            antithetic,
            truncation,
            rng,
            per_sample: vec![vec![0.0; v_all.len()]; n],
            mean: vec![0.0; n],
            m2: vec![0.0; n],
            draws: 0,
        }
    }

    /// Adds `draws` draws. Their orders are drawn first (from the one random stream, so the
    /// estimate does not depend on how the walks are spread over the pool's games), the
    /// walks run on the pool, and their contributions are added in draw order.
    pub(crate) fn draw<P: Pool>(
        &mut self,
        pool: &mut P,
        draws: usize,
        batch: usize,
        evaluations: &mut usize,
    ) -> Result<(), PoolError<P>> {
        let walks_per_draw = if self.antithetic { 2 } else { 1 };
        let mut orders = Vec::with_capacity(draws * walks_per_draw);
        for _ in 0..draws {
            let mut order: Vec<usize> = (0..self.n).collect();
            order.shuffle(&mut self.rng);
            if self.antithetic {
                let reversed: Vec<usize> = order.iter().rev().copied().collect();
                orders.push(order);
                orders.push(reversed);
            } else {
                orders.push(order);
            }
        }
        let spec = WalkSpec {
            n: self.n,
            v_all: self.v_all,
            v_none: self.v_none,
            full_mean: self.full_mean,
            span: self.span,
            truncation: self.truncation,
            batch,
        };
        let mut contribution = vec![0.0; self.n];
        let mut walked = 0;
        pool.map(
            orders,
            |game, order| spec.walk(game, &order),
            |walk| {
                *evaluations += walk.evaluations;
                for (p, diff) in &walk.diffs {
                    self.add(*p, diff, &mut contribution);
                }
                walked += 1;
                if walked == walks_per_draw {
                    walked = 0;
                    self.draws += 1;
                    let m = self.draws as f64;
                    for (p, c) in contribution.iter_mut().enumerate() {
                        let x = *c / walks_per_draw as f64;
                        let delta = x - self.mean[p];
                        self.mean[p] += delta / m;
                        self.m2[p] += delta * (x - self.mean[p]);
                        *c = 0.0;
                    }
                }
                Ok(())
            },
        )
    }

    /// Adds a player's per-sample marginal contribution `diff` to the sums and its sample
    /// mean to `c`.
    fn add(&mut self, p: usize, diff: &[f64], c: &mut [f64]) {
        let mut total = 0.0;
        for (acc, d) in self.per_sample[p].iter_mut().zip(diff) {
            *acc += d;
            total += d;
        }
        c[p] += total / diff.len() as f64;
    }

    /// The per-sample estimates `[player][sample]`: the mean over walks.
    pub(crate) fn per_sample(&self) -> Vec<Vec<f64>> {
        let walks = (self.draws * if self.antithetic { 2 } else { 1 }) as f64;
        self.per_sample
            .iter()
            .map(|s| s.iter().map(|v| v / walks).collect())
            .collect()
    }

    /// The standard error of every player's sample-mean value over draws, `None` with fewer
    /// than 2 draws.
    pub(crate) fn std_errors(&self) -> Option<Vec<f64>> {
        if self.draws < 2 {
            return None;
        }
        let m = self.draws as f64;
        Some(
            self.m2
                .iter()
                .map(|q| (q.max(0.0) / (m - 1.0) / m).sqrt())
                .collect(),
        )
    }
}

/// What walking an order needs (copied out of the [`Sampler`], so walks can run on other
/// threads while the sampler folds their results).
#[derive(Clone, Copy)]
struct WalkSpec<'a> {
    n: usize,
    v_all: &'a [f64],
    v_none: &'a [f64],
    full_mean: f64,
    span: f64,
    truncation: Option<f64>,
    batch: usize,
}

/// One walked order: the per-sample marginal contributions `(player, with - without)` in
/// walk order, and the coalition evaluations it cost.
struct Walk {
    diffs: Vec<(usize, Vec<f64>)>,
    evaluations: usize,
}

fn diff(with: &[f64], without: &[f64]) -> Vec<f64> {
    with.iter().zip(without).map(|(a, b)| a - b).collect()
}

impl WalkSpec<'_> {
    /// Walks one order on `game` in chunks of `batch` prefix coalitions.
    fn walk<G: CoalitionGame>(
        &self,
        game: &mut G,
        order: &[usize],
    ) -> Result<Walk, ShapleyError<G::Error>> {
        let n = self.n;
        let mut walk = Walk {
            diffs: Vec::with_capacity(n),
            evaluations: 0,
        };
        let mut prev = self.v_none.to_vec();
        let mut present = vec![false; n];
        let mut pos = 0;
        while pos < n {
            let end = (pos + self.batch.max(1)).min(n);
            let mut coalitions = Vec::with_capacity(end - pos);
            for &p in &order[pos..end] {
                present[p] = true;
                coalitions.push(present.clone());
            }
            // The full coalition is already known.
            let known = usize::from(end == n);
            let mut vals = eval_one(
                game,
                &coalitions[..coalitions.len() - known],
                self.batch,
                &mut walk.evaluations,
            )?;
            if known == 1 {
                vals.push(self.v_all.to_vec());
            }
            for (k, &p) in order[pos..end].iter().enumerate() {
                let cur = std::mem::take(&mut vals[k]);
                walk.diffs.push((p, diff(&cur, &prev)));
                prev = cur;
                if let Some(t) = self.truncation
                    && (mean(&prev) - self.full_mean).abs() <= t * self.span
                    && pos + k + 1 < n
                {
                    // Credit the rest of the gap to the player that closed it, so values
                    // still sum to v(all) - v(none) for this order.
                    walk.diffs.push((p, diff(self.v_all, &prev)));
                    return Ok(walk);
                }
            }
            pos = end;
        }
        Ok(walk)
    }
}

/// Whether every standard error is at most `tolerance` times the standard deviation of the
/// values over the players.
pub(crate) fn precise_enough(values: &[f64], std_errors: &[f64], tolerance: f64) -> bool {
    let m = mean(values);
    let spread =
        (values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / values.len().max(1) as f64).sqrt();
    std_errors.iter().all(|s| *s <= tolerance * spread)
}
