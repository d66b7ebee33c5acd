//! `xprune score`: channel scores as JSON.

use crate::args::{Global, ScoreArgs};
use crate::cmd::{device, scoring_devices};
use crate::error::{CliError, Result, io};
use crate::load;
use xprune::Pruner;
use xprune::criteria::{Needs, Uncertainty};

pub fn run(g: &Global, a: &ScoreArgs) -> Result<()> {
    let dev = device(&g.backend)?;
    let devices = scoring_devices(g)?;
    let graph = load::model(&a.model.model, &dev)?;
    let criterion = load::criterion(&a.criterion.criterion, &a.criterion, g.quiet)?;
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
        .devices(devices.clone())
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
    for (id, group) in scores.iter() {
        if let Some(u) = scores.uncertainty(id) {
            println!("  {}", uncertainty_line(&group.name, &group.values, u));
        }
    }
    Ok(())
}

/// One line on the precision of a group's estimated scores.
fn uncertainty_line(name: &str, values: &[f64], u: &Uncertainty) -> String {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let spread = (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
    let se = match &u.std_errors {
        Some(se) => format!(
            "largest standard error {:.3e} (spread of the values {spread:.3e})",
            se.iter().cloned().fold(0.0, f64::max)
        ),
        None => "no standard error (one draw)".into(),
    };
    format!(
        "{name}: {} draws, {} evaluations, {se}",
        u.draws, u.evaluations
    )
}
