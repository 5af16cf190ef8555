/// The engine's graph IR: what remains of an ONNX model after its constant and shape
/// sub-graphs are folded away. Every value is an *activation* whose leading dimension is the
/// batch; `shape` holds the per-sample dimensions that follow it.
///
/// Nodes are kept in a topological order; the execution plan runs them in that order.
struct Graph {
    /// An activation tensor.
    struct Value {
        var name: String
        /// Per-sample dimensions (the batch dimension is implied, leading).
        var shape: [Int]
        var elementsPerSample: Int { shape.reduce(1, *) }
    }

    typealias ValueID = Int

    /// A constant operand of an elementwise node (e.g. the scale of a `Mul`), in ONNX broadcast
    /// form: `shape` is the full shape of the constant (it has no batch dimension of its own).
    struct ConstantOperand {
        var shape: [Int]
        var values: [Float]
    }

    enum Operand {
        case value(ValueID)
        case constant(ConstantOperand)
    }

    enum BinaryKind: String { case add = "Add", sub = "Sub", mul = "Mul", div = "Div" }

    struct PoolGeometry: Equatable {
        var channels, inHeight, inWidth, outHeight, outWidth: Int
        var kernelHeight, kernelWidth, strideH, strideW, padTop, padLeft, padBottom, padRight, dilationH, dilationW: Int
        var countIncludePad: Bool
    }

    enum Operation {
        /// Convolution with folded bias, an optional residual input (`inputs[1]`) added before
        /// the activation.
        case conv(geometry: Conv2DGeometry, weights: [Float], bias: [Float]?, activation: Activation)
        /// `y = act(x · Wᵀ + bias)` over the last axis; `weights` is [outFeatures][inFeatures].
        case dense(inFeatures: Int, outFeatures: Int, weights: [Float], bias: [Float]?, activation: Activation)
        /// Per-channel `y = x * scale[c] + shift[c]` (an unfolded BatchNormalization). With several
        /// inputs, `x` is their concatenation along the channels (a Concat fused in: Graph+Fusion).
        case channelAffine(scale: [Float], shift: [Float], activation: Activation)
        case binary(BinaryKind, lhs: Operand, rhs: Operand, activation: Activation)
        case activation(Activation)
        case maxPool(PoolGeometry)
        case averagePool(PoolGeometry)
        case globalAveragePool
        /// Softmax over each run of `length` consecutive elements (the last axes).
        case softmax(length: Int)
        case transpose(permutation: [Int])
        case concat(axis: Int)
        case pad(pads: [Int], value: Float)
        /// Batched product of two activations, numpy-broadcast leading dimensions.
        case matmul
        /// Same data, new shape (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout):
        /// no work, the output shares the input's buffer.
        case alias
        /// Per-sample strided copy: Slice, Split, Gather of one index, Expand, Tile (issue 13).
        case stridedCopy(StridedCopy)
        /// Per-sample gather of a fixed index list along one axis.
        case indexGather(IndexGather)
        /// Reduction over per-sample axes (ReduceMean/Sum/Max/Min …).
        case reduce(Reduce)
        /// Pointwise function (Erf, fused GELU, Sqrt, Exp, Log, Pow by a constant …).
        case unary(UnaryFunction)
        /// LayerNormalization over the trailing `length` elements (also the fused opset-13 decomposition).
        case layerNorm(LayerNorm)
        /// The same constant in every sample (a constant joining activations, e.g. ViT's class
        /// token in a Concat); no inputs.
        case constantFill([Float])
        /// Resize of the last two axes (`[C, H, W]` per sample; nearest or bilinear, two taps
        /// per axis as ONNX Runtime computes it; issue 13: the detectors' transform and FPN).
        case resize2D(Resize2DKernel)
    }

    struct Node {
        var name: String
        var opType: String
        var operation: Operation
        var inputs: [ValueID]
        var output: ValueID
    }

    var values: [Value] = []
    var nodes: [Node] = []
    var input: ValueID = 0
    var outputs: [ValueID] = []
    var valueIDs: [String: ValueID] = [:]
    /// The file's input has no batch axis (one image a call, `[3, H, W]`; issue 13): batch is 1.
    var unbatchedInput = false
    /// The run-time-shaped tail (post-NMS boxes, ROI heads) evaluated after the planned graph,
    /// whose `outputs` are then the planned values the tail reads (Runtime/TailEvaluator.swift).
    var tail: TailProgram?

    mutating func addValue(_ name: String, shape: [Int]) -> ValueID {
        values.append(Value(name: name, shape: shape))
        valueIDs[name] = values.count - 1
        return values.count - 1
    }

    /// Node indices that consume each value (a value used twice by one node is listed twice).
    func consumers() -> [[Int]] {
        var result = [[Int]](repeating: [], count: values.count)
        for (index, node) in nodes.enumerated() {
            for input in node.inputs { result[input].append(index) }
        }
        return result
    }

    /// The index of the node producing each value (nil for the graph input).
    func producers() -> [Int?] {
        var result = [Int?](repeating: nil, count: values.count)
        for (index, node) in nodes.enumerated() { result[node.output] = index }
        return result
    }

    /// The same graph with convolution and dense weights dropped (geometry, biases and
    /// shapes kept): what remains useful once kernels have packed their own copies.
    func withoutWeights() -> Graph {
        var copy = self
        for index in copy.nodes.indices {
            switch copy.nodes[index].operation {
            case .conv(let geometry, _, let bias, let activation):
                copy.nodes[index].operation = .conv(geometry: geometry, weights: [], bias: bias, activation: activation)
            case .dense(let inFeatures, let outFeatures, _, let bias, let activation):
                copy.nodes[index].operation = .dense(inFeatures: inFeatures, outFeatures: outFeatures, weights: [], bias: bias, activation: activation)
            default:
                break
            }
        }
        return copy
    }
}
