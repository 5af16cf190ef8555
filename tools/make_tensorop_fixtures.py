#!/usr/bin/env python3
"""Small parity fixtures for the tensor operators of issue 13 (committed under
Tests/Fixtures/tensorops, checked by Tests/SelfXitTests/TensorOpParityTests.swift in `make test`).

Each model is tiny (odd sizes on purpose: 3, 5, 7, 13 …) and exercises one construct:
slices with steps, splits, gathers, Expand/Tile, reductions over any axes with either keepdims,
pointwise functions, LayerNorm (opset 17 op and the opset-13 decomposition the engine fuses),
erf GELU (fused), a class token joining activations, multi-head attention that moves and merges
the batch (torch's nn.MultiheadAttention), Einsum, and a model with several outputs. ONNX
Runtime's outputs at batch 1 and 3 are the references.

Runs in the tools venv (onnx, onnxruntime, numpy: tools/zoo_venv.sh); the torch-made models are
exported by Debian's /usr/bin/python3 (python3-torch) in a subprocess.

    $(tools/zoo_venv.sh) tools/make_tensorop_fixtures.py [--out Tests/Fixtures/tensorops]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(13)


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def model(name, nodes, in_shape, outputs, initializers=(), opset=17):
    """A graph with input 'x' [N, *in_shape] (dynamic batch) and the given outputs."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
    graph = helper.make_graph(nodes, name, [x], outs, list(initializers))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    # (no onnx.checker: the outputs are left without shapes; ONNX Runtime validates each model)
    return m


