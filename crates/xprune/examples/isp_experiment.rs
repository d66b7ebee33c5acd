//! Interpretations-steered pruning against LRP, Taylor, L1 and random at matched MACs.
//!
//! A ResNet-20 at half width (8/16/32 channels) is trained on the built-in Shapes-10 set (or
//! on CIFAR-10 when `XPRUNE_CIFAR10` names the folder of its binary files,
//! `data_batch_*.bin` and `test_batch.bin`). Every criterion scores the channels on the same
//! reference samples (50 per class); each model is pruned to keep at most 50% and 30% of its
//! MACs (global ranking), evaluated, fine-tuned the same way (2 epochs of Adam on the training
//! set) and evaluated again. ISP learns its gates for each budget on the reference samples.
//!
//! `cargo run -p xprune --example isp_experiment [-- out_dir]` (about 8 minutes on 2 cores
//! for Shapes-10); writes `isp_experiment.csv` to `out_dir` (default `isp-experiment`).
//! `XPRUNE_SEED=n` changes the seed of the data, the model, the training and every criterion.

use std::time::Instant;
use xprune::burn::tensor::Device;
use xprune::io::data::synthetic::shapes10;
use xprune::io::data::{Split, cifar};
use xprune::models::{ResNetCifarDepth, resnet_cifar};
use xprune::prune::select;
use xprune::surgery::{count, prune};
use xprune::train::{LrSchedule, Optimizer, ScheduleUnit, TrainConfig, evaluate, train};
use xprune::{
    Criterion, Dataset, Graph, Isp, IspConfig, LrpCriterion, Normalization, PruneTarget, Pruner,
    RandomCriterion, Scope, Selection, Taylor, WeightNorm,
};

type Error = Box<dyn std::error::Error>;

fn data(seed: u64) -> Result<(Dataset, Dataset, &'static str), Error> {
    if let Ok(dir) = std::env::var("XPRUNE_CIFAR10") {
        let train = cifar::load_dir(&dir, Split::Train)?;
        let test = cifar::load_dir(&dir, Split::Test)?;
        // A 10,000-image training subset and 2,000 test images keep it to CPU minutes.
        let train = train.per_class(1000, seed)?;
        let test = test.per_class(200, seed)?;
        return Ok((train, test, "CIFAR-10"));
    }
    Ok((
        shapes10(4000, seed)?,
        shapes10(1000, seed + 1)?,
        "Shapes-10",
    ))
}

fn criterion(name: &str, budget: f64) -> Box<dyn Criterion> {
    match name {
        "isp" => Box::new(Isp::new(IspConfig::with_budget(budget))),
        "lrp" => Box::new(LrpCriterion::default()),
        "taylor" => Box::new(Taylor::default()),
        "l1" => Box::new(WeightNorm::l1()),
        _ => Box::new(RandomCriterion),
    }
}

/// Per-group normalisation before the global ranking: ISP's gate logits are on one scale by
/// construction; the demo's conventions for the others (L1 for LRP and L1 norms, L2 else).
fn normalization(name: &str) -> Normalization {
    match name {
        "isp" => Normalization::None,
        "lrp" | "l1" => Normalization::L1,
        _ => Normalization::L2,
    }
}

fn main() -> Result<(), Error> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "isp-experiment".into());
    std::fs::create_dir_all(&out)?;
    let seed: u64 = std::env::var("XPRUNE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let device = Device::flex();
    let start = Instant::now();
    let (train_set, test_set, name) = data(seed)?;
    let reference = train_set.per_class(50, seed)?;
    println!(
        "{name}: {} training, {} test, {} reference images",
        train_set.len(),
        test_set.len(),
        reference.len()
    );
    let model = resnet_cifar(
        ResNetCifarDepth::ResNet20,
        train_set.sample_shape(),
        train_set.num_classes(),
        0.5,
        &device,
        seed,
    )?;
    let config = TrainConfig::new(8, 64, 3e-3)
        .optimizer(Optimizer::adam())
        .schedule(LrSchedule::Cosine { min_lr: 1e-4 }, ScheduleUnit::Step)
        .seed(seed);
    let trained = train(&model, &train_set, &config)?;
    let graph: Graph = trained.graph;
    let base = evaluate(&graph, &test_set, 128)?.accuracy;
    println!(
        "ResNet-20 (width 0.5): {} MACs, trained in {:.0} s, test accuracy {:.3}",
        graph.macs(),
        trained.elapsed.as_secs_f64(),
        base
    );
    let fine_tune = TrainConfig::new(2, 64, 1e-3)
        .optimizer(Optimizer::adam())
        .seed(seed + 1);
    let mut csv =
        String::from("criterion,budget,mac_fraction,accuracy,accuracy_fine_tuned,score_seconds\n");
    println!("criterion     budget  MACs kept  accuracy  fine-tuned  scoring");
    // Every criterion with a global ranking; the score-based ones also with the same MAC
    // fraction taken from every group (`/layer`), which never empties a layer.
    let runs = [
        ("isp", Scope::Global),
        ("lrp", Scope::Global),
        ("taylor", Scope::Global),
        ("l1", Scope::Global),
        ("random", Scope::Global),
        ("lrp", Scope::PerGroup),
        ("taylor", Scope::PerGroup),
        ("l1", Scope::PerGroup),
        ("random", Scope::PerGroup),
    ];
    for budget in [0.5, 0.3] {
        for (name, scope) in runs {
            let label = match scope {
                Scope::Global => name.to_string(),
                Scope::PerGroup => format!("{name}/layer"),
            };
            let pruner = Pruner::new(criterion(name, budget))
                .batch_size(64)
                .seed(seed);
            let t = Instant::now();
            let (groups, scores) = pruner.score(&graph, Some(&reference))?;
            let seconds = t.elapsed().as_secs_f64();
            let selection = Selection {
                scope,
                normalization: normalization(name),
                target: PruneTarget::MacBudget(budget),
                ..Selection::default()
            };
            if name == "isp" {
                // The plan of the closed gates alone (pre-activation <= 0), before the
                // selection matches the budget exactly.
                let mut closed = xprune::PrunePlan::new();
                for g in groups.prunable() {
                    let v = scores.get(g.id()).unwrap_or(&[]);
                    let mut remove: Vec<usize> = (0..v.len()).filter(|&k| v[k] <= 0.0).collect();
                    if remove.len() == v.len() {
                        remove.pop();
                    }
                    closed.insert(g.name(), remove);
                }
                let gates = prune(&graph, &groups, &closed)?;
                println!(
                    "  isp: the closed gates alone keep {:.3} of the MACs",
                    count(&gates).macs as f64 / graph.macs() as f64
                );
            }
            let plan = select(&graph, &groups, &scores, &selection)?;
            let pruned = prune(&graph, &groups, &plan)?;
            let kept = count(&pruned).macs as f64 / graph.macs() as f64;
            let acc = evaluate(&pruned, &test_set, 128)?.accuracy;
            let tuned = train(&pruned, &train_set, &fine_tune)?.graph;
            let acc_ft = evaluate(&tuned, &test_set, 128)?.accuracy;
            println!(
                "{label:<13} {budget:<7} {kept:<10.3} {acc:<9.3} {acc_ft:<11.3} {seconds:.1} s"
            );
            csv.push_str(&format!(
                "{label},{budget},{kept:.4},{acc:.4},{acc_ft:.4},{seconds:.2}\n"
            ));
        }
    }
    let path = std::path::Path::new(&out).join("isp_experiment.csv");
    std::fs::write(&path, csv)?;
    println!(
        "wrote {} ({:.0} s in all; unpruned accuracy {base:.3})",
        path.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
