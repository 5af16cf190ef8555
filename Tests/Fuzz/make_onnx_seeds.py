#!/usr/bin/env python3
"""Writes tiny ONNX models into Tests/Fuzz/seeds/onnx/ for fuzz_onnx.

The committed fixtures (Tests/Fixtures/models) are 30-750 KB, so an input built from them costs
the harness tens of milliseconds; these models are a few hundred bytes to a few KB, on inputs
of 1x1x6x6 to 1x3x8x8, and together use every operator the importer and the constant folder
handle, so the fuzzer mutates small graphs at hundreds of executions per second.

Plain Python (no onnx package): a minimal protobuf writer, field numbers from onnx.proto.
    python3 Tests/Fuzz/make_onnx_seeds.py [OUT_DIR]
"""
import os
import struct
import sys

FLOAT, INT64 = 1, 7
A_FLOAT, A_INT, A_STRING, A_FLOATS, A_INTS = 1, 2, 3, 6, 7


def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def f_int(field, v):
    return key(field, 0) + varint(v)


def f_bytes(field, b):
    if isinstance(b, str):
        b = b.encode()
    return key(field, 2) + varint(len(b)) + b


def f_float(field, v):
    return key(field, 5) + struct.pack("<f", v)


def attr(name, value):
    body = f_bytes(1, name)
    if isinstance(value, float):
        body += f_float(2, value) + f_int(20, A_FLOAT)
    elif isinstance(value, int):
        body += f_int(3, value) + f_int(20, A_INT)
    elif isinstance(value, str):
        body += f_bytes(4, value) + f_int(20, A_STRING)
    elif value and isinstance(value[0], float):
        body += b"".join(f_float(7, v) for v in value) + f_int(20, A_FLOATS)
    else:
        body += f_bytes(8, b"".join(varint(v) for v in value)) + f_int(20, A_INTS)
    return body


def node(op, inputs, outputs, **attrs):
    body = b"".join(f_bytes(1, i) for i in inputs) + b"".join(f_bytes(2, o) for o in outputs)
    body += f_bytes(3, op.lower() + "_" + outputs[0]) + f_bytes(4, op)
    body += b"".join(f_bytes(5, attr(k, v)) for k, v in attrs.items())
    return f_bytes(1, body)


def tensor(name, dims, values, dtype=FLOAT):
    body = b"".join(f_int(1, d) for d in dims) + f_int(2, dtype) + f_bytes(8, name)
    fmt = "<%d%s" % (len(values), "f" if dtype == FLOAT else "q")
    return body + f_bytes(9, struct.pack(fmt, *values))


def value_info(name, dims):
    shape = b"".join(f_bytes(1, f_bytes(2, d) if isinstance(d, str) else f_int(1, d)) for d in dims)
    ttype = f_int(1, FLOAT) + f_bytes(2, shape)
    return f_bytes(1, name) + f_bytes(2, f_bytes(1, ttype))


def model(nodes, initializers, input_dims, output_dims, opset=13):
    graph = b"".join(nodes) + f_bytes(2, "g")
    graph += b"".join(f_bytes(5, t) for t in initializers)
    graph += f_bytes(11, value_info("x", input_dims)) + f_bytes(12, value_info("y", output_dims))
    return f_int(1, 8) + f_bytes(2, "make_onnx_seeds") + f_bytes(8, f_bytes(1, "") + f_int(2, opset)) + f_bytes(7, graph)


def ramp(n, scale=0.1, offset=0.0):
    return [((i * 7) % 11 - 5) * scale + offset for i in range(n)]