def helper_models():
    n = helper.make_node
    f32 = lambda *s: RNG.standard_normal(s).astype(np.float32)
    i64 = lambda v: np.array(v, dtype=np.int64)
    ms = {}
    # Slices with steps (negative too) on two axes, and a channel split into three.
    ms["slice_steps"] = model("slice_steps", [
        n("Slice", ["x", "s", "e", "a", "st"], ["y"]),
    ], [7, 13], ["y"], [const("s", i64([1, 12])), const("e", i64([7, 0])), const("a", i64([1, 2])), const("st", i64([2, -3]))])
    ms["split3"] = model("split3", [
        n("Split", ["x", "sizes"], ["a", "b", "c"], axis=1),
        n("Add", ["a", "c"], ["ac"]),
        n("Concat", ["ac", "b"], ["y"], axis=1),
    ], [5, 3, 7], ["y"], [const("sizes", i64([2, 1, 2]))])
    # Gather one index (axis goes) and an index list (with a negative index).
    ms["gather"] = model("gather", [
        n("Gather", ["x", "i"], ["g1"], axis=2),
        n("Gather", ["x", "list"], ["g2"], axis=1),
    ], [5, 7, 3], ["g1", "g2"], [const("i", i64(4)), const("list", i64([[4, -1], [0, 2]]))])
    # Expand (broadcast a size-1 axis) and Tile.
    ms["expand_tile"] = model("expand_tile", [
        n("Expand", ["x", "shape"], ["e"]),
        n("Tile", ["e", "reps"], ["y"]),
    ], [3, 1, 5], ["y"], [const("shape", i64([1, 3, 4, 5])), const("reps", i64([1, 2, 1, 3]))])
    # Reductions: every kind, adjacent and non-adjacent axes, both keepdims.
    nodes, outs = [], []
    for k, (op, axes, keep) in enumerate([("ReduceMean", [2, 3], 0), ("ReduceMean", [-1], 1), ("ReduceMax", [1, 3], 1),
                                          ("ReduceMin", [2], 0), ("ReduceSum", [1, 2, 3], 0), ("ReduceL2", [3], 1)]):
        if op == "ReduceSum":
            nodes.append(n(op, ["x", f"ax{k}"], [f"r{k}"], keepdims=keep))
        else:
            nodes.append(n(op, ["x"], [f"r{k}"], axes=axes, keepdims=keep))
        outs.append(f"r{k}")
    ms["reductions"] = model("reductions", nodes, [3, 5, 7], outs, [const("ax4", i64([1, 2, 3]))], opset=13)
    # Pointwise functions: Erf, Sqrt(Abs), Exp, Log(Exp), Pow 2 and 3, Neg, Reciprocal.
    ms["pointwise"] = model("pointwise", [
        n("Erf", ["x"], ["e"]), n("Abs", ["x"], ["a"]), n("Sqrt", ["a"], ["s"]), n("Exp", ["e"], ["x1"]),
        n("Log", ["x1"], ["l"]), n("Pow", ["x", "two"], ["p2"]), n("Pow", ["x", "three"], ["p3"]),
        n("Add", ["s", "l"], ["t1"]), n("Add", ["t1", "p2"], ["t2"]), n("Sub", ["t2", "p3"], ["t3"]),
        n("Neg", ["t3"], ["t4"]), n("Add", ["a", "one"], ["a1"]), n("Reciprocal", ["a1"], ["r"]), n("Mul", ["t4", "r"], ["y"]),
    ], [37], ["y"], [const("two", np.float32(2)), const("three", np.float32(3)), const("one", np.float32(1))])
    # LayerNormalization (opset 17 operator) over the last axis and the last two.
    ms["layernorm17"] = model("layernorm17", [
        n("LayerNormalization", ["x", "g", "b"], ["y1"], axis=-1, epsilon=1e-5),
        n("LayerNormalization", ["x", "g2", "b2"], ["y2"], axis=-2, epsilon=1e-6),
    ], [5, 19], ["y1", "y2"], [const("g", f32(19)), const("b", f32(19)), const("g2", f32(5, 19)), const("b2", f32(5, 19))])
    # The opset-13 decomposition torch emits (fused back into one kernel) and erf GELU (fused).
    ms["layernorm13_gelu"] = model("layernorm13_gelu", [
        n("ReduceMean", ["x"], ["m"], axes=[-1]), n("Sub", ["x", "m"], ["d"]), n("Pow", ["d", "two"], ["d2"]),
        n("ReduceMean", ["d2"], ["v"], axes=[-1]), n("Add", ["v", "eps"], ["ve"]), n("Sqrt", ["ve"], ["sd"]),
        n("Div", ["d", "sd"], ["nrm"]), n("Mul", ["nrm", "g"], ["ng"]), n("Add", ["ng", "b"], ["ln"]),
        n("Div", ["ln", "sqrt2"], ["q"]), n("Erf", ["q"], ["eq"]), n("Add", ["eq", "one"], ["e1"]),
        n("Mul", ["ln", "e1"], ["xm"]), n("Mul", ["xm", "half"], ["y"]),
    ], [6, 21], ["y"], [const("two", np.float32(2)), const("eps", np.float32(1e-5)), const("g", f32(21)), const("b", f32(21)),
                        const("sqrt2", np.float32(1.4142135381698608)), const("one", np.float32(1)), const("half", np.float32(0.5))], opset=13)
    # Einsum as MaxViT writes its attention, then a second output (several graph outputs).
    ms["einsum_two_outputs"] = model("einsum_two_outputs", [
        n("Einsum", ["x", "x"], ["att"], equation="bhid,bhjd->bhij"),
        n("Softmax", ["att"], ["p"], axis=-1),
        n("Einsum", ["p", "x"], ["y"], equation="b h i j, b h j d -> b h i d"),
        n("ReduceMean", ["y"], ["pooled"], axes=[2], keepdims=0),
    ], [3, 5, 4], ["y", "pooled"])
    return ms


# Refused on purpose: the error must name the operator and the node, and nothing may crash.
REFUSED = {
    "refused_compare": (lambda n: model("refused_compare", [
        n("Greater", ["x", "zero"], ["mask"], name="the_greater"),
        n("Where", ["mask", "x", "zero"], ["y"], name="the_where"),
    ], [5], ["y"], [const("zero", np.float32(0))]), "Greater", "the_greater"),
}


