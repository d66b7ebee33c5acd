//! `xprune score`: channel scores as JSON.

use crate::args::{Global, ScoreArgs};
use crate::cmd::device;
use crate::error::{CliError, Result, io};
use crate::load;
use xprune::Pruner;
use xprune::criteria::Needs;

pub fn run(g: &Global, a: &ScoreArgs) -> Result<()> {
    let dev = device(&g.backend)?;
    let graph = load::model(&a.model.model, &dev)?;
    let criterion = load::criterion(&a.criterion.criterion, &a.criterion)?;
    let data = match &a.data {
        Some(p) => {
            let d = load::dataset(p)?;
            load::check_fit(&graph, &d, p)?;
            Some(load::reference(d, a.criterion.per_class, g.seed)?)
        }
        None if criterion.needs() > Needs::Weights => {
            return Err(CliError::Usage(format!(
                "criterion `{}` needs reference data: give --data D.npz",
                criterion.name()
            )));
        }
        None => None,
    };
    let pruner = Pruner::new(criterion)
        .pin(a.criterion.pin.clone())
        .prune_normalized(a.criterion.prune_normalized)
        .batch_size(g.batch_size)
        .seed(g.seed);
    let spinner = crate::progress::bar(1, format!("scoring ({})", a.criterion.criterion), g.quiet);
    let (_, scores) = pruner.score(&graph, data.as_ref())?;
    spinner.finish_and_clear();
    std::fs::write(&a.output, scores.to_json()).map_err(io(&a.output))?;
    println!(
        "wrote scores of {} groups to {}",
        scores.len(),
        a.output.display()
    );
    Ok(())
}
