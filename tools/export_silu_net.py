"""Export ``silu_se_net``: a small EfficientNet-style test model (SiLU, squeeze-excite, softmax).

Built directly with the ``onnx`` package's helper API (no torch needed), then run by ONNX
Runtime (CPUExecutionProvider) for the reference outputs.  Writes

    Tests/Fixtures/models/silu_se_net.onnx
    Tests/Fixtures/reference/silu_se_net.b{1,8}.{input,output}.f32
    Tests/Fixtures/reference/manifest.json     (adds / replaces the "silu_se_net" entry only)

so ParityTests covers it like the models of ``tools/export_test_models.py`` and the
non-finite input tests (HardeningFloatTests, Tests/CABI/test_nonfinite.c) run it.

Graph (opset 17, input "input" N×3×32×32, output "probs" N×10), the shape of EfficientNet-B0's
blocks at toy width — every SiLU is ``x · Sigmoid(x)`` as torch exports ``nn.SiLU``:

    stem      Conv 3→16 3×3 s2, BatchNorm, SiLU                               16×16×16
    MBConv1   depthwise 3×3, BN, SiLU, SE(16→4→16), project 1×1 16→16, BN, + skip
    MBConv6   expand 1×1 16→48, BN, SiLU, depthwise 3×3 s2, BN, SiLU,
              SE(48→4→48), project 48→24, BN                                 24×8×8
    MBConv6   expand 24→72, BN, SiLU, depthwise 5×5, BN, SiLU, SE(72→6→72),
              project 72→24, BN, + skip
    head      Conv 1×1 24→64, BN, SiLU, GlobalAveragePool, Flatten, Gemm 64→10, Softmax

SE = GlobalAveragePool → Conv 1×1 (reduce) → SiLU → Conv 1×1 (expand) → Sigmoid → Mul (the
gate broadcast over H×W).  Weights are seeded He-normal, BatchNorm statistics random but
sane, so activations stay O(1); the classifier is calibrated so that the classes differ
between samples (``calibrate_classifier``).  Needs ``onnx``, ``onnxruntime`` and ``numpy`` only:

    python3 -m venv /tmp/sxvenv && /tmp/sxvenv/bin/pip install onnx onnxruntime numpy
    /tmp/sxvenv/bin/python tools/export_silu_net.py
"""

from __future__ import annotations

import argparse
import collections
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

NAME = "silu_se_net"
OPSET = 17
BATCHES = (1, 8)
CHW = (3, 32, 32)
CLASSES = 10


