//! Shapley values of a cooperative game whose value is measured per sample, estimated exactly
//! or by permutation sampling, with coalitions evaluated in batches.

use crate::shapley::sampling::{Adaptive, Sampler, precise_enough};
use rand::SeedableRng;
use rand::rngs::StdRng;

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
    /// Permutation sampling that doubles the number of draws until every value is precise
    /// enough for the ranking (see [`Adaptive`]).
    Adaptive(Adaptive),
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
    /// The standard error of every value of [`values`](Self::values) over the draws of
    /// permutation sampling (for [`SampleAggregate::MeanPlus2Std`], of its mean term):
    /// zeros for exact enumeration, `None` with a single draw.
    pub std_errors: Option<Vec<f64>>,
    /// Independent draws of permutation sampling (an antithetic pair counts once); 0 for
    /// exact enumeration.
    pub draws: usize,
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
    /// One of several games evaluated in parallel ([`shapley_values_on`]) panicked.
    #[error("game {worker} of the parallel evaluation failed: {message}")]
    Worker {
        /// The game's index.
        worker: usize,
        /// What went wrong.
        message: String,
    },
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

/// The error of a pool's games.
pub(crate) type PoolError<P> = ShapleyError<<<P as Pool>::Game as CoalitionGame>::Error>;

/// The games coalitions are evaluated on: one ([`One`]) or several in parallel ([`Many`]).
/// `map` runs `work` on every item with one of the games and folds the results in item
/// order, so the outcome never depends on the number of games.
pub(crate) trait Pool {
    /// The game type.
    type Game: CoalitionGame;
    /// Players of the (identical) games.
    fn players(&self) -> usize;
    /// Samples of the (identical) games.
    fn samples(&self) -> usize;
    /// Maps `items` with the games and folds the results in item order.
    fn map<T: Send, R: Send>(
        &mut self,
        items: Vec<T>,
        work: impl Fn(&mut Self::Game, T) -> Result<R, PoolError<Self>> + Sync,
        fold: impl FnMut(R) -> Result<(), PoolError<Self>>,
    ) -> Result<(), PoolError<Self>>;
}

/// One game, evaluated on the calling thread.
pub(crate) struct One<'a, G>(pub(crate) &'a mut G);

impl<G: CoalitionGame> Pool for One<'_, G> {
    type Game = G;
    fn players(&self) -> usize {
        self.0.players()
    }
    fn samples(&self) -> usize {
        self.0.samples()
    }
    fn map<T: Send, R: Send>(
        &mut self,
        items: Vec<T>,
        work: impl Fn(&mut G, T) -> Result<R, PoolError<Self>> + Sync,
        mut fold: impl FnMut(R) -> Result<(), PoolError<Self>>,
    ) -> Result<(), PoolError<Self>> {
        for item in items {
            fold(work(self.0, item)?)?;
        }
        Ok(())
    }
}

/// Several identical games, each evaluated in a thread of its own (see
/// [`crate::devices::stream`]).
pub(crate) struct Many<'a, G>(pub(crate) &'a mut [G]);

impl<G> Pool for Many<'_, G>
where
    G: CoalitionGame + Send,
    G::Error: Send,
{
    type Game = G;
    fn players(&self) -> usize {
        self.0[0].players()
    }
    fn samples(&self) -> usize {
        self.0[0].samples()
    }
    fn map<T: Send, R: Send>(
        &mut self,
        items: Vec<T>,
        work: impl Fn(&mut G, T) -> Result<R, PoolError<Self>> + Sync,
        fold: impl FnMut(R) -> Result<(), PoolError<Self>>,
    ) -> Result<(), PoolError<Self>> {
        crate::devices::stream(
            self.0.iter_mut().collect(),
            items,
            Ok,
            |game: &mut &mut G, item| work(game, item),
            fold,
            |worker, message| ShapleyError::Worker { worker, message },
        )
    }
}

/// Values of `coalitions`, in chunks of `batch` handed to the pool's games.
fn eval<P: Pool>(
    pool: &mut P,
    coalitions: &[Vec<bool>],
    batch: usize,
    evaluations: &mut usize,
) -> Result<Vec<Vec<f64>>, PoolError<P>> {
    let chunks: Vec<Vec<Vec<bool>>> = coalitions
        .chunks(batch.max(1))
        .map(|c| c.to_vec())
        .collect();
    let mut out = Vec::with_capacity(coalitions.len());
    pool.map(
        chunks,
        |game, chunk| checked_values(game, &chunk),
        |v| {
            out.extend(v);
            Ok(())
        },
    )?;
    *evaluations += coalitions.len();
    Ok(out)
}

