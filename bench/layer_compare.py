"""Single convolutions of ResNet-50 against ONNX Runtime, one model per layer, interleaved.

    .cache/isa-venv/bin/python bench/layer_compare.py [--threads 1] [--batch 1] [--rounds 3] [--only NAME ...]

Each layer is a model of its own (Conv + bias + ReLU, random weights, opset 17, written once to
.cache/layer-models/) timed by compare.py's `measure_round` (the two engines taking turns),
max(8, 60 / batch) batches of --batch a round (60 of 1 by default); it prints the pooled
medians and each round's ratio. The ratios include
each engine's model boundary (our output copy, ORT's layout reorders), large on these one-layer
models; they locate a whole model's gap by layer shape (BENCHMARKS §7.23).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import compare  # noqa: E402

# name: input channels, input side, output channels, kernel, stride (ResNet-50's shapes).
LAYERS = {
    "c1x1_256_64_56": (256, 56, 64, 1, 1), "c3x3_64_64_56": (64, 56, 64, 3, 1), "c1x1_64_256_56": (64, 56, 256, 1, 1),
    "c1x1_512_128_28": (512, 28, 128, 1, 1), "c3x3_128_128_28": (128, 28, 128, 3, 1),
    "c3x3_256_256_14": (256, 14, 256, 3, 1), "c1x1_1024_256_14": (1024, 14, 256, 1, 1),
    "c3x3_512_512_7": (512, 7, 512, 3, 1), "stem7x7": (3, 224, 64, 7, 2),
    # ResNet-18 w64 on 28×28 (bench/make_bench_models.py): its stages at 28, 14, 7 and 4.
    "r18_64_28": (64, 28, 64, 3, 1), "r18_128_14": (128, 14, 128, 3, 1), "r18_256_7": (256, 7, 256, 3, 1),
    "r18_512_4": (512, 4, 512, 3, 1),
}


def make_model(path, cin, side, cout, k, stride):
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((cout, cin, k, k)) * (2.0 / (cin * k * k)) ** 0.5).astype(np.float32)
    b = (rng.standard_normal(cout) * 0.1).astype(np.float32)
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["y"], kernel_shape=[k, k], strides=[stride, stride],
                              pads=[k // 2] * 4),
             helper.make_node("Relu", ["y"], ["logits"])]
    graph = helper.make_graph(nodes, os.path.basename(path),
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", cin, side, side])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--only", nargs="+", choices=list(LAYERS), metavar="NAME")
    p.add_argument("--selfxit-bin", default=os.path.join(ROOT, ".build", "release", "selfxit-bench"))
    p.add_argument("--models-dir", default=os.path.join(ROOT, ".cache", "layer-models"))
    args = p.parse_args(argv)
    if args.threads < 1 or args.rounds < 1 or args.batch < 1:
        p.error("--threads, --rounds and --batch must be at least 1")
    os.makedirs(args.models_dir, exist_ok=True)
    for name in args.only or LAYERS:
        path = os.path.join(args.models_dir, name + ".onnx")
        if not os.path.exists(path):
            make_model(path, *LAYERS[name])
        ratios, ort_all, ours_all = [], [], []
        for _ in range(args.rounds):
            r = compare.measure_round(path, args.batch, args.threads, max(8, 60 // args.batch), 3, args.selfxit_bin, 300)
            # measure_round gives each engine's turns (bursts of batches): pooled here.
            ort_ms = [t for turn in r["ort"][0] for t in turn]
            ours_ms = [t for turn in r["ours"][0] for t in turn]
            ratios.append(statistics.median(ours_ms) / statistics.median(ort_ms))
            ort_all += ort_ms
            ours_all += ours_ms
        ort, ours = statistics.median(ort_all), statistics.median(ours_all)
        print(f"{name:18s} batch {args.batch} threads {args.threads}: ORT {ort:.3f} ms, ours {ours:.3f} ms, ratio {ours / ort:.2f}, "
              f"rounds {' '.join(f'{x:.2f}' for x in ratios)}", flush=True)


if __name__ == "__main__":
    main()
