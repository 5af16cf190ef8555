/// Elementwise Add/Sub/Mul/Div with ONNX (numpy) multidirectional broadcasting.
enum ElementwiseOperation { case add, sub, mul, div }

@inline(__always)
private func combine(_ op: ElementwiseOperation, _ a: Float, _ b: Float) -> Float {
    switch op {
    case .add: return a + b
    case .sub: return a - b
    case .mul: return a * b
    case .div: return a / b
    }
}

/// `output = act(a ∘ b)` where `a` and `b` broadcast to `shape` (same rank as both).
///
/// The innermost run where both operands are either contiguous or constant is processed as a
/// vector loop; the outer coordinates are walked with strides (0 on broadcast axes). This
/// covers same-shape, scalar, per-channel `[1,C,1,1]` (squeeze-excite) and `[N,C,1,1]`
/// operands without special cases.
///
/// Preconditions: `aShape`, `bShape`, `shape` have equal rank; each operand dim equals the
/// output dim or 1; `output` holds `shape` elements (it may alias `a` or `b` when that
/// operand has the output's shape).
func elementwiseBinary(_ op: ElementwiseOperation, _ a: UnsafePointer<Float>, shape aShape: [Int],
                       _ b: UnsafePointer<Float>, shape bShape: [Int], output: UnsafeMutablePointer<Float>,
                       shape: [Int], activation: Activation, pool: ThreadPool) {
    let rank = shape.count
    func broadcastStrides(_ dims: [Int]) -> [Int] {
        var strides = [Int](repeating: 0, count: rank)
        var running = 1
        for axis in stride(from: rank - 1, through: 0, by: -1) {
            strides[axis] = dims[axis] == 1 ? 0 : running
            running *= dims[axis]
        }
        return strides
    }
    let aStrides = broadcastStrides(aShape), bStrides = broadcastStrides(bShape)
    // Merge trailing axes into one inner run while both operands keep a uniform stride kind.
    var inner = 1, innerAxes = 0
    let aInnerContiguous = aStrides.last.map { $0 != 0 } ?? true
    let bInnerContiguous = bStrides.last.map { $0 != 0 } ?? true
    for axis in stride(from: rank - 1, through: 0, by: -1) {
        let aOK = aInnerContiguous ? aStrides[axis] == inner : aStrides[axis] == 0
        let bOK = bInnerContiguous ? bStrides[axis] == inner : bStrides[axis] == 0
        guard aOK && bOK else { break }
        inner *= shape[axis]
        innerAxes += 1
    }
    let outerShape = Array(shape[0..<(rank - innerAxes)])
    let outerCount = outerShape.reduce(1, *)
    let aStep = aInnerContiguous ? 1 : 0, bStep = bInnerContiguous ? 1 : 0
    let chunks = outerCount * inner >= 1 << 15 ? min(pool.threadCount, outerCount) : 1
    pool.parallelFor(chunks) { chunk in
        let range = (outerCount * chunk / chunks)..<(outerCount * (chunk + 1) / chunks)
        for outer in range {
            var remainder = outer, aOffset = 0, bOffset = 0
            for axis in stride(from: outerShape.count - 1, through: 0, by: -1) {
                let coordinate = remainder % outerShape[axis]
                remainder /= outerShape[axis]
                aOffset += coordinate * aStrides[axis]
                bOffset += coordinate * bStrides[axis]
            }
            let (x, y, z) = (a + aOffset, b + bOffset, output + outer * inner)
            for i in 0..<inner { z[i] = combine(op, x[i * aStep], y[i * bStep]) }
            applyActivation(activation, z, count: inner)
        }
    }
}
