//! Command-line arguments.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Explanation-driven structured pruning of neural networks.
#[derive(Parser, Debug)]
#[command(name = "xprune", version, about, long_about = None)]
pub struct Cli {
    /// Options of every command.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every command.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Compute backend: flex (CPU, default), ndarray (CPU), wgpu (GPU or software Vulkan), cuda.
    #[arg(long, global = true, default_value = "flex")]
    pub backend: String,
    /// Score on several devices: a comma-separated list such as `flex,wgpu` or
    /// `cuda:0,cuda:1` (a device may repeat). Reference batches and Shapley permutations are
    /// dealt to them and the results combined; the scores equal the single-device ones.
    /// Used by score, prune, sweep and demo; demo and gradual pruning also train on them
    /// (burn-train's multi-device strategy: each device takes its own batches, so training,
    /// unlike scoring, differs from a one-device run). The model itself stays on `--backend`.
    #[arg(long, global = true)]
    pub devices: Option<String>,
    /// Seed of every random choice.
    #[arg(long, global = true, default_value_t = 0)]
    pub seed: u64,
    /// Samples per forward pass.
    #[arg(long, global = true, default_value_t = 64)]
    pub batch_size: usize,
    /// No progress bars.
    #[arg(long, global = true)]
    pub quiet: bool,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Relevance of each input value (LRP), saved as .npy with the input's shape.
    Explain(ExplainArgs),
    /// The channel groups of a model: which layers share channels and can be pruned.
    Groups(GroupsArgs),
    /// Scores every channel of every prunable group with a criterion, as JSON.
    Score(ScoreArgs),
    /// Scores, selects and removes channels; writes the smaller model (ONNX or safetensors).
    Prune(PruneArgs),
    /// Accuracy against pruning ratio for several criteria, without fine-tuning: CSV and SVG.
    Sweep(SweepArgs),
    /// The whole pipeline on the embedded synthetic image set: train, transfer to a few-shot
    /// task, prune with every criterion with and without fine-tuning; table, CSV and SVG.
    Demo(DemoArgs),
    /// The toy experiment of "Pruning by Explaining": MLPs on moons, circles and mult, 1000 of
    /// 3000 hidden neurons pruned at once from n reference samples per class.
    Toy(ToyArgs),
}

/// A model file.
#[derive(Args, Debug, Clone)]
pub struct ModelArg {
    /// Model: an ONNX file (.onnx) or an xprune safetensors file (.safetensors).
    #[arg(long, short = 'm')]
    pub model: PathBuf,
}

/// `explain`.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    #[command(flatten)]
    /// The model.
    pub model: ModelArg,
    /// Inputs: .npy (or .npz with key `x`) of shape [batch, ...model input].
    #[arg(long, short = 'i')]
    pub input: PathBuf,
    /// Target classes per sample (.npy of integers); default: the predicted class.
    #[arg(long, conflicts_with = "target_class")]
    pub targets: Option<PathBuf>,
    /// The same target class for every sample.
    #[arg(long)]
    pub target_class: Option<usize>,
    /// LRP composite: epsilon, epsilon-plus, epsilon-plus-flat, epsilon-gamma-box,
    /// epsilon-alpha2-beta1, epsilon-alpha2-beta1-flat.
    #[arg(long, default_value = "epsilon-plus-flat")]
    pub composite: String,
    /// Epsilon of the epsilon rule.
    #[arg(long, default_value_t = 1e-6)]
    pub epsilon: f64,
    /// Gamma of the gamma rule (epsilon-gamma-box).
    #[arg(long, default_value_t = 0.25)]
    pub gamma: f64,
    /// Lowest input value of the z-box rule (epsilon-gamma-box; default 0): one value, or one
    /// per input channel, comma-separated (`--low=-2.12,-2.04,-1.80` for normalised inputs).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub low: Option<Vec<f32>>,
    /// Highest input value of the z-box rule (epsilon-gamma-box; default 1): one value, or one
    /// per input channel, comma-separated.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub high: Option<Vec<f32>>,
    /// Output .npy file of relevance values.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Also render one PNG heatmap per sample into this folder (image inputs).
    #[arg(long)]
    pub heatmap: Option<PathBuf>,
}

/// `groups`.
#[derive(Args, Debug)]
pub struct GroupsArgs {
    #[command(flatten)]
    /// The model.
    pub model: ModelArg,
    /// JSON instead of a readable listing.
    #[arg(long)]
    pub json: bool,
    /// Nodes whose output channels must not be pruned.
    #[arg(long, value_delimiter = ',')]
    pub pin: Vec<String>,
    /// Also prune channels that a layer norm reads (ConvNeXt, transformers). The pruned model
    /// then differs from the masked one, since the norm's statistics change.
    #[arg(long)]
    pub prune_normalized: bool,
}

