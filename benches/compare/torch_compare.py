#!/usr/bin/env python3
"""The workloads of `benches/benches/suite.rs` in PyTorch on the same machine, and the
xprune/PyTorch ratios.

Same models as `crates/xprune-models` (VGG-11-BN with the CIFAR head, ResNet-18 with the CIFAR
stem, ResNet-56 with 1x1 projection shortcuts), same input shapes ([batch, 3, 32, 32], 10
classes), same thread count (2 by default), eval mode (batch norm with running statistics):

* forward (no autograd), forward + input gradient (parameters frozen);
* pruned inference at 30/50/70 % of the channels of every group removed, pruned with
  Torch-Pruning's magnitude (L1) pruner per group (also with `round_to=8`);
* Torch-Pruning scoring of all groups (L1, Taylor on the reference batch, random) and surgery
  (dependency graph; L1 importance + selection + removal at 50 %).

With `--csv PATH` (the suite's `--csv` output) it prints xprune ms, PyTorch ms and their ratio
for every workload both sides ran. The LRP workloads are compared by `lrp_zennit.py`.

    python3 benches/compare/torch_compare.py --csv suite.csv [--batch 32] [--quick]
        [--models vgg11bn,resnet18,resnet56] [--threads 2] [--reference 16] [--out FILE.md]
"""

import argparse
import copy
import csv
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch_pruning as tp

MODELS = ["vgg11bn", "resnet18", "resnet56"]
RATIOS = [0.3, 0.5, 0.7]


