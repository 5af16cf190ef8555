"""torchvision benchmark models for bench/compare.py (random weights, not committed).

    python3 -m venv --system-site-packages .cache/isa-venv        # Debian python3-torch(vision)
    .cache/isa-venv/bin/pip install "numpy<2" onnx onnxruntime      # ORT for compare.py
    .cache/isa-venv/bin/python tools/export_torchvision_bench.py    # into .cache/models/

Writes tv-<name>.onnx for ResNet-50, MobileNetV3-Large, EfficientNet-B0, RegNetY-400MF and
DenseNet-121 (torchvision's architectures with its default random initialisation, eval mode,
fixed seed; 3×224×224, 1000 classes, opset 17, input "input", output "logits", dynamic batch).
Works with Debian's python3-torch / python3-torchvision (torch 1.13) or a PyPI torch.
Existing files are kept unless --force.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torchvision

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODELS = {
    "tv-resnet50.onnx": "resnet50",
    "tv-mobilenetv3l.onnx": "mobilenet_v3_large",
    "tv-efficientnetb0.onnx": "efficientnet_b0",
    "tv-regnety400mf.onnx": "regnet_y_400mf",
    "tv-densenet121.onnx": "densenet121",
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(ROOT, ".cache", "models"))
    p.add_argument("--force", action="store_true")
    p.add_argument("--seed", type=int, default=14)
    p.add_argument("--only", nargs="*", help="file names to write (default: all)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    for i, (fname, arch) in enumerate(MODELS.items()):
        if args.only and fname not in args.only:
            continue
        path = os.path.join(args.out, fname)
        if os.path.exists(path) and not args.force:
            print(f"exists, skipped: {path}")
            continue
        t0 = time.time()
        torch.manual_seed(args.seed + i)
        model = getattr(torchvision.models, arch)(num_classes=1000).eval()
        x = torch.randn(1, 3, 224, 224)
        tmp = path + ".tmp"
        with torch.no_grad():
            torch.onnx.export(model, x, tmp, opset_version=17, input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True)
        os.replace(tmp, path)
        print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB, {time.time() - t0:.0f}s)")


if __name__ == "__main__":
    main()