TORCH_SCRIPT = r'''
import sys, torch
torch.manual_seed(0)
out = sys.argv[1]

class Attention(torch.nn.Module):
    """A ViT block: class token joining the patches, LayerNorm, nn.MultiheadAttention (the
    export moves the batch to axis 1 and merges it with the heads), GELU MLP."""
    def __init__(self, dim=12, heads=3, tokens=5):
        super().__init__()
        self.cls = torch.nn.Parameter(torch.randn(1, 1, dim))
        self.ln1 = torch.nn.LayerNorm(dim)
        self.attn = torch.nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln2 = torch.nn.LayerNorm(dim)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(dim, 2 * dim), torch.nn.GELU(), torch.nn.Linear(2 * dim, dim))
        for p in [self.ln1.weight, self.ln2.weight]:
            torch.nn.init.uniform_(p, 0.5, 1.5)
    def forward(self, x):
        n = x.shape[0]
        x = torch.cat([self.cls.expand(n, -1, -1), x], dim=1)
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        x = x + self.mlp(self.ln2(x))
        return x[:, 0]

class WindowShuffle(torch.nn.Module):
    """Swin-style window partition: the batch merged with the window count, then split back."""
    def forward(self, x):  # x: [B, 4, 6, 5]
        b, h, w, c = x.shape
        x = x.view(b, h // 2, 2, w // 3, 3, c).permute(0, 1, 3, 2, 4, 5).reshape(b * (h // 2) * (w // 3), 6, c)
        x = torch.softmax(x @ x.transpose(1, 2), dim=-1) @ x
        x = x.view(-1, h // 2, w // 3, 2, 3, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
        return x.mean(dim=[1, 2])

for name, module, shape in [("mha_block", Attention(), (4, 12)), ("window_merge", WindowShuffle(), (4, 6, 5))]:
    for opset in (13, 17):
        torch.onnx.export(module.eval(), torch.randn(1, *shape), f"{out}/{name}_op{opset}.onnx", opset_version=opset,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
'''


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="Tests/Fixtures/tensorops")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    models = {name: m.SerializeToString() for name, m in helper_models().items()}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["/usr/bin/python3", "-c", TORCH_SCRIPT, tmp], check=True)
        for file in sorted(os.listdir(tmp)):
            models[file[:-5]] = open(os.path.join(tmp, file), "rb").read()
    manifest = {}
    refused = {}
    for name, (make, op, node) in REFUSED.items():
        open(os.path.join(args.out, f"{name}.onnx"), "wb").write(make(helper.make_node).SerializeToString())
        refused[name] = {"file": f"{name}.onnx", "op_type": op, "node": node}
    for name, data in sorted(models.items()):
        path = os.path.join(args.out, f"{name}.onnx")
        open(path, "wb").write(data)
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        shape = [d for d in session.get_inputs()[0].shape[1:]]
        entry = {"file": f"{name}.onnx", "input_shape": shape, "outputs": [o.name for o in session.get_outputs()], "batches": {}}
        for batch in (1, 3):
            x = RNG.standard_normal((batch, *shape)).astype(np.float32)
            results = session.run(None, {"x": x})
            x.tofile(os.path.join(args.out, f"{name}.b{batch}.input.f32"))
            files = []
            for k, r in enumerate(results):
                file = f"{name}.b{batch}.output{k}.f32"
                np.asarray(r, dtype=np.float32).tofile(os.path.join(args.out, file))
                files.append({"file": file, "shape": list(r.shape), "max_abs": float(np.max(np.abs(r)))})
            entry["batches"][str(batch)] = {"input": f"{name}.b{batch}.input.f32", "outputs": files}
        manifest[name] = entry
        print(f"{name}: input {shape}, outputs {[o['shape'] for o in entry['batches']['3']['outputs']]}")
    json.dump({"models": manifest, "refused": refused}, open(os.path.join(args.out, "manifest.json"), "w"), indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
