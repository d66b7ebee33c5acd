#!/usr/bin/env python3
"""The workload of `benches/benches/lrp.rs` in PyTorch with Zennit, on the same machine, and the
xprune/Zennit ratios.

Same models as `crates/xprune-models` (VGG-11-BN with the CIFAR head: conv(bias)-bn-relu, 2x2
max pools, global average pool, one linear layer; ResNet-18 with the CIFAR stem: conv3x3-bn-relu,
four stages of two basic blocks with 1x1 conv-bn projection shortcuts where the shape changes,
global average pool, fc), random weights and batch-norm statistics, input
`[batch, 3, 32, 32]` from a standard normal, one-hot targets at labels `i % 10`, eval mode, the
same number of threads (2 by default).

For every composite (the names of `xprune_lrp::COMPOSITE_NAMES`) it times one Zennit attribution
(`zennit.attribution.Gradient` with the composite registered once, as xprune's `Attributor` is
built once; each call is one forward pass with hooks plus the backward pass that applies the
rules), and a forward plus input-gradient pass with the parameters frozen (the baseline of
`lrp.rs`). Every composite gets the canonizer `SequentialMergeBatchNorm` (xprune folds batch norms
when the attributor is built); residual additions are Zennit's `Sum` layer over the branches
stacked on a new last axis, so the `norm` rule of the base layer map applies to them, as in
xprune. Zennit has no composite called `epsilon`: it is `layer_map_base()` plus `Epsilon()` on
convolutions and linear layers, as in the golden-test fixtures (`tests/fixtures/lrp`).

    python3 benches/compare/lrp_zennit.py [--batch 32] [--threads 2] [--quick]
        [--models vgg11,resnet18] [--composites NAME,...] [--xprune-csv PATH] [--out FILE.md]

With `--xprune-csv PATH` (the output of `lrp.rs --csv PATH`) it also prints, for every row both
sides ran, xprune's LRP time, Zennit's, and their ratio, and the same for the baselines.
"""

import argparse
import csv
import platform
import statistics
import time
from datetime import datetime, timezone

import torch
from torch import nn
from zennit.attribution import Gradient
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.composites import (
    EpsilonAlpha2Beta1,
    EpsilonAlpha2Beta1Flat,
    EpsilonGammaBox,
    EpsilonPlus,
    EpsilonPlusFlat,
    LayerMapComposite,
    layer_map_base,
)
from zennit.layer import Sum
from zennit.rules import Epsilon
from zennit.types import Convolution

COMPOSITES = [
    "epsilon",
    "epsilon-plus",
    "epsilon-plus-flat",
    "epsilon-gamma-box",
    "epsilon-alpha2-beta1",
    "epsilon-alpha2-beta1-flat",
]
MODELS = ["vgg11", "resnet18"]


class VGG(nn.Module):
    """`xprune_models::vgg(VggDepth::Vgg11, true, ...)`."""

    def __init__(self, plan, classes=10):
        super().__init__()
        layers, c_in = [], 3
        for c in plan:
            if c == 0:
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
                c_in = c
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(c_in, classes)

    def forward(self, x):
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


class BasicBlock(nn.Module):
    """conv3x3(stride)-bn-relu-conv3x3-bn, plus identity or conv1x1(stride)-bn, summed with
    Zennit's `Sum` layer, then relu. Every batch norm directly follows its conv in module order
    (what `SequentialMergeBatchNorm` needs)."""

    def __init__(self, c_in, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = None
        if stride != 1 or c_in != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )
        self.sum = Sum()
        self.relu2 = nn.ReLU()

    def forward(self, x):
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.shortcut is None else self.shortcut(x)
        return self.relu2(self.sum(torch.stack([y, s], dim=-1)))


