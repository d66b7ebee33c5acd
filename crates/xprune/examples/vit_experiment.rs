//! Pruning a vision transformer's attention heads and MLP neurons with each criterion.
//!
//! A ViT (patch 4, width 64, 4 blocks of 4 heads, MLP 128; `VitConfig::tiny`) is trained on
//! the built-in Shapes-10 set (32x32 images, 10 classes). Every criterion scores on the same
//! reference samples (20 per class): LRP with AttnLRP's rules (`lrp[attnlrp]`) and with
//! CP-LRP's (`lrp[cp-lrp]`), Taylor, the L2 weight norm, random, and Shapley values (exact
//! over the four heads of a block; for MLP neurons, one antithetic pair of permutations). Either the
//! heads or the MLP neurons are pruned, the other kind pinned, the same fraction of every
//! block (the lowest-scored ones), and the model is evaluated as it is and after one epoch
//! of fine-tuning. The pruned models' forward pass is timed against the unpruned one on the
//! same batch (flex, batch 64; the median of 15 ratios, the two models run alternately), next
//! to their MAC reduction.
//!
//! `cargo run -p xprune --example vit_experiment [-- out_dir]` (about 25 minutes on
//! 2 cores); writes `vit_experiment.csv` to `out_dir` (default `vit-experiment`).
//! `XPRUNE_SEED=n` changes the seed of the data, the model, the training and the criteria.

use std::time::Instant;
use xprune::burn::tensor::Device;
use xprune::io::data::synthetic::shapes10;
use xprune::lrp::Composite;
use xprune::models::{VitConfig, vit};
use xprune::prune::select;
use xprune::surgery::{count, prune};
use xprune::train::{LrSchedule, Optimizer, ScheduleUnit, TrainConfig, evaluate, train};
use xprune::{
    Activation, Criterion, Dataset, Graph, LrpCriterion, PruneTarget, Pruner, RandomCriterion,
    Scope, Selection, Shapley, Taylor, WeightNorm,
};

type Error = Box<dyn std::error::Error>;

fn criterion(name: &str) -> Box<dyn Criterion> {
    match name {
        "lrp[attnlrp]" => Box::new(LrpCriterion::with_composite(
            Composite::named("attnlrp").expect("built in"),
        )),
        "lrp[cp-lrp]" => Box::new(LrpCriterion::with_composite(
            Composite::named("cp-lrp").expect("built in"),
        )),
        "taylor" => Box::new(Taylor::default()),
        "l2" => Box::new(WeightNorm::l2()),
        // Heads: exact (four per block). Neurons: one antithetic pair of orders per block
        // (two walks over 128 neurons, each step a forward pass of the rest of the network
        // on the 200 reference samples; about 6 minutes on 2 cores).
        "shapley" => Box::new(Shapley {
            permutations: 1,
            tolerance: None,
            antithetic: true,
            ..Shapley::default()
        }),
        _ => Box::new(RandomCriterion),
    }
}

/// The nodes whose groups are the heads (`self_attention.q`) or the MLP neurons (`mlp.0`).
fn producers(graph: &Graph, suffix: &str) -> Vec<String> {
    graph
        .nodes()
        .iter()
        .filter(|n| n.name.ends_with(suffix))
        .map(|n| n.name.clone())
        .collect()
}

/// The speed-up of `pruned` over `base` on `x`: the median over 15 rounds of the ratio of
/// their forward times, the two run alternately in each round (after one warm-up each), so
/// that a slow spell of the machine slows both.
fn speed_up(base: &Graph, pruned: &Graph, x: &Activation) -> Result<f64, Error> {
    let time = |g: &Graph| -> Result<f64, Error> {
        let s = Instant::now();
        g.forward(x.clone())?.to_vec();
        Ok(s.elapsed().as_secs_f64())
    };
    time(base)?;
    time(pruned)?;
    let mut ratios: Vec<f64> = (0..15)
        .map(|_| Ok(time(base)? / time(pruned)?))
        .collect::<Result<_, Error>>()?;
    ratios.sort_by(f64::total_cmp);
    Ok(ratios[7])
}

