//! The random criterion: a seeded baseline.

use crate::criterion::{Criterion, Needs, ScoringContext};
use crate::error::Result;
use crate::names;
use crate::scores::Scores;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Scores every channel with an independent uniform random number drawn from the context's
/// seed (the same seed gives the same scores). The baseline every criterion must beat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RandomCriterion;

impl Criterion for RandomCriterion {
    fn name(&self) -> String {
        names::RANDOM.into()
    }

    fn needs(&self) -> Needs {
        Needs::Weights
    }

    fn score(&self, ctx: &ScoringContext<'_>) -> Result<Scores> {
        let mut rng = StdRng::seed_from_u64(ctx.seed);
        let mut scores = Scores::new(self.name());
        for group in ctx.groups.prunable() {
            let values = (0..group.channels()).map(|_| rng.random::<f64>()).collect();
            scores.insert(ctx.groups, group.id(), values)?;
        }
        Ok(scores)
    }
}
