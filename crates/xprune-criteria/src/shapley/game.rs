//! Shapley values of a cooperative game whose value is measured per sample, estimated exactly
//! or by permutation sampling, with coalitions evaluated in batches.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// A cooperative game of `players()` players whose value is measured on `samples()` samples.
///
/// `values` evaluates many coalitions at once (each a keep flag per player) and returns, for
/// each coalition, one value per sample. Implementations batch the coalitions (for a network:
/// one forward pass over `coalitions.len() * samples` inputs).
pub trait CoalitionGame {
    /// Error of an evaluation.
    type Error;
    /// Number of players.
    fn players(&self) -> usize;
    /// Number of samples each value is measured on.
    fn samples(&self) -> usize;
    /// Values `[coalition][sample]` of the given coalitions.
    fn values(&mut self, coalitions: &[Vec<bool>]) -> Result<Vec<Vec<f64>>, Self::Error>;
}

/// How Shapley values are computed.
#[derive(Clone, Debug, PartialEq)]
pub enum ShapleyMethod {
    /// Every coalition is evaluated (`2^n` evaluations); exact. Limited to
    /// [`MAX_EXACT_PLAYERS`] players.
    Exact,
    /// Monte Carlo over random player orders: each order costs `n + 1` coalition evaluations
    /// (fewer with truncation).
    Permutations {
        /// Number of random orders (with `antithetic`, each order also runs reversed, so the
        /// cost doubles).
        permutations: usize,
        /// Also walk every sampled order in reverse (antithetic pairs reduce variance).
        antithetic: bool,
        /// Stop walking an order once the coalition's mean value is within
        /// `truncation * |v(all) - v(none)|` of `v(all)`; the remaining players get a zero
        /// marginal contribution for that order. `None` walks every order to the end.
        truncation: Option<f64>,
    },
}

/// The largest game solved by exact enumeration.
pub const MAX_EXACT_PLAYERS: usize = 20;

/// How per-sample Shapley values are reduced to one score per player.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SampleAggregate {
    /// Mean over samples.
    #[default]
    Mean,
    /// Mean plus two standard deviations over samples (favours players that matter a lot for
    /// some samples).
    MeanPlus2Std,
}

/// Shapley values of every player.
#[derive(Clone, Debug, PartialEq)]
pub struct ShapleyValues {
    /// Per-sample values `[player][sample]`.
    pub per_sample: Vec<Vec<f64>>,
    /// One value per player, aggregated over samples.
    pub values: Vec<f64>,
    /// Mean value of the grand coalition (every player present).
    pub full: f64,
    /// Mean value of the empty coalition.
    pub empty: f64,
    /// Number of coalition evaluations (coalitions times batches of samples).
    pub evaluations: usize,
}

/// Errors of the estimators themselves (the game's own errors pass through `G::Error`).
#[derive(Debug, thiserror::Error)]
pub enum ShapleyError<E> {
    /// Exact enumeration asked for too many players.
    #[error(
        "exact Shapley enumeration of {0} players needs 2^{0} coalitions; use permutation sampling above {MAX_EXACT_PLAYERS} players"
    )]
    TooManyPlayers(usize),
    /// Bad configuration (no permutations, bad truncation, empty game).
    #[error("invalid Shapley configuration: {0}")]
    Config(String),
    /// The game returned values of the wrong size or non-finite values.
    #[error("the game returned {0}")]
    BadValues(String),
    /// The game's evaluation failed.
    #[error(transparent)]
    Game(E),
}

fn check_values<E>(
    values: &[Vec<f64>],
    coalitions: usize,
    samples: usize,
) -> Result<(), ShapleyError<E>> {
    if values.len() != coalitions || values.iter().any(|v| v.len() != samples) {
        return Err(ShapleyError::BadValues(format!(
            "{} rows for {coalitions} coalitions of {samples} samples",
            values.len()
        )));
    }
    if let Some(v) = values.iter().flatten().find(|v| !v.is_finite()) {
        return Err(ShapleyError::BadValues(format!("a non-finite value {v}")));
    }
    Ok(())
}

