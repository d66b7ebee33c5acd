#!/usr/bin/env python3
"""Pruned models where users deploy them: onnxruntime on the CPU.

For ResNet-56 (CIFAR, 1x1 projection shortcuts) and VGG-16-BN (CIFAR head), written to
match `crates/xprune-models` (see `torch_compare.py`), and torchvision's MobileNetV2 (10
classes, 32x32 inputs), with random weights and random batch-norm statistics:

1. the dense model is exported to ONNX (opset 17);
2. xprune prunes that file: `xprune prune -m dense.onnx -c l1 --scope layer -r R
   --fold-batch-norms` (L1 norm of the producers' weights, R of every group's channels
   removed, the inference form written);
3. Torch-Pruning prunes the PyTorch model the same way (`MagnitudePruner`,
   `MagnitudeImportance(p=1)`, `pruning_ratio=R`, per group), is timed in PyTorch and
   exported to ONNX;
4. every ONNX file is timed in onnxruntime (all graph optimisations, which fold batch norms
   too), with the same threads and batch.

Prints, per model and ratio, the MAC ratio (dense / pruned), the milliseconds per batch and the
speed-up / MAC ratio of each side. Every model of a network is made first and then all are
timed in `--rounds` rounds (3), each a median of `--reps` runs after `--warmup`; the fastest
round is kept.

With `--latency-budgets 0.7,0.5` it also prunes each dense file with xprune's latency-aware
selection measured *in onnxruntime*: `xprune prune -m dense.onnx -c l1 --latency-budget B
--latency-runner "python3 ort_runner.py --threads T" --fold-batch-norms` (global L1 ranking;
the latency model is probed once per model by `ort_runner.py` and reused for every budget),
and prints a second table: MAC ratio, onnxruntime ms, speed-up / MAC ratio, and the latency
fraction the model predicted against the one measured here and by xprune's runner.

    cargo build --release -p xprune-cli
    flock /tmp/xprune-cpu.lock python3 benches/compare/onnx_speed.py \
        --xprune target/release/xprune [--threads 2] [--batch 32] [--models resnet56,vgg16bn,mobilenetv2]
        [--ratios 0.3,0.5,0.7] [--latency-budgets 0.7,0.5] [--out FILE.md]
"""

import argparse
import copy
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn
import torch_pruning as tp
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_compare import VGG, ResNet  # noqa: E402


def build(name):
    if name == "resnet56":
        m = ResNet([16, 32, 64], 9)
        return m, [m.fc]
    if name == "vgg16bn":
        m = VGG([64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0])
        return m, [m.classifier]
    if name == "mobilenetv2":
        m = torchvision.models.mobilenet_v2(num_classes=10)
        return m, [m.classifier[1]]
    raise ValueError(name)


def randomize_bn(model, seed):
    g = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            c = mod.num_features
            mod.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(c, generator=g) * 0.1)


def median_ms(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e3)
    return statistics.median(samples)


def export(model, path):
    x = torch.randn(1, 3, 32, 32)
    torch.onnx.export(
        model,
        (x,),
        path,
        opset_version=17,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
        dynamo=False,
    )


def ort_ms(path, x, threads, warmup, reps):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return median_ms(lambda: sess.run(None, {name: x}), warmup, reps)


def torch_ms(model, x, warmup, reps):
    with torch.no_grad():
        return median_ms(lambda: model(x), warmup, reps)


def macs(model):
    ops, _ = tp.utils.count_ops_and_params(model, torch.randn(1, 3, 32, 32))
    return ops


def run_xprune(cmd):
    """Runs an xprune command; returns its standard output and the MAC ratio it printed."""
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {res.stderr.strip()}")
    m = re.search(r"(\d+) -> (\d+) MACs", res.stdout)
    return res.stdout, int(m.group(1)) / int(m.group(2))


def xprune_prune(binary, dense, out, ratio):
    return run_xprune([binary, "--quiet", "prune", "-m", dense, "-c", "l1", "--scope", "layer",
                       "-r", str(ratio), "--fold-batch-norms", "-o", out])[1]


def xprune_latency(binary, dense, out, budget, threads, batch, cache):
    """Prunes for a latency budget measured in onnxruntime by `ort_runner.py`; returns the MAC
    ratio and the predicted and runner-measured latency fractions xprune printed."""
    here = os.path.dirname(os.path.abspath(__file__))
    runner = f"{sys.executable} {os.path.join(here, 'ort_runner.py')} --threads {threads}"
    stdout, ratio = run_xprune([
        binary, "--quiet", "prune", "-m", dense, "-c", "l1", "--latency-budget", str(budget),
        "--latency-runner", runner, "--latency-batch", str(batch), "--latency-model", cache,
        "--fold-batch-norms", "-o", out])
    lat = re.search(r"predicted [\d.]+ -> [\d.]+ ms \(([\d.]+) of dense\), measured [\d.]+ -> "
                    r"[\d.]+ ms \(([\d.]+)\)", stdout)
    return ratio, float(lat.group(1)), float(lat.group(2))