def conv_net():
    # Conv (pads, strides) -> BatchNormalization -> Relu -> MaxPool -> GlobalAveragePool -> Flatten -> Gemm
    n = [
        node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"], epsilon=1e-5),
        node("Relu", ["n"], ["r"]),
        node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        node("GlobalAveragePool", ["p"], ["g"]),
        node("Flatten", ["g"], ["f"], axis=1),
        node("Gemm", ["f", "fw", "fb"], ["y"], transB=1, alpha=1.0, beta=1.0),
    ]
    init = [tensor("w", [4, 1, 3, 3], ramp(36)), tensor("b", [4], ramp(4)), tensor("s", [4], ramp(4, 0.1, 1.0)),
            tensor("bb", [4], ramp(4)), tensor("m", [4], ramp(4)), tensor("v", [4], ramp(4, 0.05, 1.0)),
            tensor("fw", [3, 4], ramp(12)), tensor("fb", [3], ramp(3))]
    return model(n, init, ["N", 1, 6, 6], ["N", 3])


def mobile_net():
    # Depthwise conv (group), HardSwish, squeeze-excite (ReduceMean, HardSigmoid, Mul), residual Add,
    # Sigmoid, Tanh, stride 2 + auto_pad, MatMul + Add head, Softmax
    n = [
        node("Conv", ["x", "w1"], ["a"], kernel_shape=[1, 1]),
        node("HardSwish", ["a"], ["h"]),
        node("Conv", ["h", "dw", "db"], ["d"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=6),
        node("ReduceMean", ["d"], ["se"], axes=[2, 3], keepdims=1),
        node("HardSigmoid", ["se"], ["sg"], alpha=0.2, beta=0.5),
        node("Mul", ["d", "sg"], ["e"]),
        node("Add", ["e", "h"], ["res"]),
        node("Sigmoid", ["res"], ["sig"]),
        node("Tanh", ["sig"], ["t"]),
        node("Conv", ["t", "w2"], ["s2"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
        node("GlobalAveragePool", ["s2"], ["gp"]),
        node("Flatten", ["gp"], ["fl"]),
        node("MatMul", ["fl", "mw"], ["mm"]),
        node("Add", ["mm", "mb"], ["lo"]),
        node("Softmax", ["lo"], ["y"], axis=1),
    ]
    init = [tensor("w1", [6, 3, 1, 1], ramp(18)), tensor("dw", [6, 1, 3, 3], ramp(54)), tensor("db", [6], ramp(6)),
            tensor("w2", [4, 6, 3, 3], ramp(216, 0.02)), tensor("mw", [4, 5], ramp(20)), tensor("mb", [5], ramp(5))]
    return model(n, init, [1, 3, 8, 8], [1, 5])


def shape_net():
    # Shape -> Gather -> Unsqueeze -> Concat -> Reshape (folded), Pad, Transpose, Squeeze, Identity, Cast
    n = [
        node("Pad", ["x", "pads"], ["pd"], mode="constant"),
        node("Conv", ["pd", "w"], ["c"], kernel_shape=[3, 3]),
        node("Identity", ["c"], ["i"]),
        node("Cast", ["i"], ["ca"], to=FLOAT),
        node("Transpose", ["ca"], ["tr"], perm=[0, 1, 3, 2]),
        node("Shape", ["tr"], ["sh"]),
        node("Gather", ["sh", "zero"], ["b0"], axis=0),
        node("Unsqueeze", ["b0", "ax0"], ["b1"]),
        node("Concat", ["b1", "minus1"], ["ns"], axis=0),
        node("Reshape", ["tr", "ns"], ["flat"]),
        node("Unsqueeze", ["flat", "ax23"], ["u"]),
        node("Squeeze", ["u", "ax23"], ["sq"]),
        node("Gemm", ["sq", "gw"], ["y"]),
    ]
    init = [tensor("pads", [8], [0, 0, 1, 1, 0, 0, 1, 1], INT64), tensor("w", [2, 1, 3, 3], ramp(18)),
            tensor("zero", [], [0], INT64), tensor("ax0", [1], [0], INT64), tensor("minus1", [1], [-1], INT64),
            tensor("ax23", [2], [2, 3], INT64), tensor("gw", [72, 4], ramp(288, 0.01))]
    return model(n, init, ["N", 1, 6, 6], ["N", 4])


def folded_net():
    # A shape computed by the constant folder from constants: ConstantOfShape, Range, Slice, Mul, Add,
    # Sub, Div, Equal, Where, Expand, ReduceProd, Size, Min, Max, Concat ... feeding a Reshape;
    # a Concat of activations along channels.
    n = [
        node("Conv", ["x", "w"], ["c1"], kernel_shape=[1, 1]),
        node("Relu", ["x"], ["c2"]),
        node("Concat", ["c1", "c2"], ["cat"], axis=1),
        node("Range", ["r0", "r3", "r1"], ["rng"]),            # [0, 1, 2]
        node("Slice", ["rng", "s0", "s1"], ["one"]),             # [1]
        node("Mul", ["one", "two"], ["two_"]),                   # [2]
        node("Add", ["two_", "one"], ["three"]),                 # [3]
        node("Sub", ["three", "one"], ["two2"]),                 # [2]
        node("Div", ["two2", "one"], ["two3"]),                  # [2]
        node("Min", ["two3", "r3"], ["mn"]),
        node("Max", ["mn", "one"], ["mx"]),
        node("Equal", ["mx", "two"], ["eq"]),
        node("Where", ["eq", "mx", "one"], ["ch"]),              # [2]
        node("ConstantOfShape", ["one"], ["ones"], ),            # [0.] shape [1]
        node("Size", ["ones"], ["sz"]),
        node("Expand", ["sz", "one"], ["ex"]),
        node("ReduceProd", ["x36"], ["prod"], keepdims=1),       # [36]
        node("Mul", ["prod", "ex"], ["tail"]),
        node("Concat", ["neg1", "ch", "tail"], ["shape"], axis=0),
        node("Reshape", ["cat", "shape"], ["rs"]),
        node("Flatten", ["rs"], ["fl"]),
        node("Gemm", ["fl", "gw", "gb"], ["y"], transB=1),
    ]
    init = [tensor("w", [1, 1, 1, 1], [0.5]), tensor("r0", [], [0], INT64), tensor("r3", [], [3], INT64),
            tensor("r1", [], [1], INT64), tensor("s0", [1], [1], INT64), tensor("s1", [1], [2], INT64),
            tensor("two", [1], [2], INT64), tensor("x36", [2], [6, 6], INT64), tensor("neg1", [1], [-1], INT64),
            tensor("gw", [3, 72], ramp(216, 0.01)), tensor("gb", [3], ramp(3))]
    return model(n, init, ["N", 1, 6, 6], ["N", 3])


def empty_net():
    # Zero-size tensors: empty int64 pieces (an initializer, and a Slice of constants that selects
    # nothing) concatenated into a Reshape target by the constant folder, and an empty float
    # initializer nobody reads.
    n = [
        node("Slice", ["shape2", "s_from", "s_to"], ["nothing"]),        # [] of int64, folded
        node("Concat", ["empty_i", "shape2", "nothing"], ["target"], axis=0),  # [-1, 36]
        node("Reshape", ["x", "target"], ["flat"]),
        node("Gemm", ["flat", "gw"], ["y"]),
    ]
    init = [tensor("empty_i", [0], [], INT64), tensor("shape2", [2], [-1, 36], INT64),
            tensor("unused", [0, 5], []), tensor("s_from", [1], [1], INT64), tensor("s_to", [1], [1], INT64),
            tensor("gw", [36, 3], ramp(108, 0.01))]
    return model(n, init, ["N", 1, 6, 6], ["N", 3])


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "onnx")
    os.makedirs(out, exist_ok=True)
    for name, make in [("conv_bn_pool_gemm", conv_net), ("depthwise_se_softmax", mobile_net),
                       ("shape_pad_transpose", shape_net), ("folded_shape_concat", folded_net),
                       ("zero_size_tensors", empty_net)]:
        path = os.path.join(out, name + ".onnx")
        data = make()
        with open(path, "wb") as f:
            f.write(data)
        print("make_onnx_seeds: %s (%d bytes)" % (path, len(data)))


if __name__ == "__main__":
    main()