fn eval<G: CoalitionGame>(
    game: &mut G,
    coalitions: &[Vec<bool>],
    batch: usize,
    evaluations: &mut usize,
) -> Result<Vec<Vec<f64>>, ShapleyError<G::Error>> {
    let mut out = Vec::with_capacity(coalitions.len());
    for chunk in coalitions.chunks(batch.max(1)) {
        let v = game.values(chunk).map_err(ShapleyError::Game)?;
        check_values(&v, chunk.len(), game.samples())?;
        *evaluations += chunk.len();
        out.extend(v);
    }
    Ok(out)
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn aggregate(per_sample: &[Vec<f64>], how: SampleAggregate) -> Vec<f64> {
    per_sample
        .iter()
        .map(|s| {
            let m = mean(s);
            match how {
                SampleAggregate::Mean => m,
                SampleAggregate::MeanPlus2Std => {
                    let var = if s.len() > 1 {
                        s.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (s.len() - 1) as f64
                    } else {
                        0.0
                    };
                    m + 2.0 * var.sqrt()
                }
            }
        })
        .collect()
}

/// Computes the Shapley values of `game`.
///
/// `batch` is the number of coalitions handed to [`CoalitionGame::values`] at once; `seed`
/// drives the random orders of permutation sampling.
pub fn shapley_values<G: CoalitionGame>(
    game: &mut G,
    method: &ShapleyMethod,
    aggregate_by: SampleAggregate,
    batch: usize,
    seed: u64,
) -> Result<ShapleyValues, ShapleyError<G::Error>> {
    let n = game.players();
    let samples = game.samples();
    if n == 0 || samples == 0 {
        return Err(ShapleyError::Config(format!(
            "a game needs players and samples, got {n} players and {samples} samples"
        )));
    }
    let mut evaluations = 0;
    let ends = eval(
        game,
        &[vec![true; n], vec![false; n]],
        batch,
        &mut evaluations,
    )?;
    let (v_all, v_none) = (ends[0].clone(), ends[1].clone());
    let mut per_sample = vec![vec![0.0; samples]; n];
    match method {
        ShapleyMethod::Exact => {
            if n > MAX_EXACT_PLAYERS {
                return Err(ShapleyError::TooManyPlayers(n));
            }
            // weight(|S|) = |S|! (n - |S| - 1)! / n!
            let mut weight = vec![0.0f64; n];
            for (s, w) in weight.iter_mut().enumerate() {
                // Computed as 1 / (n * C(n-1, s)) to stay exact for moderate n.
                let mut binom = 1.0f64;
                for k in 0..s {
                    binom = binom * (n - 1 - k) as f64 / (k + 1) as f64;
                }
                *w = 1.0 / (n as f64 * binom);
            }
            let total = 1usize << n;
            let chunk = batch.max(1) * 8;
            let mut start = 0;
            // value of each coalition, indexed by bitmask, filled chunk by chunk
            let mut values: Vec<Vec<f64>> = Vec::with_capacity(total);
            while start < total {
                let end = (start + chunk).min(total);
                let coalitions: Vec<Vec<bool>> = (start..end)
                    .map(|mask| (0..n).map(|i| mask >> i & 1 == 1).collect())
                    .collect();
                values.extend(eval(game, &coalitions, batch, &mut evaluations)?);
                start = end;
            }
            for mask in 0..total {
                let size = (mask as u64).count_ones() as usize;
                for i in 0..n {
                    if mask >> i & 1 == 0 {
                        let with = &values[mask | 1 << i];
                        let without = &values[mask];
                        let w = weight[size];
                        for (acc, (a, b)) in per_sample[i].iter_mut().zip(with.iter().zip(without))
                        {
                            *acc += w * (a - b);
                        }
                    }
                }
            }
        }
        ShapleyMethod::Permutations {
            permutations,
            antithetic,
            truncation,
        } => {
            if *permutations == 0 {
                return Err(ShapleyError::Config(
                    "permutation sampling needs at least one permutation".into(),
                ));
            }
            if let Some(t) = truncation
                && !(t.is_finite() && *t >= 0.0)
            {
                return Err(ShapleyError::Config(format!(
                    "truncation tolerance {t} must be a finite non-negative number"
                )));
            }
            let mut rng = StdRng::seed_from_u64(seed);
            let mut orders = Vec::new();
            for _ in 0..*permutations {
                let mut order: Vec<usize> = (0..n).collect();
                order.shuffle(&mut rng);
                if *antithetic {
                    let mut rev = order.clone();
                    rev.reverse();
                    orders.push(order);
                    orders.push(rev);
                } else {
                    orders.push(order);
                }
            }
            let full_mean = mean(&v_all);
            let span = (full_mean - mean(&v_none)).abs();
            for order in &orders {
                let mut prev = v_none.clone();
                let mut present = vec![false; n];
                let mut pos = 0;
                // Walk the order in chunks of `batch` prefix coalitions.
                while pos < n {
                    let end = (pos + batch.max(1)).min(n);
                    let mut coalitions = Vec::with_capacity(end - pos);
                    for &p in &order[pos..end] {
                        present[p] = true;
                        coalitions.push(present.clone());
                    }
                    // The full coalition is already known.
                    let need_last = end < n;
                    let mut vals = if need_last {
                        eval(game, &coalitions, batch, &mut evaluations)?
                    } else {
                        let mut v = eval(
                            game,
                            &coalitions[..coalitions.len() - 1],
                            batch,
                            &mut evaluations,
                        )?;
                        v.push(v_all.clone());
                        v
                    };
                    let mut truncated = false;
                    for (k, &p) in order[pos..end].iter().enumerate() {
                        let cur = std::mem::take(&mut vals[k]);
                        for (acc, (a, b)) in per_sample[p].iter_mut().zip(cur.iter().zip(&prev)) {
                            *acc += a - b;
                        }
                        prev = cur;
                        if let Some(t) = truncation
                            && (mean(&prev) - full_mean).abs() <= t * span
                            && pos + k + 1 < n
                        {
                            // Credit the rest of the gap to the player that closed it, so
                            // values still sum to v(all) - v(none) for this order.
                            for (acc, (a, b)) in
                                per_sample[p].iter_mut().zip(v_all.iter().zip(&prev))
                            {
                                *acc += a - b;
                            }
                            truncated = true;
                            break;
                        }
                    }
                    if truncated {
                        break;
                    }
                    pos = end;
                }
            }
            let m = orders.len() as f64;
            for s in per_sample.iter_mut() {
                for v in s.iter_mut() {
                    *v /= m;
                }
            }
        }
    }
    let values = aggregate(&per_sample, aggregate_by);
    Ok(ShapleyValues {
        per_sample,
        values,
        full: mean(&v_all),
        empty: mean(&v_none),
        evaluations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A game with pairwise interactions: v(S) = sum_i a_i + sum_{i<j in S} b_ij, per sample
    /// scaled by a sample factor; its Shapley values are a_i + sum_j b_ij / 2 exactly.
    struct Quadratic {
        a: Vec<f64>,
        b: Vec<Vec<f64>>,
        scale: Vec<f64>,
        calls: usize,
    }

    impl Quadratic {
        fn new(n: usize, seed: u64) -> Self {
            use rand::RngExt;
            let mut rng = StdRng::seed_from_u64(seed);
            let a = (0..n).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect();
            let mut b = vec![vec![0.0; n]; n];
            for i in 0..n {
                for j in i + 1..n {
                    let v = rng.random::<f64>() - 0.5;
                    b[i][j] = v;
                    b[j][i] = v;
                }
            }
            Self {
                a,
                b,
                scale: vec![1.0, 2.0, 0.5],
                calls: 0,
            }
        }

        fn truth(&self) -> Vec<f64> {
            let n = self.a.len();
            let m = self.scale.iter().sum::<f64>() / self.scale.len() as f64;
            (0..n)
                .map(|i| m * (self.a[i] + (0..n).map(|j| self.b[i][j]).sum::<f64>() / 2.0))
                .collect()
        }
    }

    impl CoalitionGame for Quadratic {
        type Error = std::convert::Infallible;
        fn players(&self) -> usize {
            self.a.len()
        }
        fn samples(&self) -> usize {
            self.scale.len()
        }
        fn values(&mut self, coalitions: &[Vec<bool>]) -> Result<Vec<Vec<f64>>, Self::Error> {
            self.calls += 1;
            Ok(coalitions
                .iter()
                .map(|c| {
                    let n = c.len();
                    let mut v = 0.0;
                    for i in 0..n {
                        if c[i] {
                            v += self.a[i];
                            for j in i + 1..n {
                                if c[j] {
                                    v += self.b[i][j];
                                }
                            }
                        }
                    }
                    self.scale.iter().map(|s| s * v).collect()
                })
                .collect())
        }
    }

    fn max_err(a: &[f64], b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn exact_matches_closed_form_and_is_efficient() {
        let mut g = Quadratic::new(8, 1);
        let truth = g.truth();
        let r =
            shapley_values(&mut g, &ShapleyMethod::Exact, SampleAggregate::Mean, 16, 0).unwrap();
        assert!(
            max_err(&r.values, &truth) < 1e-12,
            "{:?} vs {truth:?}",
            r.values
        );
        let sum: f64 = r.values.iter().sum();
        assert!((sum - (r.full - r.empty)).abs() < 1e-12);
        assert_eq!(r.evaluations, 2 + 256);
    }

    #[test]
    fn sampling_converges_to_exact() {
        let truth = Quadratic::new(9, 2).truth();
        let err = |perms: usize| {
            // average error over several seeds to make the trend robust
            (0..8)
                .map(|seed| {
                    let mut g = Quadratic::new(9, 2);
                    let method = ShapleyMethod::Permutations {
                        permutations: perms,
                        antithetic: false,
                        truncation: None,
                    };
                    let r =
                        shapley_values(&mut g, &method, SampleAggregate::Mean, 4, seed).unwrap();
                    // efficiency holds for every sampled order
                    let sum: f64 = r.values.iter().sum();
                    assert!((sum - (r.full - r.empty)).abs() < 1e-9);
                    max_err(&r.values, &truth)
                })
                .sum::<f64>()
                / 8.0
        };
        let (e4, e64, e512) = (err(4), err(64), err(512));
        assert!(
            e64 < e4 && e512 < e64,
            "errors {e4} {e64} {e512} must shrink"
        );
        assert!(e512 < 0.05, "error with 512 permutations: {e512}");
    }

    #[test]
    fn antithetic_pairs_and_truncation_stay_efficient() {
        let mut g = Quadratic::new(6, 3);
        let method = ShapleyMethod::Permutations {
            permutations: 10,
            antithetic: true,
            truncation: Some(0.0),
        };
        let r = shapley_values(&mut g, &method, SampleAggregate::Mean, 3, 5).unwrap();
        let sum: f64 = r.values.iter().sum();
        assert!((sum - (r.full - r.empty)).abs() < 1e-9);
        let mut g = Quadratic::new(6, 3);
        let r2 = shapley_values(&mut g, &method, SampleAggregate::Mean, 3, 5).unwrap();
        assert_eq!(r, r2, "same seed, same estimate");
    }

    #[test]
    fn configuration_errors() {
        let mut g = Quadratic::new(21, 0);
        assert!(matches!(
            shapley_values(&mut g, &ShapleyMethod::Exact, SampleAggregate::Mean, 8, 0),
            Err(ShapleyError::TooManyPlayers(21))
        ));
        let m = ShapleyMethod::Permutations {
            permutations: 0,
            antithetic: false,
            truncation: None,
        };
        assert!(matches!(
            shapley_values(&mut g, &m, SampleAggregate::Mean, 8, 0),
            Err(ShapleyError::Config(_))
        ));
    }

    #[test]
    fn mean_plus_two_std() {
        let per = vec![vec![1.0, 3.0]];
        let v = aggregate(&per, SampleAggregate::MeanPlus2Std);
        assert!((v[0] - (2.0 + 2.0 * 2f64.sqrt())).abs() < 1e-12);
    }
}