/// Criterion options.
#[derive(Args, Debug, Clone)]
pub struct CriterionArgs {
    /// Criterion, by one of the names of `xprune::criteria::names` (listed in the help).
    #[arg(long, short = 'c', default_value = "lrp", help = crate::load::criterion_help())]
    pub criterion: String,
    /// LRP composite for lrp/lrp-abs (default: the paper's, epsilon on linear layers and
    /// alpha1-beta0 on convolutions).
    #[arg(long)]
    pub composite: Option<String>,
    /// Shapley: random permutations per group (with a tolerance, the first round).
    #[arg(long, default_value_t = xprune::criteria::shapley::DEFAULT_PERMUTATIONS)]
    pub permutations: usize,
    /// Shapley: double the permutations until every value's standard error is at most this
    /// times the spread of its group's values (0: exactly --permutations).
    #[arg(long, default_value_t = xprune::criteria::shapley::DEFAULT_TOLERANCE)]
    pub tolerance: f64,
    /// Shapley: the most permutations per group when doubling.
    #[arg(long, default_value_t = xprune::criteria::shapley::DEFAULT_MAX_PERMUTATIONS)]
    pub max_permutations: usize,
    /// Shapley: groups of at most this many channels are solved exactly.
    #[arg(long, default_value_t = 10)]
    pub exact_max_channels: usize,
    /// ISP: the fraction of MACs the learned gates keep (default: --mac-budget when pruning
    /// to a MAC budget, else 0.5).
    #[arg(long)]
    pub isp_budget: Option<f64>,
    /// ISP: epochs of its three phases, predictor, selector and gates.
    #[arg(long, value_delimiter = ',', default_values_t = [3, 5, 30])]
    pub isp_epochs: Vec<usize>,
    /// Use at most this many reference samples per class (chosen with the seed).
    #[arg(long)]
    pub per_class: Option<usize>,
    /// Nodes whose output channels must not be pruned.
    #[arg(long, value_delimiter = ',')]
    pub pin: Vec<String>,
    /// Also prune channels that a layer norm reads (ConvNeXt, transformers). The pruned model
    /// then differs from the masked one, since the norm's statistics change.
    #[arg(long)]
    pub prune_normalized: bool,
}

/// `score`.
#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    /// The model.
    pub model: ModelArg,
    /// Reference data (.npz with `x` and `y`).
    #[arg(long, short = 'd')]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    /// The criterion.
    pub criterion: CriterionArgs,
    /// Output JSON file.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
}

/// Ranking scope.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeArg {
    /// All channels of the network ranked together.
    Global,
    /// The same fraction from every layer (group).
    Layer,
}

/// Per-group score normalisation.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormalizeArg {
    /// Raw scores.
    None,
    /// Divide by the sum of absolute scores.
    L1,
    /// Divide by the Euclidean norm.
    L2,
    /// Divide by the largest absolute score.
    Max,
}

/// Selection options.
#[derive(Args, Debug, Clone)]
pub struct SelectArgs {
    /// Fraction of the prunable channels to remove, in [0, 1).
    #[arg(long, short = 'r')]
    pub ratio: Option<f64>,
    /// Instead of a ratio: keep at most this fraction of the MACs.
    #[arg(long, conflicts_with = "ratio")]
    pub mac_budget: Option<f64>,
    /// Instead of a ratio: keep at most this fraction of the latency measured on this device,
    /// or in the runtime of --latency-runner (`prune` only): a latency model is probed once
    /// (seconds to a minute) and cached in --latency-model; kept channel counts are rounded to
    /// counts where the kernels are efficient.
    #[arg(long, conflicts_with_all = ["ratio", "mac_budget"])]
    pub latency_budget: Option<f64>,
    /// The latency model file of --latency-budget: read if it fits the model, batch and
    /// device, otherwise probed and written [default: the output path with .latency.json].
    #[arg(long, requires = "latency_budget")]
    pub latency_model: Option<PathBuf>,
    /// The batch size the latency model is measured at (the batch you deploy with).
    #[arg(long, default_value_t = 32, requires = "latency_budget")]
    pub latency_batch: usize,
    /// Measure the latency model in another runtime instead of on this Burn device: a runner
    /// program (with its arguments, split at spaces) that times the ONNX files it is sent,
    /// for example `python3 benches/compare/ort_runner.py --threads 2` for onnxruntime (see
    /// docs/surgery.md for its protocol).
    #[arg(long, requires = "latency_budget")]
    pub latency_runner: Option<String>,
    /// Ranking scope.
    #[arg(long, value_enum, default_value = "global")]
    pub scope: ScopeArg,
    /// Per-layer normalisation of scores before global ranking.
    #[arg(long, value_enum, default_value = "none")]
    pub normalize: NormalizeArg,
    /// Every layer keeps at least this many channels.
    #[arg(long, default_value_t = 1)]
    pub min_channels: usize,
    /// Every pruned layer keeps a multiple of this many channels.
    #[arg(long, default_value_t = 1)]
    pub round_to: usize,
}

