"""Per-node time of two SelfXit builds in the same model, their profiles alternating.

    .cache/isa-venv/bin/python bench/profile_ab.py --model .cache/models/tv-resnet50.onnx \\
        --base /tmp/base/selfxit-bench --new .build/release/selfxit-bench --rounds 8 [--batch 1] [--threads 2]

A whole-model A/B on a shared VM needs many rounds to see a few per cent (the same binary ran
ResNet-50 in 35 ms and in 57 ms minutes apart); a change to one kind of layer is seen more
clearly per node, in the model (cold weights, the previous layer's output where it was written),
than in a layer benchmark. Each round runs `selfxit-bench --profile --plan-order` (every node's
best of --iters whole-model runs) for the two builds, in turns whose order alternates round by
round; each node keeps its best over all rounds. Prints the nodes whose time moved by more than
--show per cent, then both sums of node bests and the per-round sums (the drift the rounds saw).
Noise floor on the Intel VM (two copies of one binary, 6 rounds): sums 1.007, single nodes ±4 %;
in a session whose machine swung 30 % minute to minute the bests of two copies read 0.96–0.98,
so each node's median of the per-round ratios ("paired") is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from profile_compare import keep_best, ours_profile  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--base", required=True, help="the selfxit-bench binary to compare against")
    p.add_argument("--new", default=".build/release/selfxit-bench")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--input-shape", help="C,H,W for symbolic-size models")
    p.add_argument("--show", type=float, default=3.0, help="list nodes whose best moved by more than this (per cent)")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds must be at least 1")

    best = {"base": {}, "new": {}}
    sums = {"base": [], "new": []}
    rounds = {"base": [], "new": []}
    order = None
    for r in range(args.rounds):
        # ABBA order: whichever runs second in a round meets a machine that has warmed up.
        pair = (("base", args.base), ("new", args.new))
        for key, binary in (pair if r % 2 == 0 else pair[::-1]):
            names, times, _ = ours_profile(binary, args.model, args.batch, args.threads, args.iters, args.input_shape)
            order = order or names
            sums[key].append(sum(times.values()))
            rounds[key].append(times)
            keep_best(best[key], times)

    def paired(name):
        """Median over the rounds of new/base within a round: one quiet minute that only one
        build met moves a best-of ratio (two copies of one binary read 0.96–0.98 by bests) but
        not this one."""
        ratios = [n[name] / b[name] for b, n in zip(rounds["base"], rounds["new"]) if b.get(name) and n.get(name)]
        return statistics.median_high(ratios) if ratios else float("nan")

    print(f"{'base ms':>9} {'new ms':>9} {'new/base':>8} {'paired':>7}  node (moved > {args.show:g} %: bests over all rounds; "
          "paired: median of the rounds' own ratios)")
    for name in order:
        a, b = best["base"].get(name), best["new"].get(name)
        if not (a and b):
            continue
        ratio = paired(name)
        if abs(b / a - 1) * 100 > args.show or abs(ratio - 1) * 100 > args.show:
            print(f"{a:9.3f} {b:9.3f} {b / a:8.3f} {ratio:7.3f}  {name}")
    a, b = sum(best["base"].values()), sum(best["new"].values())
    sum_ratio = statistics.median_high(y / x for x, y in zip(sums["base"], sums["new"]))
    print(f"\nsum of node bests: base {a:.3f} ms, new {b:.3f} ms, new/base {b / a:.3f}; "
          f"median of the rounds' sum ratios {sum_ratio:.3f}")
    print("per-round sums of node times (base/new): " + "  ".join(f"{x:.1f}/{y:.1f}" for x, y in zip(sums["base"], sums["new"])))


if __name__ == "__main__":
    sys.exit(main())