class Builder:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.count = collections.Counter()

    def name(self, kind: str) -> str:
        self.count[kind] += 1
        return f"{kind}{self.count[kind]}"

    def init(self, name: str, arr) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name))
        return name

    def conv(self, x: str, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, bias: bool = False) -> str:
        n = self.name("conv")
        fan_in = cin // groups * k * k
        w = self.init(n + "_w", self.rng.standard_normal((cout, cin // groups, k, k)) * np.sqrt(2.0 / fan_in))
        inputs = [x, w]
        if bias:
            inputs.append(self.init(n + "_b", self.rng.standard_normal(cout) * 0.1))
        self.nodes.append(helper.make_node("Conv", inputs, [n], name=n, kernel_shape=[k, k], strides=[stride, stride],
                                           pads=[k // 2] * 4, group=groups))
        return n

    def bn(self, x: str, c: int) -> str:
        n = self.name("bn")
        scale = self.init(n + "_scale", self.rng.uniform(0.5, 1.5, c))
        shift = self.init(n + "_shift", self.rng.standard_normal(c) * 0.1)
        mean = self.init(n + "_mean", self.rng.standard_normal(c) * 0.1)
        var = self.init(n + "_var", self.rng.uniform(0.5, 2.0, c))
        self.nodes.append(helper.make_node("BatchNormalization", [x, scale, shift, mean, var], [n], name=n, epsilon=1e-5))
        return n

    def silu(self, x: str) -> str:
        n = self.name("silu")
        self.nodes.append(helper.make_node("Sigmoid", [x], [n + "_sig"], name=n + "_sigmoid"))
        self.nodes.append(helper.make_node("Mul", [x, n + "_sig"], [n], name=n + "_mul"))
        return n

    def se(self, x: str, c: int, reduced: int) -> str:
        n = self.name("se")
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], [n + "_pool"], name=n + "_pool"))
        s = self.silu(self.conv(n + "_pool", c, reduced, bias=True))
        e = self.conv(s, reduced, c, bias=True)
        self.nodes.append(helper.make_node("Sigmoid", [e], [n + "_gate"], name=n + "_gate"))
        self.nodes.append(helper.make_node("Mul", [x, n + "_gate"], [n], name=n + "_scale"))
        return n

    def add(self, a: str, b: str) -> str:
        n = self.name("add")
        self.nodes.append(helper.make_node("Add", [a, b], [n], name=n))
        return n

    def mbconv(self, x: str, cin: int, cout: int, expand: int, k: int, stride: int, se_reduced: int) -> str:
        h = x
        mid = cin * expand
        if expand != 1:
            h = self.silu(self.bn(self.conv(h, cin, mid), mid))
        h = self.silu(self.bn(self.conv(h, mid, mid, k=k, stride=stride, groups=mid), mid))
        h = self.se(h, mid, se_reduced)
        h = self.bn(self.conv(h, mid, cout), cout)
        return self.add(h, x) if stride == 1 and cin == cout else h


def build(seed: int) -> onnx.ModelProto:
    b = Builder(seed)
    h = b.silu(b.bn(b.conv("input", 3, 16, k=3, stride=2), 16))
    h = b.mbconv(h, 16, 16, expand=1, k=3, stride=1, se_reduced=4)
    h = b.mbconv(h, 16, 24, expand=3, k=3, stride=2, se_reduced=4)
    h = b.mbconv(h, 24, 24, expand=3, k=5, stride=1, se_reduced=6)
    h = b.silu(b.bn(b.conv(h, 24, 64), 64))
    b.nodes.append(helper.make_node("GlobalAveragePool", [h], ["gap"], name="gap"))
    b.nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1))
    w = b.init("fc_w", b.rng.standard_normal((CLASSES, 64)) * np.sqrt(2.0 / 64))
    bias = b.init("fc_b", b.rng.standard_normal(CLASSES) * 0.1)
    b.nodes.append(helper.make_node("Gemm", ["flat", w, bias], ["logits"], name="fc", transB=1))
    b.nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1))
    graph = helper.make_graph(
        b.nodes, NAME,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", *CHW])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", CLASSES])],
        initializer=b.inits,
        doc_string="EfficientNet-style SiLU + squeeze-excite + softmax test model for SelfXit (tools/export_silu_net.py)",
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="selfxit-tools")
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def calibrate_classifier(m: onnx.ModelProto, seed: int) -> None:
    """Whitens the pooled features into the classifier (a BatchNorm folded into the Gemm).

    Global pooling of noise-driven features leaves them nearly constant across samples (std
    ~0.03 around a mean ~0.15), so the raw classifier would give every sample the same class
    and parity would test little. Features are measured on a calibration batch (its own
    seed, not the reference inputs) and fc_w/fc_b rescaled to act on (f − mean) / std.
    """
    probe = onnx.ModelProto()
    probe.CopyFrom(m)
    probe.graph.output.append(helper.make_tensor_value_info("flat", TensorProto.FLOAT, None))
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(seed + 99).standard_normal((64, *CHW)).astype(np.float32)
    flat = sess.run(["flat"], {"input": x})[0].astype(np.float64)
    mean, std = flat.mean(0), flat.std(0) + 1e-3
    inits = {t.name: t for t in m.graph.initializer}
    w = numpy_helper.to_array(inits["fc_w"]).astype(np.float64)
    b = numpy_helper.to_array(inits["fc_b"]).astype(np.float64)
    w2 = w / std
    b2 = b - w2 @ mean
    inits["fc_w"].CopyFrom(numpy_helper.from_array(w2.astype(np.float32), "fc_w"))
    inits["fc_b"].CopyFrom(numpy_helper.from_array(b2.astype(np.float32), "fc_b"))


def main(argv=None) -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(root, "Tests", "Fixtures"), help="fixture root")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    model_dir, ref_dir = os.path.join(args.out, "models"), os.path.join(args.out, "reference")
    path = os.path.join(model_dir, NAME + ".onnx")
    model = build(args.seed)
    calibrate_classifier(model, args.seed)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    entry = {
        "file": NAME + ".onnx", "input_name": "input", "output_name": "probs",
        "input_shape": {}, "output_shape": {}, "max_abs_output": {}, "references": {},
        "ops": dict(sorted(collections.Counter(n.op_type for n in onnx.load(path).graph.node).items())),
        "bytes": os.path.getsize(path),
        "generator": "tools/export_silu_net.py --seed %d (onnx %s, onnxruntime %s)" % (args.seed, onnx.__version__, ort.__version__),
    }
    for batch in BATCHES:
        x = np.random.default_rng(args.seed * 1000 + batch).standard_normal((batch, *CHW)).astype(np.float32)
        y = sess.run(None, {"input": x})[0].astype(np.float32)
        if not np.all(np.isfinite(y)):
            raise RuntimeError(f"{NAME}: non-finite output")
        stem = f"{NAME}.b{batch}"
        x.astype("<f4").tofile(os.path.join(ref_dir, stem + ".input.f32"))
        y.astype("<f4").tofile(os.path.join(ref_dir, stem + ".output.f32"))
        entry["input_shape"][str(batch)] = list(x.shape)
        entry["output_shape"][str(batch)] = list(y.shape)
        entry["max_abs_output"][str(batch)] = float(np.abs(y).max())
        entry["references"][str(batch)] = {"input": stem + ".input.f32", "output": stem + ".output.f32"}
        # The classes must not be a foregone conclusion, or parity says little.
        print(f"b{batch}: argmax {y.argmax(1).tolist()}  max p {y.max(1).round(3).tolist()}")

    manifest_path = os.path.join(ref_dir, "manifest.json")
    with open(manifest_path) as f:
        manifest = json.load(f)
    manifest["models"][NAME] = entry
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"{NAME}: {entry['bytes']} B, ops {entry['ops']}")


if __name__ == "__main__":
    main()
