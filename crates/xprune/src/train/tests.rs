//! Tests of training and evaluation: optimizer steps and metrics against float64 references,
//! schedules against their formulas, errors, and the accuracy targets on synthetic data.

use super::*;
use burn::tensor::{Device, TensorData};
use std::path::Path;
use std::time::Instant;
use xprune_graph::tensor_util::data_to_f32;
use xprune_graph::{Dataset, FeatureShape, Graph, GraphBuilder};
use xprune_io::data::synthetic;

fn device() -> Device {
    Device::flex()
}

/// `fc: 2 -> 3` with weight `[in=2, out=3]` and bias as given.
fn linear_graph(weight: [f32; 6], bias: [f32; 3]) -> Graph {
    let d = device();
    let mut b = GraphBuilder::new(FeatureShape::flat(2), &d).seed(0);
    let out = b.linear("fc", b.input(), 3).unwrap();
    let g = b.build(out).unwrap();
    g.with_tensors(
        |name| {
            Ok(match name {
                "fc.weight" => TensorData::new(weight.to_vec(), [2, 3]),
                _ => TensorData::new(bias.to_vec(), [3]),
            })
        },
        &d,
        Path::new("test"),
    )
    .unwrap()
}

fn tensor(graph: &Graph, name: &str) -> Vec<f32> {
    let (_, data) = graph
        .named_tensors()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap();
    data_to_f32(data)
}

const W0: [f32; 6] = [0.3, -0.2, 0.1, -0.4, 0.25, 0.05];
const B0: [f32; 3] = [0.1, 0.0, -0.1];
const X: [[f64; 2]; 4] = [[1.0, 0.5], [-0.5, 2.0], [0.3, -1.2], [2.0, 1.0]];
const Y: [usize; 4] = [0, 2, 1, 2];

fn small_data() -> Dataset {
    Dataset::new(
        X.iter().flatten().map(|v| *v as f32).collect(),
        Y.iter().map(|y| *y as i64).collect(),
        FeatureShape::flat(2),
        3,
    )
    .unwrap()
}

