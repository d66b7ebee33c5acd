#!/usr/bin/env python3
"""A latency runner for xprune that times ONNX files in onnxruntime (CPU).

xprune starts it once (`xprune prune --latency-budget L --latency-runner "python3
benches/compare/ort_runner.py --threads 2"`) and sends one request per line on standard input:

    <batch> <warm-up runs> <timed runs> <path of an ONNX file, to the end of the line>

For each, this script opens an onnxruntime session on the file (all graph optimisations,
`--threads` intra-op threads, one inter-op thread), feeds a seeded random input of that
batch (the file's other dimensions), runs it `warm-up` times untimed (at least twice) and
`timed` times timed (more for small models: until `--min-ms` of timed runs, at most
`--max-runs`), and answers with one line: the fastest run's milliseconds, or
`error <message>`. It ends when
its input closes. See docs/surgery.md ("Latency in another runtime").
"""

import argparse
import sys
import time

import numpy as np
import onnxruntime as ort


def time_file(path, batch, warmup, reps, threads, rng, min_ms, max_runs):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    dims = [batch] + [int(d) for d in inp.shape[1:]]
    x = rng.standard_normal(dims).astype(np.float32)
    feed = {inp.name: x}
    for _ in range(max(warmup, 2)):
        sess.run(None, feed)
    # Small layers take tens of microseconds: besides the requested runs, keep timing until
    # `--min-ms` of timed runs have passed (at most `--max-runs`), so that their fastest run
    # is as little disturbed as a large layer's.
    best, spent, runs = float("inf"), 0.0, 0
    while runs < reps or (spent < min_ms and runs < max_runs):
        t = time.perf_counter()
        sess.run(None, feed)
        ms = (time.perf_counter() - t) * 1e3
        best, spent, runs = min(best, ms), spent + ms, runs + 1
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-ms", type=float, default=50.0)
    p.add_argument("--max-runs", type=int, default=500)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    for line in sys.stdin:
        parts = line.rstrip("\n").split(" ", 3)
        try:
            if len(parts) != 4:
                raise ValueError(f"expected `batch warmup reps path`, got {line.strip()!r}")
            batch, warmup, reps, path = int(parts[0]), int(parts[1]), int(parts[2]), parts[3]
            ms = time_file(path, batch, warmup, reps, args.threads, rng, args.min_ms,
                           args.max_runs)
            answer = f"{ms:.6f}"
        except Exception as e:  # the error goes back to xprune, which names the node
            answer = "error " + " ".join(str(e).split())[:1000]
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