/// One `values` call, checked.
fn checked_values<G: CoalitionGame>(
    game: &mut G,
    coalitions: &[Vec<bool>],
) -> Result<Vec<Vec<f64>>, ShapleyError<G::Error>> {
    let v = game.values(coalitions).map_err(ShapleyError::Game)?;
    check_values(&v, coalitions.len(), game.samples())?;
    Ok(v)
}

/// Values of `coalitions` on one game, in chunks of `batch`.
pub(crate) fn eval_one<G: CoalitionGame>(
    game: &mut G,
    coalitions: &[Vec<bool>],
    batch: usize,
    evaluations: &mut usize,
) -> Result<Vec<Vec<f64>>, ShapleyError<G::Error>> {
    let mut out = Vec::with_capacity(coalitions.len());
    for chunk in coalitions.chunks(batch.max(1)) {
        out.extend(checked_values(game, chunk)?);
        *evaluations += chunk.len();
    }
    Ok(out)
}

pub(crate) fn mean(v: &[f64]) -> f64 {
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
    compute(&mut One(game), method, aggregate_by, batch, seed)
}

/// [`shapley_values`] with the coalitions evaluated on several identical games in parallel,
/// one thread per game (for example one [`GraphGame`](crate::shapley::GraphGame) per device):
/// permutation walks, or chunks of `batch` coalitions for exact enumeration, are dealt
/// round-robin to the games and their results combined in order, so the values equal those
/// of [`shapley_values`] on one of the games (bit for bit when the games compute identically).
/// An error if `games` is empty or the games differ in players or samples.
pub fn shapley_values_on<G>(
    games: &mut [G],
    method: &ShapleyMethod,
    aggregate_by: SampleAggregate,
    batch: usize,
    seed: u64,
) -> Result<ShapleyValues, ShapleyError<G::Error>>
where
    G: CoalitionGame + Send,
    G::Error: Send,
{
    let Some(first) = games.first() else {
        return Err(ShapleyError::Config("no game to evaluate on".into()));
    };
    let (n, samples) = (first.players(), first.samples());
    if let Some((k, g)) = games
        .iter()
        .enumerate()
        .find(|(_, g)| g.players() != n || g.samples() != samples)
    {
        return Err(ShapleyError::Config(format!(
            "game {k} has {} players and {} samples, game 0 {n} and {samples}",
            g.players(),
            g.samples()
        )));
    }
    compute(&mut Many(games), method, aggregate_by, batch, seed)
}

fn compute<P: Pool>(
    game: &mut P,
    method: &ShapleyMethod,
    aggregate_by: SampleAggregate,
    batch: usize,
    seed: u64,
) -> Result<ShapleyValues, PoolError<P>> {
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
    let (mut std_errors, mut draws) = (Some(vec![0.0; n]), 0);
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
            // The value of each coalition, indexed by bitmask, chunk by chunk of `batch`.
            let chunk = batch.max(1);
            let ranges: Vec<(usize, usize)> = (0..total)
                .step_by(chunk)
                .map(|start| (start, (start + chunk).min(total)))
                .collect();
            let mut values: Vec<Vec<f64>> = Vec::with_capacity(total);
            game.map(
                ranges,
                |g, (start, end)| {
                    let coalitions: Vec<Vec<bool>> = (start..end)
                        .map(|mask| (0..n).map(|i| mask >> i & 1 == 1).collect())
                        .collect();
                    checked_values(g, &coalitions)
                },
                |v| {
                    values.extend(v);
                    Ok(())
                },
            )?;
            evaluations += total;
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
            check_truncation(*truncation)?;
            let mut sampler = Sampler::new(
                n,
                &v_all,
                &v_none,
                *antithetic,
                *truncation,
                StdRng::seed_from_u64(seed),
            );
            sampler.draw(game, *permutations, batch, &mut evaluations)?;
            per_sample = sampler.per_sample();
            std_errors = sampler.std_errors();
            draws = sampler.draws;
        }
        ShapleyMethod::Adaptive(a) => {
            a.validate()?;
            check_truncation(a.truncation)?;
            let mut sampler = Sampler::new(
                n,
                &v_all,
                &v_none,
                a.antithetic,
                a.truncation,
                StdRng::seed_from_u64(seed),
            );
            sampler.draw(game, a.initial, batch, &mut evaluations)?;
            loop {
                per_sample = sampler.per_sample();
                std_errors = sampler.std_errors();
                let values = aggregate(&per_sample, SampleAggregate::Mean);
                let se = std_errors.as_deref().unwrap_or(&[]);
                if sampler.draws >= a.max || precise_enough(&values, se, a.tolerance) {
                    break;
                }
                let more = sampler.draws.min(a.max - sampler.draws);
                sampler.draw(game, more, batch, &mut evaluations)?;
            }
            draws = sampler.draws;
        }
    }
    let values = aggregate(&per_sample, aggregate_by);
    Ok(ShapleyValues {
        per_sample,
        values,
        full: mean(&v_all),
        empty: mean(&v_none),
        evaluations,
        std_errors,
        draws,
    })
}

