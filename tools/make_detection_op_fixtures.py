#!/usr/bin/env python3
"""Small ONNX models of the detection operators (issue 13) with ONNX Runtime's outputs, for
Tests/SelfXitTests/DetectionOpParityTests.swift.

Every model takes one image without a batch axis, x: float [3, 8, 12] (as torchvision's
detectors do), so the engine plans what it can (Unsqueeze, Resize of [1, C, H, W]) and runs the
rest — reshapes to other leading sizes and every detection operator — in its run-time-shaped
tail. Integer outputs are cast to float in the graph so every output compares as floats.

    .cache/zoo-venv/bin/python tools/make_detection_op_fixtures.py   # needs onnx + onnxruntime

writes Tests/Fixtures/detectionops/{<name>.onnx, input.f32, <name>.<k>.f32, manifest.json}.
"""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "detectionops")
SHAPE = [3, 8, 12]


def const(name, values, dtype=np.int64):
    array = np.asarray(values, dtype=dtype)
    return helper.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(array, name))


def model(name, nodes, outputs, opset=17):
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="selfxit-fixtures")
    m.ir_version = 8

    return m


def cast(src, dst):
    return helper.make_node("Cast", [src], [dst], to=TensorProto.FLOAT)


def models():
    rng = np.random.default_rng(3)
    yield "topk", model("topk", [
        const("s", [6, 48]), helper.make_node("Reshape", ["x", "s"], ["r"]),
        const("k7", [7]), helper.make_node("TopK", ["r", "k7"], ["v", "i"], axis=1),
        const("k4", [4]), helper.make_node("TopK", ["r", "k4"], ["v2", "i2"], axis=0, largest=0),
        cast("i", "fi"), cast("i2", "fi2")], ["v", "fi", "v2", "fi2"])
    yield "nonzero", model("nonzero", [
        const("t", 0.3, np.float32), helper.make_node("Greater", ["x", "t"], ["g"]),
        helper.make_node("NonZero", ["g"], ["n"]), cast("n", "fn")], ["fn"])
    yield "nms", model("nms", [
        const("s", [1, 72, 4]), helper.make_node("Reshape", ["x", "s"], ["b"]),
        const("z", [0]), const("two", [2]), const("four", [4]), const("ax", [2]),
        helper.make_node("Slice", ["b", "z", "two", "ax"], ["xy"]),
        helper.make_node("Slice", ["b", "two", "four", "ax"], ["wh0"]),
        helper.make_node("Abs", ["wh0"], ["wh1"]), const("g", 3.0, np.float32), helper.make_node("Mul", ["wh1", "g"], ["wh"]),
        helper.make_node("Add", ["xy", "wh"], ["xy2"]), helper.make_node("Concat", ["xy", "xy2"], ["boxes"], axis=2),
        const("s2", [1, 4, 72]), helper.make_node("Reshape", ["x", "s2"], ["l"]), helper.make_node("Sigmoid", ["l"], ["scores"]),
        const("m", [6]), const("iou", [0.3], np.float32), const("st", [0.35], np.float32),
        helper.make_node("NonMaxSuppression", ["boxes", "scores", "m", "iou", "st"], ["sel"]), cast("sel", "fsel"),
        helper.make_node("NonMaxSuppression", ["boxes", "scores", "m", "iou"], ["sel2"], center_point_box=1), cast("sel2", "fsel2")],
        ["fsel", "fsel2"])
    rois = [[0.5, 1.0, 6.2, 5.5], [2, 2, 11, 7.5], [-1, -1, 3, 3], [4.3, 0.2, 4.8, 7.9], [9, 5, 14, 10]]
    yield "roialign", model("roialign", [
        const("a0", [0]), helper.make_node("Unsqueeze", ["x", "a0"], ["X"]),
        const("rois", rois, np.float32), const("bi", [0] * len(rois)),
        helper.make_node("RoiAlign", ["X", "rois", "bi"], ["r1"], output_height=3, output_width=4, sampling_ratio=2,
                         spatial_scale=1.0, coordinate_transformation_mode="output_half_pixel"),
        helper.make_node("RoiAlign", ["X", "rois", "bi"], ["r2"], output_height=2, output_width=2, sampling_ratio=0,
                         spatial_scale=0.5, coordinate_transformation_mode="half_pixel")], ["r1", "r2"])
    idx = rng.integers(0, 24, size=(5, 12))
    yield "scatter", model("scatter", [
        const("s", [24, 12]), helper.make_node("Reshape", ["x", "s"], ["d"]),
        const("z", [0]), const("five", [5]), helper.make_node("Slice", ["d", "z", "five", "z"], ["u0"]),
        const("g", 2.0, np.float32), helper.make_node("Mul", ["u0", "g"], ["u"]),
        const("idx", idx), helper.make_node("ScatterElements", ["d", "idx", "u"], ["o1"], axis=0),
        const("idx2", np.minimum(idx, 3)), helper.make_node("ScatterElements", ["d", "idx2", "u"], ["o2"], axis=0, reduction="add")],
        ["o1", "o2"])
    yield "gathers", model("gathers", [
        const("s", [3, 8, 12]), helper.make_node("Reshape", ["x", "s"], ["d"]),
        const("i1", [[0, 1], [2, 7], [1, 3], [-1, -2]]), helper.make_node("GatherND", ["d", "i1"], ["g1"]),
        const("i2", [[1], [5], [7]]), helper.make_node("GatherND", ["d", "i2"], ["g2"], batch_dims=1),
        const("s2", [24, 12]), helper.make_node("Reshape", ["x", "s2"], ["e"]),
        const("i3", rng.integers(0, 12, size=(24, 3))), helper.make_node("GatherElements", ["e", "i3"], ["g3"], axis=1)],
        ["g1", "g2", "g3"])
    yield "tile_split", model("tile_split", [
        const("s", [6, 48]), helper.make_node("Reshape", ["x", "s"], ["r"]),
        const("rep", [2, 1]), helper.make_node("Tile", ["r", "rep"], ["t"]),
        const("sp", [10, 38]), helper.make_node("Split", ["r", "sp"], ["p1", "p2"], axis=1)], ["t", "p1", "p2"])
    yield "resize", model("resize", [
        const("a0", [0]), helper.make_node("Unsqueeze", ["x", "a0"], ["X"]),
        const("sz1", [1, 3, 13, 17]), helper.make_node("Resize", ["X", "", "", "sz1"], ["y1"], mode="linear",
                                                       coordinate_transformation_mode="pytorch_half_pixel"),
        const("sc2", [1, 1, 2, 2], np.float32), helper.make_node("Resize", ["X", "", "sc2"], ["y2"], mode="nearest",
                                                                  coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        const("sz3", [1, 3, 5, 7]), helper.make_node("Resize", ["X", "", "", "sz3"], ["y3"], mode="linear",
                                                     coordinate_transformation_mode="align_corners"),
        const("sc4", [1, 1, 0.5, 0.75], np.float32), helper.make_node("Resize", ["X", "", "sc4"], ["y4"], mode="linear"),
        const("s5", [1, 3, 12, 8]), helper.make_node("Reshape", ["x", "s5"], ["t5"]),
        const("sz5", [1, 3, 7, 20]), helper.make_node("Resize", ["t5", "", "", "sz5"], ["y5"], mode="nearest")],
        ["y1", "y2", "y3", "y4", "y5"])
    yield "reduce_pointwise", model("reduce_pointwise", [
        const("s", [6, 48]), helper.make_node("Reshape", ["x", "s"], ["r"]),
        helper.make_node("ReduceMin", ["r"], ["mn"], axes=[1], keepdims=0),
        helper.make_node("ReduceMax", ["r"], ["mx"], axes=[0], keepdims=1),
        helper.make_node("Exp", ["r"], ["ex"]), helper.make_node("Abs", ["r"], ["ab"]), const("one", 1.0, np.float32),
        helper.make_node("Add", ["ab", "one"], ["ab1"]), helper.make_node("Log", ["ab1"], ["lg"]),
        helper.make_node("ArgMax", ["r"], ["am"], axis=1, keepdims=0), cast("am", "fam"),
        helper.make_node("Softmax", ["r"], ["sm"], axis=0),
        const("lo", -0.5, np.float32), helper.make_node("Clip", ["r", "lo", ""], ["cl"]),
        const("h", 0.2, np.float32), helper.make_node("LessOrEqual", ["r", "h"], ["le"]),
        helper.make_node("GreaterOrEqual", ["r", "lo"], ["ge"]), helper.make_node("And", ["le", "ge"], ["both"]),
        helper.make_node("Where", ["both", "r", "one"], ["wh"])],
        ["mn", "mx", "ex", "lg", "fam", "sm", "cl", "wh"])


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    x = np.random.default_rng(11).standard_normal(SHAPE).astype(np.float32)
    x.tofile(os.path.join(OUT, "input.f32"))
    manifest = {"input": "input.f32", "input_shape": SHAPE, "models": {}}
    for name, m in models():
        path = os.path.join(OUT, f"{name}.onnx")
        onnx.save(m, path)
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        results = session.run(None, {"x": x})
        entries = []
        for k, (info, value) in enumerate(zip(session.get_outputs(), results)):
            file = f"{name}.{k}.f32"
            np.asarray(value, dtype=np.float32).tofile(os.path.join(OUT, file))
            entries.append({"name": info.name, "file": file, "shape": list(np.shape(value))})
        manifest["models"][name] = {"file": f"{name}.onnx", "outputs": entries}
        print(name, [e["shape"] for e in entries])
    # An operator neither the planner nor the tail runs: the load must fail naming the node.
    refused = model("refused", [
        const("s", [6, 48]), helper.make_node("Reshape", ["x", "s"], ["r"]),
        helper.make_node("Hardmax", ["r"], ["h"], name="the_hardmax", axis=1)], ["h"])
    onnx.save(refused, os.path.join(OUT, "refused.onnx"))
    manifest["refused"] = {"file": "refused.onnx", "op_type": "Hardmax", "node": "the_hardmax"}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
