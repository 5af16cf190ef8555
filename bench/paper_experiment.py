"""The SelfXit paper's Fashion-MNIST experiment (Tables 2, 3 and 5), in one run.

    python3 bench/paper_experiment.py [--model .cache/models/fmnist-resnet18-w64.onnx] [--threads 2]

Needs the width-64 ResNet-18 trained by tools/train_fmnist_resnet.py (cached, not
committed; this script trains it when missing, see --train) and the release build of
`selfxit-experiment` (swift build -c release). The 10 000 Fashion-MNIST test images are the
unlabeled inference data, split 50/20/30 with a seed; labels only score the held-out 30 %.
Prints, per tolerance: per-exit HR / A_exit / A_GT / accuracy effect, final accuracy vs the
backbone, FLOPs original vs exit-enabled, CPU latency at batch 1 and 32 with and without
exits, and ONNX Runtime's latency for the full model measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import ort_bench  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=os.path.join(ROOT, ".cache/models/fmnist-resnet18-w64.onnx"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tolerances", default="0.005,0.01,0.02")
    p.add_argument("--search-budget", type=int, default=4)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--selfxit-bin", default=os.path.join(ROOT, ".build/release/selfxit-experiment"))
    p.add_argument("--train", action="store_true", help="train the model first if it is missing")
    args = p.parse_args()

    if not os.path.exists(args.model):
        if not args.train:
            sys.exit(f"{args.model} is missing: run with --train, or\n  python3 tools/train_fmnist_resnet.py --width 64 "
                     f"--epochs 1 --train-subset 24000 --threads 1 --max-minutes 0 --out {args.model[:-5]}")
        subprocess.run([sys.executable, os.path.join(ROOT, "tools/train_fmnist_resnet.py"), "--width", "64", "--epochs", "1",
                        "--train-subset", "24000", "--threads", "1", "--max-minutes", "0", "--out", args.model[:-5]], check=True)

    command = [args.selfxit_bin, "--model", args.model, "--threads", str(args.threads), "--tolerances", args.tolerances,
               "--search-budget", str(args.search_budget), "--epochs", str(args.epochs), "--seed", str(args.seed)]
    print("$ " + " ".join(command), file=sys.stderr)
    results = json.loads(subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout)
    ort = {b: ort_bench.measure(args.model, b, threads=args.threads, iters=30 if b == 1 else 10, warmup=3) for b in (1, 32)}

    print(f"# SelfXit on Fashion-MNIST ResNet-18 (width 64), {args.threads} threads\n")
    for r in results:
        t = r["tolerance"]
        print(f"## Tolerance T = {100 * t:.1f} %  (exit build {r['buildSeconds']:.1f} s)\n")
        print("| exit | tensor | head | HR | A_exit | A_GT | accuracy effect | threshold |")
        print("|---|---|---|---:|---:|---:|---:|---:|")
        for row in r["rows"]:
            print(f"| {row['exitIndex']} | {row['tensor']} | {row['head']} | {100 * row['hitRate']:.1f} % | {100 * row['agreementExit']:.1f} % | "
                  f"{100 * row['accuracyGT']:.1f} % | {100 * row['accuracyEffect']:+.2f} pt | {row['threshold']:.3f} |")
        print()
        drop = 100 * (r["accuracyBackbone"] - r["accuracyExits"])
        print(f"- held-out accuracy: backbone {100 * r['accuracyBackbone']:.2f} %, with exits {100 * r['accuracyExits']:.2f} % "
              f"(drop {drop:.2f} pt); agreement with the backbone {100 * r['agreement']:.2f} %")
        print(f"- FLOPs per image: original {r['flopsBackbone'] / 1e6:.1f} M, exit-enabled {r['flopsExits'] / 1e6:.1f} M "
              f"({100 * r['flopsExits'] / r['flopsBackbone']:.1f} %)")
        print(f"- exit heads add {r['headBytes'] / 1e3:.0f} kB to a {r['modelBytes'] / 1e6:.1f} MB model "
              f"({100 * r['headBytes'] / max(r['modelBytes'], 1):.2f} %)")
        print("\n| batch | ORT full model (ms/image) | SelfXit full model | SelfXit with exits | exits / ORT |")
        print("|---:|---:|---:|---:|---:|")
        for lat in r["latency"]:
            o = ort[lat["batch"]]["ms_per_image"]
            print(f"| {lat['batch']} | {o:.3f} | {lat['backboneMsPerImage']:.3f} | {lat['exitsMsPerImage']:.3f} | {lat['exitsMsPerImage'] / o:.2f} |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
