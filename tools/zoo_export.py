#!/usr/bin/python3
"""Exports the torchvision classification zoo to ONNX for the conformance suite (issue 13).

Runs under Debian's python3-torch / python3-torchvision (apt; offline, no downloads): every
model is built with random weights (seeded), its BatchNorm running statistics and affine
parameters and its LayerNorm parameters randomised, so BatchNorm folding and LayerNorm scale
and shift are exercised rather than being identities. Each architecture is exported at opset 13
and 17 with a dynamic batch axis:

    .cache/zoo/<name>-op<opset>.onnx
    .cache/zoo/<name>.input.npy        float32 [4, 3, H, W], seeded normal (batch 1 = row 0)

ONNX Runtime reference outputs are made by tools/zoo_conformance.py (it needs onnxruntime,
which lives in the tools venv, not in Debian's Python). Usage:

    python3 tools/zoo_export.py [--out .cache/zoo] [--only name,name] [--opsets 13,17]
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torchvision

# One representative per torchvision classification architecture (the smallest variant where
# a family has several): 30 architectures torch can export.
ARCHITECTURES = [
    "alexnet", "convnext_tiny", "densenet121", "efficientnet_b0", "efficientnet_v2_s",
    "googlenet", "inception_v3", "mnasnet0_5", "mnasnet1_0", "mobilenet_v2",
    "mobilenet_v3_large", "mobilenet_v3_small", "regnet_x_400mf", "regnet_y_400mf", "resnet18",
    "resnet50", "resnext50_32x4d", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "squeezenet1_0",
    "squeezenet1_1", "swin_t", "vgg11", "vgg11_bn", "vit_b_16", "vit_b_32", "wide_resnet50_2",
    "densenet161", "efficientnet_b1", "maxvit_t",
]

INPUT_SIZE = {"inception_v3": 299}


def randomise(model: torch.nn.Module, gen: torch.Generator) -> None:
    """BatchNorm statistics and affine parameters, LayerNorm parameters: away from identity."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
                if m.weight is not None:
                    m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            elif isinstance(m, torch.nn.Linear) and not m.weight.any():
                # Zero-initialised heads (ViT, Swin): random, or every logit would be the bias
                # and the comparison with ONNX Runtime would prove nothing.
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * 0.02)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.01)
            elif isinstance(m, torch.nn.LayerNorm) and m.elementwise_affine:
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)


def build(name: str) -> torch.nn.Module:
    kwargs = {}
    if name in ("googlenet", "inception_v3"):
        kwargs["aux_logits"] = False
        kwargs["init_weights"] = True
    return torchvision.models.__dict__[name](weights=None, **kwargs).eval()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=".cache/zoo")
    parser.add_argument("--only", default="")
    parser.add_argument("--opsets", default="13,17")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    names = [n for n in args.only.split(",") if n] or ARCHITECTURES
    opsets = [int(o) for o in args.opsets.split(",")]
    torch.set_num_threads(1)
    failures = 0
    for name in names:
        if name not in torchvision.models.__dict__:
            print(f"{name}: not in torchvision {torchvision.__version__}, skipped", flush=True)
            continue
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(1234)
        try:
            model = build(name)
        except Exception as error:  # an architecture this torchvision cannot build
            print(f"{name}: cannot build: {error}", flush=True)
            failures += 1
            continue
        randomise(model, gen)
        size = INPUT_SIZE.get(name, 224)
        rng = np.random.default_rng(7)
        x = rng.standard_normal((4, 3, size, size), dtype=np.float32)
        np.save(os.path.join(args.out, f"{name}.input.npy"), x)
        for opset in opsets:
            path = os.path.join(args.out, f"{name}-op{opset}.onnx")
            if os.path.exists(path):
                continue
            start = time.time()
            try:
                torch.onnx.export(
                    model, torch.from_numpy(x[:1]), path + ".tmp", opset_version=opset,
                    input_names=["input"], output_names=["logits"],
                    dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                    do_constant_folding=True)
                os.replace(path + ".tmp", path)
                print(f"{name} opset {opset}: {os.path.getsize(path) / 1e6:.1f} MB, {time.time() - start:.0f} s", flush=True)
            except Exception as error:
                print(f"{name} opset {opset}: export failed: {type(error).__name__}: {error}", flush=True)
                failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