/// `prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    #[command(flatten)]
    /// The model.
    pub model: ModelArg,
    /// Reference data (.npz with `x` and `y`); not needed for l1, l2 and random.
    #[arg(long, short = 'd')]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    /// The criterion.
    pub criterion: CriterionArgs,
    #[command(flatten)]
    /// The selection.
    pub select: SelectArgs,
    /// The pruned model: .onnx or .safetensors.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Also write the plan: the removed channel indices of every pruned layer, by node name.
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// Write the inference form: batch norms folded into the convolutions and linear layers
    /// before them, identities and dropouts removed (same outputs, fewer nodes and
    /// parameters; the plan still names the unfolded model's layers).
    #[arg(long)]
    pub fold_batch_norms: bool,
}

/// `sweep`.
#[derive(Args, Debug)]
pub struct SweepArgs {
    #[command(flatten)]
    /// The model.
    pub model: ModelArg,
    /// Reference data for scoring (.npz).
    #[arg(long, short = 'd')]
    pub data: PathBuf,
    /// Evaluation data (.npz).
    #[arg(long, short = 'e')]
    pub eval: PathBuf,
    /// Criteria, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "l1,taylor,lrp,random")]
    pub criteria: Vec<String>,
    /// Pruning ratios, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.1,0.2,0.3,0.4,0.5,0.6,0.7"
    )]
    pub ratios: Vec<f64>,
    /// Ranking scope.
    #[arg(long, value_enum, default_value = "global")]
    pub scope: ScopeArg,
    /// Per-layer normalisation of scores.
    #[arg(long, value_enum, default_value = "l2")]
    pub normalize: NormalizeArg,
    /// Shapley: random permutations per group (the first round of adaptive sampling).
    #[arg(long, default_value_t = xprune::criteria::shapley::DEFAULT_PERMUTATIONS)]
    pub permutations: usize,
    /// Output folder (sweep.csv, sweep.svg).
    #[arg(long, short = 'o')]
    pub output: PathBuf,
}

/// `demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Output folder.
    #[arg(long, short = 'o', default_value = "xprune-demo")]
    pub output: PathBuf,
    /// A smaller, faster run (for tests): fewer images and epochs.
    #[arg(long)]
    pub quick: bool,
}

/// `toy`.
#[derive(Args, Debug)]
pub struct ToyArgs {
    /// Output folder (toy.csv).
    #[arg(long, short = 'o', default_value = "xprune-toy")]
    pub output: PathBuf,
    /// Number of seeds (reference-sample draws) per setting.
    #[arg(long, default_value_t = 20)]
    pub seeds: usize,
    /// Reference samples per class, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,5,10,20,50,100,200")]
    pub samples: Vec<usize>,
    /// Hidden units per layer (the paper uses 1000).
    #[arg(long, default_value_t = 1000)]
    pub width: usize,
    /// Hidden units removed (the paper removes 1000 of 3000).
    #[arg(long, default_value_t = 1000)]
    pub prune: usize,
    /// Data sets, comma-separated: moons, circles, mult.
    #[arg(long, value_delimiter = ',', default_value = "moons,circles,mult")]
    pub datasets: Vec<String>,
    /// Training: optimizer, sgd (momentum 0.9) or adam.
    #[arg(long, default_value = "sgd")]
    pub optimizer: String,
    /// Training: learning rate.
    #[arg(long, default_value_t = 0.01)]
    pub lr: f64,
    /// Training: epochs (passes over the 1000 training samples).
    #[arg(long, default_value_t = 1000)]
    pub epochs: usize,
    /// Training: samples per step (1000 = full batch).
    #[arg(long, default_value_t = 1000)]
    pub train_batch: usize,
}