fn check_truncation<E>(truncation: Option<f64>) -> Result<(), ShapleyError<E>> {
    match truncation {
        Some(t) if !(t.is_finite() && t >= 0.0) => Err(ShapleyError::Config(format!(
            "truncation tolerance {t} must be a finite non-negative number"
        ))),
        _ => Ok(()),
    }
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

    /// The quadratic game plus third-order interactions `c_ijk` (credited `c_ijk / 3` to each
    /// of the three), so that antithetic pairs are not exact.
    struct Cubic {
        quadratic: Quadratic,
        c: Vec<(usize, usize, usize, f64)>,
    }

    impl Cubic {
        fn new(n: usize, seed: u64) -> Self {
            use rand::RngExt;
            let mut rng = StdRng::seed_from_u64(seed + 100);
            let mut c = Vec::new();
            for i in 0..n {
                for j in i + 1..n {
                    for k in j + 1..n {
                        c.push((i, j, k, 2.0 * rng.random::<f64>() - 1.0));
                    }
                }
            }
            Self {
                quadratic: Quadratic::new(n, seed),
                c,
            }
        }

        fn truth(&self) -> Vec<f64> {
            let q = &self.quadratic;
            let m = q.scale.iter().sum::<f64>() / q.scale.len() as f64;
            let mut t = q.truth();
            for &(i, j, k, v) in &self.c {
                for p in [i, j, k] {
                    t[p] += m * v / 3.0;
                }
            }
            t
        }
    }

    impl CoalitionGame for Cubic {
        type Error = std::convert::Infallible;
        fn players(&self) -> usize {
            self.quadratic.players()
        }
        fn samples(&self) -> usize {
            self.quadratic.samples()
        }
        fn values(&mut self, coalitions: &[Vec<bool>]) -> Result<Vec<Vec<f64>>, Self::Error> {
            let mut v = self.quadratic.values(coalitions)?;
            for (row, c) in v.iter_mut().zip(coalitions) {
                let extra: f64 = self
                    .c
                    .iter()
                    .filter(|(i, j, k, _)| c[*i] && c[*j] && c[*k])
                    .map(|t| t.3)
                    .sum();
                for (x, s) in row.iter_mut().zip(&self.quadratic.scale) {
                    *x += s * extra;
                }
            }
            Ok(v)
        }
    }

    #[test]
    fn standard_errors_cover_the_exact_values() {
        // Over many seeds, about 95% of the estimates are within 2 standard errors of the
        // exact values, with and without antithetic pairs (a pair counts as one draw: counting
        // its two orders as two independent draws would make the errors too small).
        for antithetic in [false, true] {
            let truth = Cubic::new(8, 1).truth();
            let (mut inside, mut total) = (0, 0);
            let mut se_sum = 0.0;
            for seed in 0..60 {
                let mut g = Cubic::new(8, 1);
                let method = ShapleyMethod::Permutations {
                    permutations: 12,
                    antithetic,
                    truncation: None,
                };
                let r = shapley_values(&mut g, &method, SampleAggregate::Mean, 4, seed).unwrap();
                assert_eq!(r.draws, 12);
                let se = r.std_errors.unwrap();
                for ((v, t), s) in r.values.iter().zip(&truth).zip(&se) {
                    assert!(*s > 0.0);
                    se_sum += s;
                    total += 1;
                    if (v - t).abs() <= 2.0 * s {
                        inside += 1;
                    }
                }
            }
            let coverage = inside as f64 / total as f64;
            assert!(
                (0.88..=0.995).contains(&coverage),
                "antithetic {antithetic}: coverage {coverage} (mean SE {})",
                se_sum / total as f64
            );
        }
        // Antithetic pairs are exact for a game of pairwise interactions: zero error, zero SE.
        let mut g = Quadratic::new(7, 2);
        let truth = g.truth();
        let method = ShapleyMethod::Permutations {
            permutations: 3,
            antithetic: true,
            truncation: None,
        };
        let r = shapley_values(&mut g, &method, SampleAggregate::Mean, 4, 9).unwrap();
        assert!(max_err(&r.values, &truth) < 1e-12);
        assert!(r.std_errors.unwrap().iter().all(|s| *s < 1e-9));
        // One draw: no standard error; exact enumeration: zeros.
        let one = ShapleyMethod::Permutations {
            permutations: 1,
            antithetic: false,
            truncation: None,
        };
        let r = shapley_values(&mut Cubic::new(6, 0), &one, SampleAggregate::Mean, 4, 0).unwrap();
        assert!(r.std_errors.is_none());
        let r = shapley_values(
            &mut Cubic::new(6, 0),
            &ShapleyMethod::Exact,
            SampleAggregate::Mean,
            4,
            0,
        )
        .unwrap();
        assert_eq!(r.std_errors, Some(vec![0.0; 6]));
        assert_eq!(r.draws, 0);
    }

    #[test]
    fn adaptive_sampling_doubles_until_precise_and_replays_fixed_sampling() {
        let adaptive = |tolerance: f64, max: usize| {
            ShapleyMethod::Adaptive(Adaptive {
                initial: 4,
                max,
                tolerance,
                antithetic: true,
                truncation: None,
            })
        };
        let run = |m: &ShapleyMethod| {
            shapley_values(&mut Cubic::new(10, 3), m, SampleAggregate::Mean, 4, 11).unwrap()
        };
        let loose = run(&adaptive(0.3, 1024));
        let tight = run(&adaptive(0.05, 1024));
        for r in [&loose, &tight] {
            assert!(r.draws.is_power_of_two() && r.draws >= 4, "{}", r.draws);
            assert!(r.draws < 1024, "stopped by the cap at {}", r.draws);
            let se = r.std_errors.as_ref().unwrap();
            assert!(precise_enough(
                &r.values,
                se,
                if r == &loose { 0.3 } else { 0.05 }
            ));
        }
        assert!(
            tight.draws > loose.draws,
            "{} vs {}",
            tight.draws,
            loose.draws
        );
        // Not yet precise one round earlier (it would have stopped there).
        let earlier = run(&ShapleyMethod::Permutations {
            permutations: tight.draws / 2,
            antithetic: true,
            truncation: None,
        });
        assert!(!precise_enough(
            &earlier.values,
            earlier.std_errors.as_ref().unwrap(),
            0.05
        ));
        // The same seed replays fixed sampling with as many draws.
        let fixed = run(&ShapleyMethod::Permutations {
            permutations: tight.draws,
            antithetic: true,
            truncation: None,
        });
        assert_eq!(fixed.values, tight.values);
        assert_eq!(fixed.std_errors, tight.std_errors);
        // The cap stops it.
        let capped = run(&adaptive(1e-6, 16));
        assert_eq!(capped.draws, 16);
        // Configuration errors.
        for bad in [adaptive(0.0, 16), adaptive(f64::NAN, 16), adaptive(0.1, 2)] {
            assert!(matches!(
                shapley_values(&mut Cubic::new(5, 0), &bad, SampleAggregate::Mean, 4, 0),
                Err(ShapleyError::Config(_))
            ));
        }
    }

    #[test]
    fn several_games_give_the_values_of_one() {
        let methods = [
            ShapleyMethod::Exact,
            ShapleyMethod::Permutations {
                permutations: 7,
                antithetic: true,
                truncation: Some(0.1),
            },
            ShapleyMethod::Permutations {
                permutations: 5,
                antithetic: false,
                truncation: None,
            },
            ShapleyMethod::Adaptive(Adaptive {
                initial: 2,
                max: 32,
                tolerance: 0.05,
                antithetic: true,
                truncation: None,
            }),
        ];
        for method in &methods {
            let one = shapley_values(
                &mut Quadratic::new(6, 3),
                method,
                SampleAggregate::Mean,
                3,
                9,
            )
            .unwrap();
            for n in [1, 2, 3, 5] {
                let mut games: Vec<Quadratic> = (0..n).map(|_| Quadratic::new(6, 3)).collect();
                let many =
                    shapley_values_on(&mut games, method, SampleAggregate::Mean, 3, 9).unwrap();
                assert_eq!(one, many, "{method:?} on {n} games");
                // Every game got a share of the work.
                if n <= 3 {
                    assert!(games.iter().all(|g| g.calls > 0), "{method:?} on {n} games");
                }
            }
        }
        // No games, or games that differ, are named errors.
        let err = shapley_values_on::<Quadratic>(&mut [], &methods[0], SampleAggregate::Mean, 3, 0);
        assert!(matches!(err, Err(ShapleyError::Config(_))));
        let mut mixed = vec![Quadratic::new(6, 3), Quadratic::new(5, 3)];
        let err = shapley_values_on(&mut mixed, &methods[0], SampleAggregate::Mean, 3, 0);
        assert!(matches!(err, Err(ShapleyError::Config(m)) if m.contains("game 1")));
    }

    #[test]
    fn mean_plus_two_std() {
        let per = vec![vec![1.0, 3.0]];
        let v = aggregate(&per, SampleAggregate::MeanPlus2Std);
        assert!((v[0] - (2.0 + 2.0 * 2f64.sqrt())).abs() < 1e-12);
    }
}