/// Mean cross-entropy gradient of `x W + b` over the small data set, in f64: `(gW, gb)`,
/// with `W` as `[in][out]`.
fn reference_grad(w: &[f64; 6], b: &[f64; 3]) -> ([f64; 6], [f64; 3]) {
    let (mut gw, mut gb) = ([0.0; 6], [0.0; 3]);
    let n = X.len() as f64;
    for (x, &y) in X.iter().zip(&Y) {
        let z: Vec<f64> = (0..3)
            .map(|o| x[0] * w[o] + x[1] * w[3 + o] + b[o])
            .collect();
        let m = z.iter().cloned().fold(f64::MIN, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        for o in 0..3 {
            let d = (e[o] / s - if o == y { 1.0 } else { 0.0 }) / n;
            gw[o] += x[0] * d;
            gw[3 + o] += x[1] * d;
            gb[o] += d;
        }
    }
    (gw, gb)
}

fn to_f64<const N: usize>(v: [f32; N]) -> [f64; N] {
    v.map(|x| x as f64)
}

fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (*g as f64 - w).abs() < tol,
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

#[test]
fn sgd_momentum_and_weight_decay_match_a_float64_reference() {
    let graph = linear_graph(W0, B0);
    let (lr, mu, wd) = (0.5, 0.9, 0.01);
    let config = TrainConfig::new(3, 4, lr).optimizer(Optimizer::Sgd {
        momentum: mu,
        weight_decay: wd,
        nesterov: false,
    });
    let trained = train(&graph, &small_data(), &config).unwrap();
    // PyTorch's SGD: g += wd * w; v = mu * v + g (v = g at the first step); w -= lr * v.
    let (mut w, mut b) = (to_f64(W0), to_f64(B0));
    let (mut vw, mut vb) = ([0.0; 6], [0.0; 3]);
    for t in 0..3 {
        let (mut gw, mut gb) = reference_grad(&w, &b);
        gw.iter_mut().zip(&w).for_each(|(g, x)| *g += wd * x);
        gb.iter_mut().zip(&b).for_each(|(g, x)| *g += wd * x);
        for i in 0..6 {
            vw[i] = if t == 0 { gw[i] } else { mu * vw[i] + gw[i] };
            w[i] -= lr * vw[i];
        }
        for i in 0..3 {
            vb[i] = if t == 0 { gb[i] } else { mu * vb[i] + gb[i] };
            b[i] -= lr * vb[i];
        }
    }
    assert_close(&tensor(&trained.graph, "fc.weight"), &w, 1e-5, "weight");
    assert_close(&tensor(&trained.graph, "fc.bias"), &b, 1e-5, "bias");
    assert_eq!(trained.steps, 3);
    // The input graph is untouched.
    assert_eq!(tensor(&graph, "fc.weight"), W0.to_vec());
}

#[test]
fn adam_steps_match_a_float64_reference() {
    let graph = linear_graph(W0, B0);
    let lr = 0.01;
    let config = TrainConfig::new(3, 4, lr).optimizer(Optimizer::adam());
    let trained = train(&graph, &small_data(), &config).unwrap();
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
    let mut p: Vec<f64> = to_f64(W0).into_iter().chain(to_f64(B0)).collect();
    let (mut m, mut v) = (vec![0.0; 9], vec![0.0; 9]);
    for t in 1..=3 {
        let w: [f64; 6] = p[..6].try_into().unwrap();
        let b: [f64; 3] = p[6..].try_into().unwrap();
        let (gw, gb) = reference_grad(&w, &b);
        let g: Vec<f64> = gw.into_iter().chain(gb).collect();
        for i in 0..9 {
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            let mhat = m[i] / (1.0 - b1.powi(t));
            let vhat = v[i] / (1.0 - b2.powi(t));
            p[i] -= lr * mhat / (vhat.sqrt() + eps);
        }
    }
    assert_close(
        &tensor(&trained.graph, "fc.weight"),
        &p[..6],
        1e-5,
        "weight",
    );
    assert_close(&tensor(&trained.graph, "fc.bias"), &p[6..], 1e-5, "bias");
}

#[test]
fn evaluate_matches_a_float64_reference() {
    let graph = linear_graph(W0, B0);
    let m = evaluate(&graph, &small_data(), 3).unwrap();
    let (w, b) = (to_f64(W0), to_f64(B0));
    let (mut loss, mut confusion) = (0.0, vec![vec![0usize; 3]; 3]);
    for (x, &y) in X.iter().zip(&Y) {
        let z: Vec<f64> = (0..3)
            .map(|o| x[0] * w[o] + x[1] * w[3 + o] + b[o])
            .collect();
        let lse = z.iter().map(|v| v.exp()).sum::<f64>().ln();
        loss += lse - z[y];
        let pred = (0..3).fold(0, |a, o| if z[o] > z[a] { o } else { a });
        confusion[y][pred] += 1;
    }
    assert_eq!(m.confusion, confusion);
    assert!(
        (m.loss - loss / 4.0).abs() < 1e-6,
        "{} vs {}",
        m.loss,
        loss / 4.0
    );
    let correct = (0..3).map(|c| confusion[c][c]).sum::<usize>();
    assert_eq!(m.correct(), correct);
    assert_eq!(m.accuracy, correct as f64 / 4.0);
    for c in 0..3 {
        let total: usize = confusion[c].iter().sum();
        assert_eq!(
            m.per_class_accuracy[c],
            Some(confusion[c][c] as f64 / total as f64)
        );
    }
    // A class without samples has no accuracy.
    let two = small_data().subset(&[0, 2]).unwrap();
    assert_eq!(
        evaluate(&graph, &two, 8).unwrap().per_class_accuracy[2],
        None
    );
}

#[test]
fn schedules_follow_their_formulas() {
    let step = LrSchedule::Step {
        every: 2,
        gamma: 0.1,
    };
    let lrs: Vec<f64> = (0..5).map(|t| step.lr(1.0, t, 5)).collect();
    assert_eq!(lrs[..4], [1.0, 1.0, 0.1, 0.1]);
    assert!((lrs[4] - 0.01).abs() < 1e-15);
    let cos = LrSchedule::Cosine { min_lr: 0.1 };
    assert_eq!(cos.lr(1.0, 0, 10), 1.0);
    assert!((cos.lr(1.0, 5, 10) - 0.55).abs() < 1e-12);
    assert!((cos.lr(1.0, 10, 10) - 0.1).abs() < 1e-12);
    assert_eq!(LrSchedule::Constant.lr(0.3, 7, 10), 0.3);
    // Per-step and per-epoch units.
    let c = TrainConfig::new(4, 10, 1.0).schedule(step, ScheduleUnit::Step);
    assert!((c.lr_at(0, 5, 3) - 0.01).abs() < 1e-15);
    let c = c.schedule(step, ScheduleUnit::Epoch);
    assert_eq!(c.lr_at(2, 5, 3), 0.1);
    // The trainer uses the schedule step by step.
    let mut lrs = Vec::new();
    let config = TrainConfig::new(2, 2, 0.8).schedule(
        LrSchedule::Step {
            every: 1,
            gamma: 0.5,
        },
        ScheduleUnit::Step,
    );
    Trainer::new(config)
        .on_progress(|p| {
            if p.kind == ProgressKind::Step {
                lrs.push(p.lr)
            }
        })
        .fit(&linear_graph(W0, B0), &small_data())
        .unwrap();
    assert_eq!(lrs, vec![0.8, 0.4, 0.2, 0.1]);
}

#[test]
fn progress_reports_steps_epochs_and_evaluations() {
    let data = synthetic::moons(50, 0.1, 1).unwrap();
    let graph = xprune_models::mlp(2, &[8], 2, &device(), 1).unwrap();
    let mut events = Vec::new();
    let trained = Trainer::new(TrainConfig::new(3, 16, 0.05))
        .evaluate_on(&data)
        .on_progress(|p| {
            events.push((
                p.kind,
                p.epoch,
                p.step,
                p.total_steps,
                p.eval.map(|m| m.samples),
            ))
        })
        .fit(&graph, &data)
        .unwrap();
    // 50 samples in batches of 16: 4 steps per epoch (the last of 2 samples).
    let steps: Vec<_> = events
        .iter()
        .filter(|e| e.0 == ProgressKind::Step)
        .collect();
    assert_eq!(steps.len(), 12);
    assert!(
        steps
            .iter()
            .enumerate()
            .all(|(i, e)| e.2 == i + 1 && e.3 == 12)
    );
    let ends: Vec<_> = events
        .iter()
        .filter(|e| e.0 == ProgressKind::EpochEnd)
        .collect();
    assert_eq!(
        ends.iter().map(|e| (e.1, e.4)).collect::<Vec<_>>(),
        vec![(1, Some(50)), (2, Some(50)), (3, Some(50))]
    );
    assert_eq!(trained.history.len(), 3);
    let last = trained.history.last().unwrap();
    let (logged, again) = (
        last.eval.as_ref().unwrap(),
        evaluate(&trained.graph, &data, 7).unwrap(),
    );
    assert_eq!(
        (logged.accuracy, &logged.confusion),
        (again.accuracy, &again.confusion)
    );
    assert!((logged.loss - again.loss).abs() < 1e-6);
    // drop_last skips the 2-sample batch.
    let t = train(
        &graph,
        &data,
        &TrainConfig::new(1, 16, 0.05).drop_last(true),
    )
    .unwrap();
    assert_eq!(t.steps, 3);
}

#[test]
fn training_is_deterministic_by_seed() {
    let data = synthetic::moons(64, 0.1, 2).unwrap();
    let graph = xprune_models::mlp(2, &[16], 2, &device(), 3).unwrap();
    let config = TrainConfig::new(2, 8, 0.05).seed(11);
    let a = train(&graph, &data, &config).unwrap().graph;
    let b = train(&graph, &data, &config).unwrap().graph;
    let c = train(&graph, &data, &config.clone().seed(12))
        .unwrap()
        .graph;
    assert_eq!(tensor(&a, "fc1.weight"), tensor(&b, "fc1.weight"));
    assert_ne!(tensor(&a, "fc1.weight"), tensor(&c, "fc1.weight"));
}

#[test]
fn batch_norm_statistics_are_trained_on_the_copy_only() {
    let d = device();
    let mut b = GraphBuilder::new(FeatureShape::spatial(3, 32, 32), &d).seed(4);
    let x = b
        .conv2d(
            "conv",
            b.input(),
            xprune_graph::Conv2dSpec::new(4, 3).padding(1),
        )
        .unwrap();
    let x = b.batch_norm("bn", x).unwrap();
    let x = b.relu("relu", x).unwrap();
    let x = b.global_avg_pool("gap", x).unwrap();
    let x = b.flatten("flat", x).unwrap();
    let out = b.linear("fc", x, 10).unwrap();
    let graph = b.build(out).unwrap();
    let data = synthetic::shapes10(40, 1).unwrap();
    let trained = train(&graph, &data, &TrainConfig::new(1, 20, 0.01)).unwrap();
    let before = tensor(&graph, "bn.running_mean");
    let after = tensor(&trained.graph, "bn.running_mean");
    assert!(before.iter().all(|v| *v == 0.0));
    assert!(after.iter().any(|v| v.abs() > 1e-4), "{after:?}");
    assert!(!trained.graph.device().is_autodiff());
    // The trained graph evaluates with its running statistics: batch size does not matter.
    let m1 = evaluate(&trained.graph, &data, 1).unwrap();
    let m40 = evaluate(&trained.graph, &data, 40).unwrap();
    assert!((m1.loss - m40.loss).abs() < 1e-5);
}

#[test]
fn bad_inputs_are_errors_and_leave_the_graph_untouched() {
    let graph = linear_graph(W0, B0);
    let data = small_data();
    let ok = TrainConfig::new(1, 4, 0.1);
    let empty = Dataset::new(vec![], vec![], FeatureShape::flat(2), 3).unwrap();
    let err = train(&graph, &empty, &ok).unwrap_err().to_string();
    assert!(err.contains("training data set is empty"), "{err}");
    let wide = Dataset::new(vec![0.0; 6], vec![0, 1], FeatureShape::flat(3), 3).unwrap();
    let err = train(&graph, &wide, &ok).unwrap_err().to_string();
    assert!(err.contains("[3]") && err.contains("[2]"), "{err}");
    let many = Dataset::new(vec![0.0; 4], vec![0, 4], FeatureShape::flat(2), 5).unwrap();
    let err = train(&graph, &many, &ok).unwrap_err().to_string();
    assert!(
        err.contains("5 classes") && err.contains("3 outputs") && err.contains("`fc`"),
        "{err}"
    );
    let err = Trainer::new(ok.clone())
        .evaluate_on(&wide)
        .fit(&graph, &data)
        .unwrap_err();
    assert!(err.to_string().contains("evaluation data set"), "{err}");
    for bad in [
        TrainConfig::new(0, 4, 0.1),
        TrainConfig::new(1, 0, 0.1),
        TrainConfig::new(1, 4, -1.0),
        TrainConfig::new(1, 4, f64::NAN),
        ok.clone().optimizer(Optimizer::sgd(1.0)),
        ok.clone().optimizer(Optimizer::Adam {
            betas: (0.9, 1.5),
            weight_decay: 0.0,
        }),
        ok.clone()
            .schedule(LrSchedule::Cosine { min_lr: 1.0 }, ScheduleUnit::Epoch),
        ok.clone().schedule(
            LrSchedule::Step {
                every: 0,
                gamma: 0.5,
            },
            ScheduleUnit::Epoch,
        ),
        TrainConfig::new(1, 8, 0.1).drop_last(true),
    ] {
        assert!(
            matches!(
                train(&graph, &data, &bad),
                Err(TrainError::InvalidConfig(_))
            ),
            "{bad:?}"
        );
    }
    // A diverging run stops with the step number.
    let err = train(
        &graph,
        &data,
        &TrainConfig::new(5, 1, 1e38).optimizer(Optimizer::sgd(0.0)),
    )
    .unwrap_err();
    match err {
        TrainError::NonFiniteLoss { step, epoch, .. } => assert!(step >= 2 && epoch >= 1),
        other => panic!("expected a non-finite loss, got {other}"),
    }
    assert_eq!(tensor(&graph, "fc.weight"), W0.to_vec());
    assert_eq!(tensor(&graph, "fc.bias"), B0.to_vec());
    assert!(evaluate(&graph, &data, 0).is_err());
}

#[test]
fn mlp_reaches_99_percent_on_moons() {
    let d = device();
    let train_set = synthetic::moons(1000, 0.1, 1).unwrap();
    let test_set = synthetic::moons(1000, 0.1, 2).unwrap();
    let graph = xprune_models::mlp(2, &[64, 64], 2, &d, 0).unwrap();
    let config = TrainConfig::new(20, 32, 0.01)
        .optimizer(Optimizer::adam())
        .schedule(LrSchedule::Cosine { min_lr: 0.0 }, ScheduleUnit::Step)
        .seed(1);
    let start = Instant::now();
    let trained = train(&graph, &train_set, &config).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let m = evaluate(&trained.graph, &test_set, 500).unwrap();
    println!(
        "moons MLP 2-64-64-2: test {m}; {} steps in {secs:.1} s",
        trained.steps
    );
    assert!(m.accuracy >= 0.99, "test accuracy {}", m.accuracy);
}

#[test]
fn lenet_reaches_90_percent_on_shapes10_and_a_linear_model_does_not() {
    let d = device();
    let start = Instant::now();
    let train_set = synthetic::shapes10(8000, 1).unwrap();
    let test_set = synthetic::shapes10(2000, 2).unwrap();
    println!(
        "shapes10: 10,000 images generated in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let shape = synthetic::SHAPES10_SHAPE;
    let lenet = xprune_models::lenet5(shape, 10, &d, 0).unwrap();
    let config = TrainConfig::new(8, 32, 2e-3)
        .optimizer(Optimizer::adam())
        .schedule(LrSchedule::Cosine { min_lr: 0.0 }, ScheduleUnit::Step)
        .seed(1);
    let start = Instant::now();
    let trained = Trainer::new(config.clone())
        .on_progress(|p| {
            if p.kind == ProgressKind::EpochEnd {
                println!(
                    "  epoch {}: loss {:.3}, train acc {:.3}, {:.0} s",
                    p.epoch,
                    p.loss,
                    p.train_accuracy.unwrap_or(0.0),
                    p.elapsed.as_secs_f64()
                );
            }
        })
        .fit(&lenet, &train_set)
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    let m = evaluate(&trained.graph, &test_set, 500).unwrap();
    println!(
        "shapes10 LeNet-5: test {m}; {} epochs in {secs:.1} s",
        config.epochs
    );
    assert!(m.accuracy >= 0.90, "test accuracy {}", m.accuracy);

    let mut b = GraphBuilder::new(shape, &d).seed(0);
    let x = b.flatten("flat", b.input()).unwrap();
    let out = b.linear("fc", x, 10).unwrap();
    let linear = b.build(out).unwrap();
    let config = TrainConfig::new(3, 32, 1e-3)
        .optimizer(Optimizer::adam())
        .seed(1);
    let trained = train(&linear, &train_set, &config).unwrap();
    let lin = evaluate(&trained.graph, &test_set, 500).unwrap();
    println!("shapes10 linear model: test {lin}");
    assert!(
        lin.accuracy < 0.5,
        "a linear model reaches {}",
        lin.accuracy
    );
}

#[test]
fn burn_schedulers_give_the_rates_of_the_formulas() {
    let (epochs, spe) = (4, 3);
    let schedules = [
        LrSchedule::Constant,
        LrSchedule::Step {
            every: 2,
            gamma: 0.5,
        },
        LrSchedule::Cosine { min_lr: 0.01 },
    ];
    for schedule in schedules {
        for unit in [ScheduleUnit::Epoch, ScheduleUnit::Step] {
            let config = TrainConfig::new(epochs, 1, 0.5).schedule(schedule, unit);
            let mut scheduler = config.scheduler(spe).unwrap();
            for t in 0..epochs * spe {
                // Halfway, the state goes through its record into a fresh scheduler, as it
                // does between the trainer's epoch launches.
                if t == 5 {
                    let record = scheduler.to_record();
                    scheduler = config.scheduler(spe).unwrap().load_record(record);
                }
                let got = scheduler.step().base();
                let want = config.lr_at(t / spe, t, spe);
                assert!(
                    (got - want).abs() < 1e-12,
                    "{schedule:?} per {unit:?}, step {t}: Burn gives {got}, the formula {want}"
                );
            }
        }
    }
    // What Burn rejects is a configuration error before training.
    let bad = TrainConfig::new(2, 1, 2.0)
        .schedule(LrSchedule::Cosine { min_lr: 0.0 }, ScheduleUnit::Step);
    assert!(matches!(bad.validate(), Err(TrainError::InvalidConfig(_))));
}

#[test]
fn a_step_schedule_drives_the_sgd_steps_across_epochs() {
    // SGD without momentum, the rate halving every step over two epochs of two steps
    // (batches of two): the weights equal a float64 run with rates 0.8, 0.4, 0.2, 0.1 on
    // the same batches, so the Burn scheduler's state goes from one epoch's launch to the
    // next.
    let graph = linear_graph(W0, B0);
    let config = TrainConfig::new(2, 4, 0.8)
        .optimizer(Optimizer::sgd(0.0))
        .schedule(
            LrSchedule::Step {
                every: 1,
                gamma: 0.5,
            },
            ScheduleUnit::Step,
        );
    // Full batches (4 samples, batch 4): 2 steps, rates 0.8 and 0.4.
    let trained = train(&graph, &small_data(), &config).unwrap();
    let (mut w, mut b) = (to_f64(W0), to_f64(B0));
    for lr in [0.8, 0.4] {
        let (gw, gb) = reference_grad(&w, &b);
        w.iter_mut().zip(gw).for_each(|(x, g)| *x -= lr * g);
        b.iter_mut().zip(gb).for_each(|(x, g)| *x -= lr * g);
    }
    assert_close(&tensor(&trained.graph, "fc.weight"), &w, 1e-5, "weight");
    assert_close(&tensor(&trained.graph, "fc.bias"), &b, 1e-5, "bias");
}

#[test]
fn a_graph_trains_in_a_supervised_training_of_its_own() {
    use burn::data::dataloader::DataLoaderBuilder;
    use burn::module::Module;
    use burn_train::metric::{AccuracyMetric, LossMetric};
    use burn_train::{Learner, SupervisedTraining};
    use xprune_graph::SampleBatcher;

    let data = synthetic::moons(200, 0.1, 3).unwrap();
    let test = synthetic::moons(100, 0.1, 4).unwrap();
    let graph = xprune_models::mlp(2, &[16], 2, &device(), 2).unwrap();
    let config = TrainConfig::new(15, 20, 1e-2).optimizer(Optimizer::adam());
    let batcher = SampleBatcher::new(data.sample_shape());
    let train_loader = DataLoaderBuilder::new(batcher)
        .batch_size(20)
        .shuffle(5)
        .build(data.clone());
    let valid_loader = DataLoaderBuilder::new(batcher)
        .batch_size(50)
        .build(test.clone());
    let dir = tempfile::tempdir().unwrap();
    // As for any Burn module made on a plain device: `train()` puts it on the autodiff
    // version of its device with gradients tracked.
    let learner = Learner::new(
        graph.clone().train(),
        config.optimizer.init(),
        config.scheduler(10).unwrap(),
    );
    let result = SupervisedTraining::new(dir.path(), train_loader, valid_loader)
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .num_epochs(15)
        .launch(learner);
    assert!(result.error.is_none());
    let before = evaluate(&graph, &test, 100).unwrap().accuracy;
    let after = evaluate(&result.model, &test, 100).unwrap().accuracy;
    // xprune's trainer with the same configuration learns as much.
    let ours = evaluate(&train(&graph, &data, &config).unwrap().graph, &test, 100)
        .unwrap()
        .accuracy;
    assert!(
        after > 0.85 && after > before + 0.3 && (after - ours).abs() < 0.08,
        "accuracy {before} before, {after} after burn-train's own loop, {ours} after xprune's"
    );
    // burn-train's file logger wrote its metrics, as for any Burn model.
    assert!(dir.path().join("train").exists() || dir.path().join("valid").exists());
}

#[test]
fn the_trainer_writes_no_files() {
    let cwd_before: Vec<_> = std::fs::read_dir(".")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let unused = std::env::temp_dir().join("xprune-train-unused");
    let existed = unused.exists();
    let data = synthetic::moons(40, 0.1, 1).unwrap();
    let graph = xprune_models::mlp(2, &[4], 2, &device(), 1).unwrap();
    train(&graph, &data, &TrainConfig::new(2, 10, 1e-2)).unwrap();
    let cwd_after: Vec<_> = std::fs::read_dir(".")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(cwd_before, cwd_after);
    assert_eq!(unused.exists(), existed, "the trainer created {unused:?}");
}

#[test]
fn training_on_two_devices_learns_and_returns_to_the_graph_device() {
    let data = synthetic::moons(200, 0.1, 3).unwrap();
    let test = synthetic::moons(100, 0.1, 4).unwrap();
    let graph = xprune_models::mlp(2, &[16], 2, &device(), 2).unwrap();
    let config = TrainConfig::new(12, 20, 1e-2).optimizer(Optimizer::adam());
    let two = Trainer::new(config.clone())
        .devices(vec![Device::flex(), Device::flex()])
        .evaluate_on(&test)
        .fit(&graph, &data)
        .unwrap();
    assert_eq!(two.graph.device(), graph.device());
    assert_eq!(two.history.len(), 12);
    let last = two.history.last().unwrap().eval.as_ref().unwrap();
    assert_eq!(last.samples, 100);
    let one = Trainer::new(config.clone())
        .evaluate_on(&test)
        .fit(&graph, &data)
        .unwrap();
    let single = one.history.last().unwrap().eval.as_ref().unwrap();
    assert!(
        last.accuracy > 0.85 && last.accuracy > single.accuracy - 0.06,
        "two devices: {last}; one device: {single}"
    );
    // Same seed, same devices: the same weights.
    let again = Trainer::new(config)
        .devices(vec![Device::flex(), Device::flex()])
        .fit(&graph, &data)
        .unwrap();
    assert_eq!(
        tensor(&two.graph, "fc1.weight"),
        tensor(&again.graph, "fc1.weight")
    );
}