class ResNet18(nn.Module):
    """`xprune_models::resnet18(ResNetStem::Cifar, ...)`."""

    def __init__(self, planes=(64, 128, 256, 512), classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, planes[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes[0])
        self.relu = nn.ReLU()
        blocks, c_in = [], planes[0]
        for s, p in enumerate(planes):
            for i in range(2):
                blocks.append(BasicBlock(c_in, p, 2 if s > 0 and i == 0 else 1))
                c_in = p
        self.layers = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c_in, classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        return self.fc(self.flatten(self.avgpool(self.layers(x))))


def build(name, gen):
    if name == "vgg11":
        model = VGG([64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0])
    elif name == "resnet18":
        model = ResNet18()
    else:
        raise ValueError(f"unknown model {name} (one of {MODELS})")
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
    return model.eval()


def composite(name):
    """Zennit's composite of that name, with the batch-norm canonizer."""
    canonizers = [SequentialMergeBatchNorm()]
    if name == "epsilon":
        return LayerMapComposite(
            layer_map=layer_map_base() + [(Convolution, Epsilon()), (nn.Linear, Epsilon())],
            canonizers=canonizers,
        )
    if name == "epsilon-gamma-box":
        # xprune's `named("epsilon-gamma-box")` uses the bounds of raw image data, [0, 1]
        return EpsilonGammaBox(low=0.0, high=1.0, canonizers=canonizers)
    classes = {
        "epsilon-plus": EpsilonPlus,
        "epsilon-plus-flat": EpsilonPlusFlat,
        "epsilon-alpha2-beta1": EpsilonAlpha2Beta1,
        "epsilon-alpha2-beta1-flat": EpsilonAlpha2Beta1Flat,
    }
    return classes[name](canonizers=canonizers)


def timed_pair(comp, model, a, b, warmup, reps):
    """Times `a` with `comp` registered on `model` and `b` without it, alternately (as `lrp.rs`
    does), and returns both medians in ms. Registering (canonizing, hooking) is not timed, as
    xprune's `Attributor::new` is not."""
    sa, sb = [], []
    for i in range(warmup + max(reps, 1)):
        comp.register(model)
        t = time.perf_counter()
        a()
        ta = (time.perf_counter() - t) * 1e3
        comp.remove()
        t = time.perf_counter()
        b()
        tb = (time.perf_counter() - t) * 1e3
        if i >= warmup:
            sa.append(ta)
            sb.append(tb)
    return statistics.median(sa), statistics.median(sb)


def run(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    warmup, reps = (1, 3) if args.quick else (2, 7)
    rows = []
    for name in args.models:
        labels = torch.arange(args.batch) % 10
        one_hot = torch.eye(10)[labels]
        for cname in args.composites:
            # A fresh model (the same weights) for every composite: a model that composites
            # were registered on and removed from runs slower in later passes (measured here:
            # the plain gradient of VGG-11 drifted from 150 to 1000 ms over six composites).
            gen = torch.Generator().manual_seed(1)
            model = build(name, gen)
            for p in model.parameters():
                p.requires_grad_(False)
            x = torch.randn(args.batch, 3, 32, 32, generator=gen)

            def baseline():
                xa = x.clone().requires_grad_(True)
                (model(xa) * one_hot).sum().backward()
                return float(xa.grad.sum())

            comp = composite(cname)
            attributor = Gradient(model=model, composite=comp)

            def lrp():
                # the composite is registered: this is one forward pass with hooks + backward
                _, relevance = attributor(x, one_hot)
                return float(relevance.sum())

            t_lrp, t_base = timed_pair(comp, model, lrp, baseline, warmup, reps)
            rows.append((name, cname, t_lrp, t_base))
            print(f"{name} {cname}: Zennit {t_lrp:.1f} ms, forward+grad {t_base:.1f} ms",
                  flush=True)
    return rows


def read_xprune(path, backend):
    out = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r["backend"] != backend:
                continue
            base = float(r["baseline_ms"]) if r["baseline_ms"] else None
            out[(r["model"], r["composite"])] = (float(r["lrp_ms"]), base, r["batch"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="3 runs after 1 warm-up (else 7 after 2)")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--composites", default=",".join(COMPOSITES))
    ap.add_argument("--xprune-csv", help="output of `lrp.rs --csv PATH`")
    ap.add_argument("--backend", default="flex", help="which rows of the xprune CSV to compare")
    ap.add_argument("--out", help="also write the Markdown tables to this file")
    args = ap.parse_args()
    args.models = [m for m in args.models.split(",") if m]
    args.composites = [c for c in args.composites.split(",") if c]
    for c in args.composites:
        if c not in COMPOSITES:
            ap.error(f"unknown composite {c} (one of {COMPOSITES})")

    header = (
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {args.threads} threads, "
        f"batch {args.batch}"
    )
    rows = run(args)
    lines = [header, "", "| model | composite | Zennit ms | forward+grad ms | Zennit / grad |",
             "|---|---|---|---|---|"]
    for name, cname, t, b in rows:
        lines.append(f"| {name} | {cname} | {t:.1f} | {b:.1f} | {t / b:.2f} |")
    if args.xprune_csv:
        xp = read_xprune(args.xprune_csv, args.backend)
        lines += ["", f"xprune ({args.backend}) vs PyTorch/Zennit (same machine, batch, threads):", "",
                  "| model | composite | xprune LRP ms | Zennit ms | xprune / Zennit | "
                  "xprune fwd+grad ms | torch fwd+grad ms | xprune / torch |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, cname, t, b in rows:
            if (name, cname) not in xp:
                continue
            xl, xb, xbatch = xp[(name, cname)]
            if int(xbatch) != args.batch:
                print(f"warning: xprune row {name} {cname} has batch {xbatch}, not {args.batch}")
            base = f"{xb:.1f} | {b:.1f} | {xb / b:.2f}" if xb else f"- | {b:.1f} | -"
            lines.append(f"| {name} | {cname} | {xl:.1f} | {t:.1f} | {xl / t:.2f} | {base} |")
    text = "\n".join(lines)
    print()
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