class VGG(nn.Module):
    """`xprune_models::vgg(VggDepth::Vgg11, true, ...)`: conv(bias)-bn-relu, 2x2 max pools,
    global average pool, one linear classifier."""

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
        self.classifier = nn.Linear(c_in, classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class BasicBlock(nn.Module):
    """conv3x3(stride)-bn-relu-conv3x3-bn, plus identity or conv1x1(stride)-bn, then relu."""

    def __init__(self, c_in, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class ResNet(nn.Module):
    """`resnet_cifar` / `resnet18(ResNetStem::Cifar)`: conv3x3-bn-relu stem, stages of basic
    blocks (stride 2 at the first block of every stage but the first), global average pool, fc."""

    def __init__(self, planes, blocks, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, planes[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes[0])
        stages, c_in = [], planes[0]
        for s, p in enumerate(planes):
            blks = []
            for i in range(blocks):
                blks.append(BasicBlock(c_in, p, 2 if s > 0 and i == 0 else 1))
                c_in = p
            stages.append(nn.Sequential(*blks))
        self.layers = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build(name):
    if name == "vgg11bn":
        m = VGG([64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0])
        return m, [m.classifier]
    if name == "resnet18":
        m = ResNet([64, 128, 256, 512], 2)
        return m, [m.fc]
    if name == "resnet56":
        m = ResNet([16, 32, 64], 9)
        return m, [m.fc]
    raise ValueError(name)


def timed(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(max(reps, 1)):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e3)
    samples.sort()
    return (samples[len(samples) // 2], samples[0])


def macs(model, x):
    ops, _ = tp.utils.count_ops_and_params(model, x[:1])
    return ops


def tp_pruner(model, example, ignored, importance, ratio, round_to=None):
    return tp.pruner.MagnitudePruner(
        model,
        example,
        importance=importance,
        pruning_ratio=ratio,
        ignored_layers=ignored,
        round_to=round_to,
    )


def groups_of(model, example, ignored):
    dg = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    return dg, list(
        dg.get_all_groups(ignored_layers=ignored, root_module_types=[nn.Conv2d, nn.Linear])
    )


def run(args):
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    warmup, reps = (1, 3) if args.quick else (2, 7)
    slow_warmup, slow_reps = (1, 1) if args.quick else (1, 3)
    rows = {}  # (model, batch, workload) -> ((median ms, min ms), mac_ratio or None)
    for name in args.models:
        model, _ = build(name)
        model.eval()
        b = args.batch
        x = torch.rand(b, 3, 32, 32) - 0.5
        labels = torch.arange(b) % 10

        def forward(m=model):
            with torch.no_grad():
                m(x)

        fwd = timed(forward, warmup, reps)
        rows[(name, b, "forward")] = (fwd, None)

        for p in model.parameters():
            p.requires_grad_(False)

        def fwd_grad():
            xa = x.clone().requires_grad_(True)
            logits = model(xa)
            (logits * F.one_hot(labels, 10).float()).sum().backward()
            xa.grad.sum().item()

        rows[(name, b, "forward+input-grad")] = (timed(fwd_grad, warmup, reps), None)
        for p in model.parameters():
            p.requires_grad_(True)

        # Scoring of every group on the reference batch.
        n = args.reference
        ref = torch.rand(n, 3, 32, 32) - 0.5
        ref_labels = torch.arange(n) % 10
        example = x[:1]

        def score(importance, needs_grad):
            model_s, ignored_s = build(name)
            model_s.load_state_dict(model.state_dict())
            model_s.eval()
            _, groups = groups_of(model_s, example, ignored_s)

            def go():
                if needs_grad:
                    model_s.zero_grad()
                    F.cross_entropy(model_s(ref), ref_labels).backward()
                for g in groups:
                    importance(g)

            return timed(go, slow_warmup, slow_reps)

        rows[(name, n, "score l1")] = (
            score(tp.importance.MagnitudeImportance(p=1), False),
            None,
        )
        rows[(name, n, "score taylor")] = (score(tp.importance.TaylorImportance(), True), None)
        rows[(name, n, "score random")] = (score(tp.importance.RandomImportance(), False), None)

        # Surgery: dependency graph, then L1 scoring + selection + removal at 50 %.
        model_g, ignored = build(name)
        model_g.load_state_dict(model.state_dict())

        def dep_graph():
            groups_of(model_g, example, ignored)

        rows[(name, b, "surgery groups")] = (timed(dep_graph, slow_warmup, slow_reps), None)
        prune_times = []
        for _ in range(slow_reps):
            m, ign = build(name)
            m.load_state_dict(model.state_dict())
            m.eval()
            pruner = tp_pruner(m, example, ign, tp.importance.MagnitudeImportance(p=1), 0.5)
            t = time.perf_counter()
            pruner.step()
            prune_times.append((time.perf_counter() - t) * 1e3)
        rows[(name, b, "surgery plan+prune 50%")] = (
            (statistics.median(prune_times), min(prune_times)),
            None,
        )

        # Pruned inference.
        full = macs(model, x)
        for round_to in (None, 8):
            for ratio in RATIOS:
                m, ign = build(name)
                m.load_state_dict(model.state_dict())
                m.eval()
                pruner = tp_pruner(
                    m, example, ign, tp.importance.MagnitudeImportance(p=1), ratio, round_to
                )
                pruner.step()
                m.eval()
                suffix = "" if round_to is None else f" r{round_to}"
                t = timed(lambda: forward(m), warmup, reps)
                rows[(name, b, f"pruned {ratio * 100:.0f}%{suffix} forward")] = (
                    t,
                    full / macs(m, x),
                )
        print(f"# {name} done", flush=True)
    return rows


def read_xprune(path, backend):
    out = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            if r["backend"] != backend:
                continue
            key = (r["model"], int(r["batch"]), r["workload"])
            mac = float(r["mac_ratio"]) if r["mac_ratio"] else None
            out[key] = ((float(r["median_ms"]), float(r["min_ms"])), mac)
    # Torch-Pruning plans and removes in one call: compare against plan + prune.
    for (m, b, w), ((med, low), _) in list(out.items()):
        if w == "surgery plan l1 50%" and (m, b, "surgery prune 50%") in out:
            (pmed, plow), _ = out[(m, b, "surgery prune 50%")]
            out[(m, b, "surgery plan+prune 50%")] = ((med + pmed, low + plow), None)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--csv", help="the suite's --csv output")
    ap.add_argument("--backend", default="flex", help="xprune backend rows to compare")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--reference", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", help="also write the table as Markdown here")
    args = ap.parse_args()
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    torch_rows = run(args)
    xp = read_xprune(args.csv, args.backend) if args.csv else {}
    header = (
        "| model | batch | workload | PyTorch median ms | PyTorch min ms | PyTorch MAC ratio "
        "| xprune median ms | xprune min ms | xprune MAC ratio | xprune / PyTorch (median) "
        "| xprune / PyTorch (min) |"
    )
    lines = [
        f"PyTorch {torch.__version__}, Torch-Pruning {tp.__version__}, "
        f"{torch.get_num_threads()} threads; xprune backend {args.backend}",
        "",
        header,
        "|---" * 11 + "|",
    ]
    fmt = lambda v: "" if v is None else f"{v:.2f}"
    for key, ((med, low), mac) in torch_rows.items():
        (x_med, x_low), x_mac = xp.get(key, ((None, None), None))
        r_med = fmt(x_med / med) if x_med is not None and med > 0 else ""
        r_low = fmt(x_low / low) if x_low is not None and low > 0 else ""
        lines.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {med:.2f} | {low:.2f} | {fmt(mac)} "
            f"| {fmt(x_med)} | {fmt(x_low)} | {fmt(x_mac)} | {r_med} | {r_low} |"
        )
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