fn main() -> Result<(), Error> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "vit-experiment".into());
    std::fs::create_dir_all(&out)?;
    let seed: u64 = std::env::var("XPRUNE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let device = Device::flex();
    let start = Instant::now();
    let train_set = shapes10(4000, seed)?;
    let test_set = shapes10(1000, seed + 1)?;
    let reference = train_set.per_class(20, seed)?;
    let model = vit(
        train_set.sample_shape(),
        train_set.num_classes(),
        VitConfig::tiny(),
        &device,
        seed,
    )?;
    let config = TrainConfig::new(12, 64, 2e-3)
        .optimizer(Optimizer::adamw(0.05))
        .schedule(LrSchedule::Cosine { min_lr: 1e-5 }, ScheduleUnit::Step)
        .seed(seed);
    let trained = train(&model, &train_set, &config)?;
    let graph: Graph = trained.graph;
    let base = evaluate(&graph, &test_set, 128)?.accuracy;
    println!(
        "ViT tiny: {} MACs, {} parameters, trained in {:.0} s (12 epochs), test accuracy {:.3}",
        graph.macs(),
        count(&graph).params,
        trained.elapsed.as_secs_f64(),
        base
    );
    let batch: Dataset = test_set.subset(&(0..64).collect::<Vec<_>>())?;
    let x = batch.to_batch(&device)?.inputs;
    let fine_tune = TrainConfig::new(1, 64, 5e-4)
        .optimizer(Optimizer::adam())
        .seed(seed + 1);
    let mut csv = String::from(
        "pruned,fraction,criterion,mac_fraction,accuracy,accuracy_fine_tuned,speed_up,\
         mac_reduction,score_seconds\n",
    );
    // The unpruned model fine-tuned the same way: what the epoch alone does.
    let base_tuned = evaluate(
        &train(&graph, &train_set, &fine_tune)?.graph,
        &test_set,
        128,
    )?;
    let base_ft = base_tuned.accuracy;
    csv.push_str(&format!("none,0,-,1,{base:.4},{base_ft:.4},1,1,0\n"));
    println!("pruned  fraction  criterion     MACs kept  accuracy  fine-tuned  speed-up  scoring");
    println!("none    0         -             1.000      {base:<9.3} {base_ft:<11.3} 1.00      -");
    let criteria = [
        "lrp[attnlrp]",
        "lrp[cp-lrp]",
        "taylor",
        "l2",
        "shapley",
        "random",
    ];
    for (what, prunes, pins) in [
        ("heads", "self_attention.q", "mlp.0"),
        ("mlp", "mlp.0", "self_attention.q"),
    ] {
        assert!(!producers(&graph, prunes).is_empty());
        for name in criteria {
            // Scores do not depend on the fraction: score once, select three times.
            let pruner = Pruner::new(criterion(name))
                .batch_size(50)
                .seed(seed)
                .pin(producers(&graph, pins));
            let t = Instant::now();
            let (groups, scores) = pruner.score(&graph, Some(&reference))?;
            let seconds = t.elapsed().as_secs_f64();
            for fraction in [0.25, 0.5, 0.75] {
                let selection = Selection {
                    scope: Scope::PerGroup,
                    target: PruneTarget::ChannelRatio(fraction),
                    ..Selection::default()
                };
                let plan = select(&graph, &groups, &scores, &selection)?;
                let pruned = prune(&graph, &groups, &plan)?;
                let kept = count(&pruned).macs as f64 / graph.macs() as f64;
                let acc = evaluate(&pruned, &test_set, 128)?.accuracy;
                let tuned = train(&pruned, &train_set, &fine_tune)?.graph;
                let acc_ft = evaluate(&tuned, &test_set, 128)?.accuracy;
                let faster = speed_up(&graph, &pruned, &x)?;
                println!(
                    "{what:<7} {fraction:<9} {name:<13} {kept:<10.3} {acc:<9.3} {acc_ft:<11.3} \
                     {faster:<9.2} {seconds:.1} s"
                );
                csv.push_str(&format!(
                    "{what},{fraction},{name},{kept:.4},{acc:.4},{acc_ft:.4},{faster:.3},{:.3},\
                     {seconds:.2}\n",
                    1.0 / kept
                ));
            }
        }
    }
    let path = std::path::Path::new(&out).join("vit_experiment.csv");
    std::fs::write(&path, csv)?;
    println!(
        "wrote {} ({:.0} s in all; unpruned accuracy {base:.3})",
        path.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
