"""Export SelfXit's committed test models and their ONNX Runtime references.

Writes small random-weight ONNX models into ``Tests/Fixtures/models/`` and,
for each of them, reference data computed by ONNX Runtime
(CPUExecutionProvider) into ``Tests/Fixtures/reference/``:

    <model>.b1.input.f32  <model>.b1.output.f32     raw little-endian float32
    <model>.b8.input.f32  <model>.b8.output.f32
    manifest.json                                    shapes, names, max|out|, op census

Inputs are seeded N(0, 1) noise.  Everything is deterministic for a given
torch/onnx/onnxruntime version (see requirements.txt).  Run from the repo root:

    python3 tools/export_test_models.py

Models (all opset 17, input "input", dynamic batch):
    resnet18_w4                ResNet-18 CIFAR stem, width 4, 1×28×28
    resnet18_w4_float_data     same graph, tensors in typed float_data/int64_data fields
    resnet18_w4_fp16_weights   float weights stored as float16 initializers + Cast(to=FLOAT)
    resnet18_w4_unsupported_op classifier Gemm replaced by an Einsum node
                               named "UNSUPPORTED_einsum_classifier" (same outputs)
    resnet50_w4                ResNet-50 (ImageNet stem/bottlenecks), width 4, 3×64×64, 10 classes
    mobilenetv2_x0.25          MobileNetV2 width 0.25, 3×64×64, 100 classes
    mobilenet_v3ish            Hardswish/SE/SiLU/Sigmoid/dilated+grouped conv/padded AvgPool/
                               Dropout (re-inserted after export)/Softmax, 3×32×32
    tf_same_net                dynamic TF-"same" padding shape chains (dynamic H/W), 3×33×33
    branchy_net                Inception-like 3-branch block, 1×28×28
    auto_pad_same              hand-built: auto_pad SAME_UPPER/LOWER, ceil_mode MaxPool,
                               Pad(value≠0), Transpose, (Un)Squeeze, Concat, MatMul,
                               Gemm(transB, alpha, beta), Sub, Div, Clip(min/max inputs)
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models as M  # noqa: E402

BATCHES = (1, 8)
OPSET = 17


# --------------------------------------------------------------------------
# PyTorch-exported models
# --------------------------------------------------------------------------

TORCH_MODELS = [
    # name, factory, input shape (C,H,W), output name, dynamic H/W
    ("resnet18_w4", lambda: M.resnet18_cifar(width=4, in_ch=1, classes=10), (1, 28, 28), "logits", False),
    ("resnet50_w4", lambda: M.resnet50(width=4, in_ch=3, classes=10), (3, 64, 64), "logits", False),
    ("mobilenetv2_x0.25", lambda: M.mobilenetv2(width_mult=0.25, classes=10, last_channel=320), (3, 64, 64), "logits", False),
    ("mobilenet_v3ish", lambda: M.mobilenet_v3ish(in_ch=3, classes=10), (3, 32, 32), "probs", False),
    ("tf_same_net", lambda: M.tf_same_net(in_ch=3, classes=10), (3, 33, 33), "logits", True),
    ("branchy_net", lambda: M.branchy_net(in_ch=1, classes=10), (1, 28, 28), "logits", False),
]


def export_torch_models(model_dir, seed):
    """Export the PyTorch models; returns {name: (input_shape, torch_module)}."""
    out = {}
    for i, (name, factory, shape, out_name, dyn_hw) in enumerate(TORCH_MODELS):
        torch.manual_seed(seed + i)
        model = M.randomize(factory(), shape, seed=seed + i)
        path = os.path.join(model_dir, name + ".onnx")
        M.export_onnx(model, path, shape, output_name=out_name, dynamic_hw=dyn_hw)
        if name == "mobilenet_v3ish":
            insert_dropout_before_gemm(path)
        if dyn_hw:
            check_dynamic_hw(path, model, shape)
        out[name] = (shape, model)
    return out


def check_dynamic_hw(path, model, shape):
    """The file must hold a real shape sub-graph that is right at other input sizes."""
    ops = {n.op_type for n in onnx.load(path).graph.node}
    missing = {"Shape", "Gather", "Concat", "Pad"} - ops
    if missing:
        raise RuntimeError(f"{path}: no dynamic shape chain (missing {sorted(missing)})")
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for hw in [(shape[1] - 1, shape[2] - 1), (shape[1] + 7, shape[2] + 8)]:
        x = torch.randn(2, shape[0], *hw)
        with torch.no_grad():
            ref = model(x).numpy()
        err = np.abs(sess.run(None, {"input": x.numpy()})[0] - ref).max()
        if err > 1e-4 * max(1.0, np.abs(ref).max()):
            raise RuntimeError(f"{path}: wrong at input size {hw} (max err {err:.2e})")


def insert_dropout_before_gemm(path):
    """Eval-mode export drops nn.Dropout; put an inference Dropout(ratio=0.2) node back."""
    m = onnx.load(path)
    g = m.graph
    gemm = next(n for n in g.node if n.op_type == "Gemm")
    x = gemm.input[0]
    g.initializer.append(numpy_helper.from_array(np.array(0.2, dtype=np.float32), "dropout_ratio"))
    drop = helper.make_node("Dropout", [x, "dropout_ratio"], [x + "_dropout"], name="classifier_dropout")
    gemm.input[0] = x + "_dropout"
    nodes = list(g.node)
    nodes.insert(nodes.index(gemm), drop)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(m)
    onnx.save(m, path)


# --------------------------------------------------------------------------
# Variants of resnet18_w4 made with onnx.helper / numpy_helper
# --------------------------------------------------------------------------


def _all_tensors(graph):
    """Initializers plus the tensors held by Constant nodes."""
    for t in graph.initializer:
        yield t
    for n in graph.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                yield a.t


def make_float_data_variant(src, dst):
    """Move every float32/int64 tensor from raw_data into typed float_data/int64_data."""
    m = onnx.load(src)
    for t in _all_tensors(m.graph):
        if not t.HasField("raw_data"):
            continue
        arr = numpy_helper.to_array(t)
        if t.data_type == TensorProto.FLOAT:
            t.ClearField("raw_data")
            t.float_data.extend(arr.ravel().tolist())
        elif t.data_type == TensorProto.INT64:
            t.ClearField("raw_data")
            t.int64_data.extend(arr.ravel().tolist())
    m.graph.doc_string = "resnet18_w4 with tensors in typed float_data/int64_data fields (no raw_data)"
    onnx.checker.check_model(m)
    onnx.save(m, dst)


def make_fp16_variant(src, dst):
    """Store float initializers as float16 and insert Cast(to=FLOAT) nodes feeding the graph."""
    m = onnx.load(src)
    g = m.graph
    new_inits, casts = [], []
    for t in g.initializer:
        if t.data_type != TensorProto.FLOAT:
            new_inits.append(t)
            continue
        arr = numpy_helper.to_array(t).astype(np.float16)
        half = numpy_helper.from_array(arr, t.name + "_fp16")
        new_inits.append(half)
        casts.append(helper.make_node("Cast", [half.name], [t.name], name="cast_" + t.name, to=TensorProto.FLOAT))
    del g.initializer[:]
    g.initializer.extend(new_inits)
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    g.doc_string = "resnet18_w4 with float16 weights + Cast-to-float nodes"
    onnx.checker.check_model(m)
    onnx.save(m, dst)


def make_unsupported_op_variant(src, dst):
    """Replace the classifier Gemm by Einsum('nk,ck->nc') + Add: same math, an op the engine lacks."""
    m = onnx.load(src)
    g = m.graph
    gemms = [n for n in g.node if n.op_type == "Gemm"]
    assert len(gemms) == 1, "expected exactly one Gemm in resnet18_w4"
    gemm = gemms[0]
    attrs = {a.name: helper.get_attribute_value(a) for a in gemm.attribute}
    assert attrs.get("transB") == 1 and attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0
    x, w, b = gemm.input
    mid = gemm.output[0] + "_einsum"
    einsum = helper.make_node("Einsum", [x, w], [mid], name="UNSUPPORTED_einsum_classifier", equation="nk,ck->nc")
    add = helper.make_node("Add", [mid, b], [gemm.output[0]], name="classifier_bias_add")
    idx = list(g.node).index(gemm)
    nodes = list(g.node)
    nodes[idx:idx + 1] = [einsum, add]
    del g.node[:]
    g.node.extend(nodes)
    g.doc_string = "resnet18_w4 with its Gemm replaced by an Einsum node named UNSUPPORTED_einsum_classifier"
    onnx.checker.check_model(m)
    onnx.save(m, dst)


# --------------------------------------------------------------------------
# Hand-built graph
# --------------------------------------------------------------------------


def make_auto_pad_same(dst, seed):
    """A tiny graph of 'ops a user might have' (see module docstring). Input N×3×16×16."""
    rng = np.random.default_rng(seed)

    def init(name, arr):
        return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)

    def he(shape):
        fan_in = int(np.prod(shape[1:]))
        return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)

    inits = [
        init("conv1_w", he((8, 3, 3, 3))), init("conv1_b", rng.standard_normal(8) * 0.1),
        init("conv2_w", he((8, 8, 4, 4))), init("conv2_b", rng.standard_normal(8) * 0.1),
        init("clip_min", -1.0), init("clip_max", 2.5),
        numpy_helper.from_array(np.array([0, 0, 1, 0, 0, 0, 1, 2], dtype=np.int64), "pad_pads"),
        init("pad_value", 0.5),
        init("sub_mean", rng.standard_normal(8) * 0.2),
        init("div_std", rng.uniform(0.5, 1.5, 8)),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axes_1"),
        init("mm_w", rng.standard_normal((200, 32)) / np.sqrt(200)),
        init("gemm_b", rng.standard_normal((10, 40)) / np.sqrt(40)),
        init("gemm_c", rng.standard_normal(10) * 0.1),
    ]
    nodes = [
        # 16×16 → 8×8; SAME_UPPER puts the odd padding pixel at the end.
        helper.make_node("Conv", ["input", "conv1_w", "conv1_b"], ["c1"], name="conv_same_upper_s2",
                         auto_pad="SAME_UPPER", strides=[2, 2], kernel_shape=[3, 3]),
        # 8×8 → 8×8 with a 4×4 kernel: total pad 3, SAME_LOWER puts 2 at the beginning.
        helper.make_node("Conv", ["c1", "conv2_w", "conv2_b"], ["c2"], name="conv_same_lower_k4",
                         auto_pad="SAME_LOWER", kernel_shape=[4, 4]),
        helper.make_node("Clip", ["c2", "clip_min", "clip_max"], ["clip"], name="clip_inputs"),
        # H pads (1,1), W pads (0,2), value 0.5: 8×8 → 10×10.
        helper.make_node("Pad", ["clip", "pad_pads", "pad_value"], ["padded"], name="pad_const", mode="constant"),
        # ceil_mode: floor would give 4×4, ceil gives 5×5.
        helper.make_node("MaxPool", ["padded"], ["pool"], name="maxpool_ceil", kernel_shape=[3, 3],
                         strides=[2, 2], ceil_mode=1),
        helper.make_node("Transpose", ["pool"], ["nhwc"], name="to_nhwc", perm=[0, 2, 3, 1]),
        helper.make_node("Sub", ["nhwc", "sub_mean"], ["centered"], name="sub_mean"),
        helper.make_node("Div", ["centered", "div_std"], ["scaled"], name="div_std"),
        helper.make_node("Unsqueeze", ["scaled", "axes_1"], ["unsq"], name="unsqueeze_1"),
        helper.make_node("Squeeze", ["unsq", "axes_1"], ["sq"], name="squeeze_1"),
        helper.make_node("Flatten", ["sq"], ["flat"], name="flatten", axis=1),
        helper.make_node("MatMul", ["flat", "mm_w"], ["mm"], name="matmul"),
        helper.make_node("GlobalAveragePool", ["pool"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["gap_flat"], name="gap_flatten", axis=1),
        helper.make_node("Concat", ["mm", "gap_flat"], ["cat"], name="concat", axis=1),
        helper.make_node("Gemm", ["cat", "gemm_b", "gemm_c"], ["logits"], name="gemm_transB",
                         transB=1, alpha=0.7, beta=1.3),
    ]
    graph = helper.make_graph(
        nodes, "auto_pad_same",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        initializer=inits,
        doc_string="Hand-built op-coverage graph for SelfXit (auto_pad, ceil_mode, Pad value, Gemm alpha/beta, ...)",
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                          producer_name="selfxit-tools")
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, dst)


# --------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------


def op_census(path):
    m = onnx.load(path)
    c = collections.Counter(n.op_type for n in m.graph.node)
    return dict(sorted(c.items()))


def input_chw(path):
    m = onnx.load(path)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value for d in dims[1:]]


def write_references(name, path, ref_dir, seed, torch_model=None, shape=None):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    inp, outp = sess.get_inputs()[0], sess.get_outputs()[0]
    chw = list(shape) if shape is not None else input_chw(path)
    entry = {
        "file": os.path.basename(path),
        "input_name": inp.name,
        "output_name": outp.name,
        "input_shape": {},
        "output_shape": {},
        "max_abs_output": {},
        "references": {},
        "ops": op_census(path),
        "bytes": os.path.getsize(path),
    }
    for b in BATCHES:
        rng = np.random.default_rng(seed * 1000 + b)
        x = rng.standard_normal((b, *chw)).astype(np.float32)
        y = sess.run(None, {inp.name: x})[0].astype(np.float32)
        if not np.all(np.isfinite(y)):
            raise RuntimeError(f"{name}: non-finite output")
        if torch_model is not None:
            with torch.no_grad():
                ty = torch_model(torch.from_numpy(x)).numpy()
            err = np.abs(ty - y).max() / max(np.abs(ty).max(), 1e-6)
            if err > 1e-4:
                raise RuntimeError(f"{name}: ORT vs torch relative error {err:.2e}")
        stem = f"{name}.b{b}"
        x.astype("<f4").tofile(os.path.join(ref_dir, stem + ".input.f32"))
        y.astype("<f4").tofile(os.path.join(ref_dir, stem + ".output.f32"))
        entry["input_shape"][str(b)] = list(x.shape)
        entry["output_shape"][str(b)] = list(y.shape)
        entry["max_abs_output"][str(b)] = float(np.abs(y).max())
        entry["references"][str(b)] = {"input": stem + ".input.f32", "output": stem + ".output.f32"}
    return entry


def main(argv=None):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(root, "Tests", "Fixtures"), help="fixture root")
    p.add_argument("--seed", type=int, default=1234)
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    model_dir = os.path.join(args.out, "models")
    ref_dir = os.path.join(args.out, "reference")
    os.makedirs(model_dir, exist_ok=True)
    os.makedirs(ref_dir, exist_ok=True)

    exported = export_torch_models(model_dir, args.seed)
    base = os.path.join(model_dir, "resnet18_w4.onnx")
    variants = {
        "resnet18_w4_float_data": make_float_data_variant,
        "resnet18_w4_fp16_weights": make_fp16_variant,
        "resnet18_w4_unsupported_op": make_unsupported_op_variant,
    }
    for vname, fn in variants.items():
        fn(base, os.path.join(model_dir, vname + ".onnx"))
    make_auto_pad_same(os.path.join(model_dir, "auto_pad_same.onnx"), args.seed)

    manifest = {
        "about": "ONNX Runtime %s CPUExecutionProvider references; inputs N(0,1), raw little-endian float32, "
                 "row-major NCHW" % ort.__version__,
        "generator": "tools/export_test_models.py --seed %d" % args.seed,
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__},
        "models": {},
    }
    names = [n for n, *_ in TORCH_MODELS] + list(variants) + ["auto_pad_same"]
    for i, name in enumerate(names):
        path = os.path.join(model_dir, name + ".onnx")
        shape, tmodel = exported.get(name, (None, None))
        if name in ("resnet18_w4_float_data", "resnet18_w4_unsupported_op"):
            shape, tmodel = exported["resnet18_w4"]  # numerically the same function
        entry = write_references(name, path, ref_dir, args.seed + i, tmodel, shape)
        if name == "resnet18_w4_unsupported_op":
            entry["unsupported_node"] = {"name": "UNSUPPORTED_einsum_classifier", "op_type": "Einsum"}
        manifest["models"][name] = entry
        print(f"{name:28s} {entry['bytes']:>9d} B  max|y| b1={entry['max_abs_output']['1']:.3g}  ops={entry['ops']}")

    with open(os.path.join(ref_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, fn)) for d in (model_dir, ref_dir) for fn in os.listdir(d))
    print(f"total fixture size: {total} bytes")


if __name__ == "__main__":
    main()
