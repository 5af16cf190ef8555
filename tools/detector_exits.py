#!/usr/bin/env python3
"""An exit build with the detector teacher on a whole torchvision detector (issue 13, point 6;
paper §3.5: the most confident object of the full detector teaches the exits).

The detector (default: .cache/detectors/maskrcnn_resnet50_fpn-op17.onnx from
tools/export_detectors.py, random weights) runs one image a call; its final detections — the
run-time-shaped tail's labels and scores after NMS — give each frame one class (the label of
the most confident detection above the threshold, else "none"). Frames: the pedestrian
fixture's JPEGs resized to the export size, each with a few noise draws. Collect with exits
off, build, then serve the same frames with exits on and count who answered.

    SELFXIT_LIBRARY=.build/release/libselfxit.so .cache/zoo-venv/bin/python tools/detector_exits.py \
        [--model PATH] [--draws 2] [--threshold 0.3] [--tolerance 0.05]
"""
import argparse
import collections
import glob
import os
import sys
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))


def frames(shape, draws: int) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:  # the tools venv has no Pillow: Debian's python3 (python3-pil) decodes them
        import subprocess
        import tempfile
        with tempfile.TemporaryDirectory() as folder:
            out = os.path.join(folder, "frames.npy")
            subprocess.run(["/usr/bin/python3", os.path.abspath(__file__), "--frames-only", out, "--shape",
                            ",".join(map(str, shape)), "--draws", str(draws)], check=True)
            return np.load(out)
    _, height, width = shape
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "Tests", "Fixtures", "pedestrian", "frames", "*.jpg"))):
        image = Image.open(path).convert("RGB").resize((width, height), Image.BILINEAR)
        pixels = (np.asarray(image, dtype=np.float32) / 255.0).transpose(2, 0, 1)
        for draw in range(draws):
            noise = np.random.default_rng(100 + draw).normal(0, 0.03, pixels.shape).astype(np.float32)
            out.append(np.clip(pixels + noise, 0, 1))
    return np.stack(out).astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=os.path.join(ROOT, ".cache", "detectors", "maskrcnn_resnet50_fpn-op17.onnx"))
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=0.3)
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames-only", default="", help=argparse.SUPPRESS)
    parser.add_argument("--shape", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.frames_only:
        np.save(args.frames_only, frames(tuple(int(d) for d in args.shape.split(",")), args.draws))
        return 0
    import selfxit
    teacher = f"detector:mode=most_confident_object,threshold={args.threshold},classes=91,background=0"
    with selfxit.Engine(args.model, threads=args.threads, max_batch=4, teacher=teacher) as engine:
        info = engine.info
        print(f"model {os.path.basename(args.model)}: input {info['input_shape']} (batch axis: {info['input_has_batch_axis']}), "
              f"{info['num_candidates']} exit candidates, teacher classes {info['num_classes']}")
        x = frames(info["input_shape"], args.draws)
        engine.set_exits_enabled(False)
        classes = collections.Counter()
        start = time.perf_counter()
        for i in range(0, len(x), 4):
            engine.submit(np.ascontiguousarray(x[i:i + 4]), lambda r: classes.update([r["class_index"]]))
        collect = time.perf_counter() - start
        print(f"collected {len(x)} frames in {collect:.1f} s ({collect / len(x):.2f} s a frame, full detector + teacher); "
              f"teacher classes seen: {dict(classes)} (0 = none)")
        start = time.perf_counter()
        engine.update_exits(tolerance=args.tolerance, search_budget=1, epochs=5, min_samples=10, keep_order=True)
        print(f"exit build: {time.perf_counter() - start:.1f} s, {engine.info['num_trained_exits']} trained, "
              f"{engine.info['num_active_exits']} active")
        engine.set_exits_enabled(True)
        answered = collections.Counter()
        start = time.perf_counter()
        for i in range(0, len(x), 4):
            engine.submit(np.ascontiguousarray(x[i:i + 4]), lambda r: answered.update([r["exit_index"]]))
        serve = time.perf_counter() - start
        print(f"served {len(x)} frames with exits on in {serve:.1f} s; answered by exit index (-1 = full model): {dict(answered)}")
        print(f"stats: {engine.stats().get('exits', engine.stats())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
