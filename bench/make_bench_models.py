"""Write the full-size random-weight benchmark models (not committed).

    python3 bench/make_bench_models.py            # into .cache/models/
    python3 bench/make_bench_models.py --out DIR --force

Makes (skipping files that already exist unless --force):
    resnet18-w64-28.onnx   resnet18_cifar width 64, 1×28×28, 10 classes  (~45 MB)
    resnet50-224.onnx      ResNet-50, 3×224×224, 1000 classes            (~100 MB)
    mobilenetv2-224.onnx   MobileNetV2 1.0, 3×224×224, 1000 classes      (~14 MB)

Weights come from tools/models.randomize (fixed seed; non-trivial BN
statistics, BN kept as separate nodes), opset 17, input "input",
output "logits", dynamic batch.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import models as M  # noqa: E402

BENCH_MODELS = {
    "resnet18-w64-28.onnx": (lambda: M.resnet18_cifar(width=64, in_ch=1, classes=10), (1, 28, 28)),
    "resnet50-224.onnx": (lambda: M.resnet50(width=64, in_ch=3, classes=1000), (3, 224, 224)),
    "mobilenetv2-224.onnx": (lambda: M.mobilenetv2(width_mult=1.0, classes=1000), (3, 224, 224)),
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(ROOT, ".cache", "models"))
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    for i, (fname, (factory, shape)) in enumerate(BENCH_MODELS.items()):
        path = os.path.join(args.out, fname)
        if os.path.exists(path) and not args.force:
            print(f"exists, skipped: {path}")
            continue
        t0 = time.time()
        torch.manual_seed(args.seed + i)
        model = M.randomize(factory(), shape, seed=args.seed + i, calib_batch=4)
        tmp = path + ".tmp"
        M.export_onnx(model, tmp, shape, output_name="logits")
        os.replace(tmp, path)
        print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB, {time.time() - t0:.0f}s)")


if __name__ == "__main__":
    main()