def table_head(head):
    return [head, "|---" * (head.count("|") - 1) + "|"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--xprune", default="target/release/xprune")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--models", default="resnet56,vgg16bn,mobilenetv2")
    p.add_argument("--ratios", default="0.3,0.5,0.7")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--latency-budgets", default="")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out")
    args = p.parse_args()
    budgets = [float(b) for b in args.latency_budgets.split(",") if b]
    lat_rows = table_head(
        "| model | latency budget | MAC ratio | ort ms | speed-up | speed-up / MAC ratio "
        "| predicted fraction | measured fraction (here) | measured fraction (runner) | error |")
    torch.set_num_threads(args.threads)
    ratios = [float(r) for r in args.ratios.split(",")]
    rows = table_head(
        "| model | removed | xprune MAC ratio | xprune ort ms | xprune speed-up / MAC ratio "
        "| TP MAC ratio | TP torch ms | TP torch speed-up / MAC ratio | TP ort ms "
        "| TP ort speed-up / MAC ratio |")
    with tempfile.TemporaryDirectory() as d:
        for name in args.models.split(","):
            torch.manual_seed(0)
            model, ignored = build(name)
            randomize_bn(model, 1)
            model.eval()
            x = torch.randn(args.batch, 3, 32, 32)
            xn = x.numpy()
            dense = os.path.join(d, f"{name}.onnx")
            export(model, dense)
            dense_macs = macs(model)
            # Every model of this network is made first, then all are timed in `--rounds`
            # rounds (the fastest median of the rounds kept): a slow phase of a shared machine
            # lasts seconds and would otherwise fall on whichever model was timed then.
            timers = {"dense ort": lambda: ort_ms(dense, xn, args.threads, args.warmup, args.reps),
                      "dense torch": lambda: torch_ms(model, x, args.warmup, args.reps)}
            made = []
            for r in ratios:
                out = os.path.join(d, f"{name}_xp_{r}.onnx")
                xp_ratio = xprune_prune(args.xprune, dense, out, r)
                pruned = copy.deepcopy(model)
                ign = [dict(pruned.named_modules())[n] for n, mod in model.named_modules()
                       if any(mod is i for i in ignored)]
                tp.pruner.MagnitudePruner(
                    pruned, torch.randn(1, 3, 32, 32),
                    importance=tp.importance.MagnitudeImportance(p=1),
                    pruning_ratio=r, ignored_layers=ign,
                ).step()
                pruned.eval()
                tp_ratio = dense_macs / macs(pruned)
                tp_path = os.path.join(d, f"{name}_tp_{r}.onnx")
                export(pruned, tp_path)
                timers[f"xp {r}"] = lambda out=out: ort_ms(out, xn, args.threads, args.warmup,
                                                           args.reps)
                timers[f"tp torch {r}"] = lambda m=pruned: torch_ms(m, x, args.warmup, args.reps)
                timers[f"tp {r}"] = lambda f=tp_path: ort_ms(f, xn, args.threads, args.warmup,
                                                             args.reps)
                made.append((r, xp_ratio, tp_ratio))
            cache = os.path.join(d, f"{name}.latency.json")
            latency = []
            for b in budgets:
                out = os.path.join(d, f"{name}_lat_{b}.onnx")
                ratio, predicted, measured = xprune_latency(
                    args.xprune, dense, out, b, args.threads, args.batch, cache)
                timers[f"lat {b}"] = lambda out=out: ort_ms(out, xn, args.threads, args.warmup,
                                                            args.reps)
                latency.append((b, ratio, predicted, measured))
            t = {k: float("inf") for k in timers}
            for _ in range(args.rounds):
                for k, f in timers.items():
                    t[k] = min(t[k], f())
            t_dense_ort, t_dense_torch = t["dense ort"], t["dense torch"]
            rows.append(f"| {name} | 0 % | 1.00 | {t_dense_ort:.2f} | 1.00 | 1.00 | "
                        f"{t_dense_torch:.2f} | 1.00 | {t_dense_ort:.2f} | 1.00 |")
            for r, xp_ratio, tp_ratio in made:
                t_xp, t_tp, t_tp_ort = t[f"xp {r}"], t[f"tp torch {r}"], t[f"tp {r}"]
                rows.append(
                    f"| {name} | {r * 100:.0f} % | {xp_ratio:.2f} | {t_xp:.2f} | "
                    f"{t_dense_ort / t_xp / xp_ratio:.2f} | {tp_ratio:.2f} | {t_tp:.2f} | "
                    f"{t_dense_torch / t_tp / tp_ratio:.2f} | {t_tp_ort:.2f} | "
                    f"{t_dense_ort / t_tp_ort / tp_ratio:.2f} |")
                print(rows[-1], flush=True)
            for b, ratio, predicted, measured in latency:
                t_lat = t[f"lat {b}"]
                here = t_lat / t_dense_ort
                lat_rows.append(
                    f"| {name} | {b} | {ratio:.2f} | {t_lat:.2f} | {t_dense_ort / t_lat:.2f} | "
                    f"{t_dense_ort / t_lat / ratio:.2f} | {predicted:.3f} | {here:.3f} | "
                    f"{measured:.3f} | {(predicted - here) / here * 100:+.1f} % |")
                print(lat_rows[-1], flush=True)
    text = "\n".join(rows)
    if budgets:
        text += "\n\n" + "\n".join(lat_rows)
    print(f"\nonnxruntime {ort.__version__}, torch {torch.__version__}, torch-pruning "
          f"{tp.__version__}, {args.threads} threads, batch {args.batch}, fastest of {args.rounds} "
          f"rounds of a median of {args.reps} after {args.warmup}\n\n{text}")
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
