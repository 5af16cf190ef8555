#!/usr/bin/python3
"""Exports torchvision's five detectors to ONNX for the detector conformance suite (issue 13).

Runs under Debian's python3-torch 1.13 / python3-torchvision 0.14 (apt; offline, no downloads):
every detector is built with random weights (`weights=None, weights_backbone=None`, seeded), its
BatchNorm statistics and affine parameters randomised (tools/zoo_export.randomise), in eval mode,
and exported at a fixed input size `[3, 240, 336]` (one image, no batch axis: torchvision's
detectors take a list of images) at opset 17 (and 13 with --opsets 13,17).

Random weights give near-uniform or saturated class scores; the class layers are therefore
scaled so their logits on the frame have a set spread (TARGET_STD), and the models' score
threshold is lowered to 0.05 (the compare threshold of the suite).

The input is a real frame (Tests/Fixtures/pedestrian/frames/f000_full.jpg) resized to 336 × 240, with a little noise,
in [0, 1] like torchvision's detectors expect. The smaller input (and min_size 320 for the
ResNet-50 models instead of 800) keeps the suite runnable on a shared 2-core machine; the
graph constructs are the same at any size.

    .cache/detectors/<name>-op<opset>.onnx
    .cache/detectors/input.npy          float32 [3, 240, 336]
    .cache/detectors/<name>.torch.npz   torch's own outputs (boxes, labels, scores[, masks])

ONNX Runtime reference outputs and the engine comparison: tools/detector_conformance.py.

    python3 tools/export_detectors.py [--out .cache/detectors] [--only a,b] [--opsets 17]
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torchvision
from torchvision.models import detection

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zoo_export import randomise  # noqa: E402  (same BatchNorm randomisation as the classifier zoo)

# 240 × 336: the R-CNN transforms scale it to 320 × 448, a multiple of 32, so no zero padding
# (a flat region whose anchors all score the same) enters the image.
HEIGHT, WIDTH = 240, 336
SMALL = dict(min_size=320, max_size=512)

# name -> (builder keyword arguments, output names)
DETECTORS = {
    "ssdlite320_mobilenet_v3_large": (dict(score_thresh=0.05), ["boxes", "scores", "labels"]),
    "fasterrcnn_mobilenet_v3_large_320_fpn": (dict(box_score_thresh=0.05), ["boxes", "labels", "scores"]),
    "retinanet_resnet50_fpn": (dict(score_thresh=0.05, **SMALL), ["boxes", "scores", "labels"]),
    "fasterrcnn_resnet50_fpn": (dict(box_score_thresh=0.05, **SMALL), ["boxes", "labels", "scores"]),
    "maskrcnn_resnet50_fpn": (dict(box_score_thresh=0.05, **SMALL), ["boxes", "labels", "scores", "masks"]),
}

# Logit spread the class layers are scaled to (std over one frame). Random weights otherwise
# give either near-uniform scores (no detection above 0.05) or, through 50 randomised
# BatchNorm layers, saturated ones (every score exactly 1.0): both make the compare meaningless,
# since tied scores let NMS and top-k keep any of the tied boxes.
TARGET_STD = {"ssdlite": 2.5, "retinanet": 1.5, "rcnn": 2.5, "rpn": 2.0}


def class_layers(name: str, model: torch.nn.Module) -> dict:
    """The last class-scoring layers, by role."""
    if name.startswith("ssdlite"):
        return {"ssdlite": [block[-1] for block in model.head.classification_head.module_list]}
    if name.startswith("retinanet"):
        return {"retinanet": [model.head.classification_head.cls_logits]}
    return {"rcnn": [model.roi_heads.box_predictor.cls_score], "rpn": [model.rpn.head.cls_logits]}


def sharpen_class_heads(name: str, model: torch.nn.Module, x: np.ndarray) -> None:
    """Scales each class layer (weights and bias) so its logits on the frame have TARGET_STD."""
    layers = class_layers(name, model)
    seen = {role: [] for role in layers}
    hooks = [m.register_forward_hook(lambda _m, _i, out, role=role: seen[role].append(out.detach().flatten()))
             for role, modules in layers.items() for m in modules]
    with torch.no_grad():
        model([torch.from_numpy(x)])
    for h in hooks:
        h.remove()
    with torch.no_grad():
        for role, modules in layers.items():
            std = float(torch.cat(seen[role]).std())
            gain = TARGET_STD[role] / max(std, 1e-6)
            for m in modules:
                m.weight.mul_(gain)
                if m.bias is not None:
                    m.bias.mul_(gain)
            if role == "retinanet":
                modules[0].bias.fill_(-3.0)  # prior: a few scores above 0.05, not all of them
            print(f"  {role}: logit std {std:.3g} -> gain {gain:.3g}", flush=True)


def frame() -> np.ndarray:
    from PIL import Image
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    path = os.path.join(root, "Tests", "Fixtures", "pedestrian", "frames", "f000_full.jpg")
    image = Image.open(path).convert("RGB").resize((WIDTH, HEIGHT), Image.BILINEAR)
    pixels = (np.asarray(image, dtype=np.float32) / 255.0).transpose(2, 0, 1)
    # A little sensor noise: flat regions of the frame (sky, walls) would give many anchors
    # exactly the same score, and between exact ties NMS may keep any box (ONNX Runtime's
    # choice follows its heap order, which float rounding elsewhere can change).
    noise = np.random.default_rng(5).normal(0, 0.03, pixels.shape).astype(np.float32)
    return np.clip(pixels + noise, 0, 1).astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=".cache/detectors")
    parser.add_argument("--only", default="")
    parser.add_argument("--opsets", default="17")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    names = [n for n in args.only.split(",") if n] or list(DETECTORS)
    opsets = [int(o) for o in args.opsets.split(",")]
    torch.set_num_threads(1)
    x = frame()
    np.save(os.path.join(args.out, "input.npy"), x)
    failures = 0
    for name in names:
        kwargs, outputs = DETECTORS[name]
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(1234)
        model = detection.__dict__[name](weights=None, weights_backbone=None, **kwargs)
        randomise(model, gen)
        model.eval()
        sharpen_class_heads(name, model, x)
        with torch.no_grad():
            result = model([torch.from_numpy(x)])[0]
        np.savez(os.path.join(args.out, f"{name}.torch.npz"), **{k: v.numpy() for k, v in result.items()})
        print(f"{name}: torch finds {len(result['scores'])} detections above 0.05 "
              f"(top score {float(result['scores'].max()) if len(result['scores']) else 0:.3f})", flush=True)
        for opset in opsets:
            path = os.path.join(args.out, f"{name}-op{opset}.onnx")
            if os.path.exists(path):
                continue
            start = time.time()
            try:
                torch.onnx.export(model, ([torch.from_numpy(x)],), path + ".tmp", opset_version=opset,
                                  input_names=["image"], output_names=outputs, do_constant_folding=True)
                os.replace(path + ".tmp", path)
                print(f"{name} opset {opset}: {os.path.getsize(path) / 1e6:.1f} MB, {time.time() - start:.0f} s", flush=True)
            except Exception as error:
                print(f"{name} opset {opset}: export failed: {type(error).__name__}: {error}", flush=True)
                failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
