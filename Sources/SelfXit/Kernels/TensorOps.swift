import Glibc

// Kernels for the operators transformer and mobile exports bring (issue 13): strided copies
// (Slice, Split, Gather of one index, Expand, Tile), index gathers, reductions over any axes,
// pointwise functions (Erf, GELU, Sqrt, Exp, Log, Pow …) and LayerNorm over the last axes.
// Each works on one sample's tensor (the plan steps over the batch rows).

/// `output[i₀…iₙ] = input[offset + Σ iₖ·inStrides[k]]` over `outShape`, any rank. Strides may be
/// 0 (broadcast, Expand/Tile) or any positive step (Slice with steps). Adjacent axes that stay
/// linear are merged at init, so a channel split is a few contiguous copies.
struct StridedCopy: Equatable, Sendable {
    let outputCount: Int
    private let dims: [Int], strides: [Int]
    let offset: Int

    init(outShape: [Int], inStrides: [Int], offset: Int) {
        precondition(outShape.count == inStrides.count)
        var d: [Int] = [], s: [Int] = []
        // Innermost first: merge an axis into the one inside it when the stride stays linear.
        for axis in stride(from: outShape.count - 1, through: 0, by: -1) where outShape[axis] != 1 {
            if let last = d.indices.last, inStrides[axis] == s[last] * d[last] {
                d[last] *= outShape[axis]
            } else {
                d.append(outShape[axis]); s.append(inStrides[axis])
            }
        }
        if d.isEmpty { d = [1]; s = [1] }
        dims = Array(d.reversed()); strides = Array(s.reversed())
        outputCount = outShape.reduce(1, *)
        self.offset = offset
    }

    func run(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        let inner = dims[dims.count - 1], innerStride = strides[dims.count - 1]
        let rows = dims.dropLast().reduce(1, *)
        for r in 0..<rows {
            var off = offset, rest = r
            for d in stride(from: dims.count - 2, through: 0, by: -1) {
                off += (rest % dims[d]) * strides[d]
                rest /= dims[d]
            }
            let src = input + off, dst = output + r * inner
            if innerStride == 1 {
                dst.update(from: src, count: inner)
            } else if innerStride == 0 {
                dst.update(repeating: src[0], count: inner)
            } else {
                for i in 0..<inner { dst[i] = src[i * innerStride] }
            }
        }
    }
}

/// Gather along one axis with a fixed index list: `[outer, axisLength, inner]` → `[outer, indices.count, inner]`.
struct IndexGather: Equatable, Sendable {
    let outer: Int, axisLength: Int, inner: Int
    let indices: [Int]

    func run(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        var dst = output
        for o in 0..<outer {
            let base = input + o * axisLength * inner
            for index in indices {
                dst.update(from: base + index * inner, count: inner)
                dst += inner
            }
        }
    }
}

/// The reductions of ONNX ReduceMean/Sum/Max/Min/Prod/L2 … that exporters emit.
enum ReduceKind: String, Equatable, Sendable {
    case mean = "ReduceMean", sum = "ReduceSum", max = "ReduceMax", min = "ReduceMin", prod = "ReduceProd"
    case sumSquare = "ReduceSumSquare", l2 = "ReduceL2", l1 = "ReduceL1", logSumExp = "ReduceLogSumExp"
}

/// Reduction of one sample over a set of axes. The input is seen as `[outer, reduced, inner]`
/// when the reduced axes are adjacent (the common case: channels, spatial axes, last axis);
/// otherwise a general walk accumulates each input element into its output.
struct Reduce: Equatable, Sendable {
    let kind: ReduceKind
    let shape: [Int]
    let axes: Set<Int>
    private let outer: Int, reduced: Int, inner: Int, adjacent: Bool

    init(kind: ReduceKind, shape: [Int], axes: Set<Int>) {
        self.kind = kind; self.shape = shape; self.axes = axes
        let kept = shape.indices.filter { !axes.contains($0) && shape[$0] != 1 }
        let red = shape.indices.filter { axes.contains($0) && shape[$0] != 1 }
        // Adjacent when no kept axis sits between two reduced axes.
        if let lo = red.first, let hi = red.last {
            adjacent = !kept.contains { $0 > lo && $0 < hi }
            outer = shape[..<lo].reduce(1, *)
            inner = shape[(hi + 1)...].reduce(1, *)
        } else {
            adjacent = true; outer = shape.reduce(1, *); inner = 1
        }
        reduced = red.reduce(1) { $0 * shape[$1] }
    }

    private var initial: Float {
        switch kind {
        case .max: return -.infinity
        case .min: return .infinity
        case .prod: return 1
        default: return 0
        }
    }

    @inline(__always) private func accumulate(_ acc: Float, _ v: Float) -> Float {
        switch kind {
        case .max: return v > acc || v.isNaN ? v : acc
        case .min: return v < acc || v.isNaN ? v : acc
        case .prod: return acc * v
        case .sumSquare, .l2: return acc + v * v
        case .l1: return acc + abs(v)
        default: return acc + v
        }
    }

    @inline(__always) private func finish(_ acc: Float) -> Float {
        switch kind {
        case .mean: return acc / Float(reduced)
        case .l2: return acc.squareRoot()
        default: return acc
        }
    }

    func run(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        if kind == .logSumExp { return runLogSumExp(input: input, output: output) }
        if adjacent {
            if inner == 1 {
                for o in 0..<outer {
                    let row = input + o * reduced
                    var acc = initial
                    if kind == .sum || kind == .mean {
                        // Pairs of partial sums in SIMD16 lanes: fast, and closer to ORT's blocked sums.
                        var lanes = SIMD16<Float>.zero
                        var i = 0
                        while i + 16 <= reduced { lanes += UnsafeRawPointer(row + i).loadUnaligned(as: SIMD16<Float>.self); i += 16 }
                        acc = lanes.sum()
                        while i < reduced { acc += row[i]; i += 1 }
                    } else {
                        for i in 0..<reduced { acc = accumulate(acc, row[i]) }
                    }
                    output[o] = finish(acc)
                }
            } else {
                for o in 0..<outer {
                    let out = output + o * inner
                    out.update(repeating: initial, count: inner)
                    for r in 0..<reduced {
                        let src = input + (o * reduced + r) * inner
                        for i in 0..<inner { out[i] = accumulate(out[i], src[i]) }
                    }
                    for i in 0..<inner { out[i] = finish(out[i]) }
                }
            }
            return
        }
        // General: output strides with 0 on reduced axes.
        let outShape = shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
        let outStrides = elementStrides(outShape).enumerated().map { axes.contains($0.offset) ? 0 : $0.element }
        let count = outShape.reduce(1, *)
        output.update(repeating: initial, count: count)
        var index = [Int](repeating: 0, count: shape.count)
        var target = 0
        for i in 0..<shape.reduce(1, *) {
            output[target] = accumulate(output[target], input[i])
            var d = shape.count - 1
            while d >= 0 {
                index[d] += 1; target += outStrides[d]
                if index[d] < shape[d] { break }
                target -= outStrides[d] * index[d]; index[d] = 0; d -= 1
            }
        }
        for i in 0..<count { output[i] = finish(output[i]) }
    }

    private func runLogSumExp(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        var maxima = [Float](repeating: 0, count: outer * inner)
        maxima.withUnsafeMutableBufferPointer { m in
            Reduce(kind: .max, shape: shape, axes: axes).run(input: input, output: m.baseAddress!)
        }
        // Slow but exact path (only adjacent axes reach exporters' LogSumExp in practice).
        let outShape = shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
        let outStrides = elementStrides(outShape).enumerated().map { axes.contains($0.offset) ? 0 : $0.element }
        let count = outShape.reduce(1, *)
        output.update(repeating: 0, count: count)
        var index = [Int](repeating: 0, count: shape.count)
        var target = 0
        for i in 0..<shape.reduce(1, *) {
            output[target] += Glibc.expf(input[i] - maxima[target])
            var d = shape.count - 1
            while d >= 0 {
                index[d] += 1; target += outStrides[d]
                if index[d] < shape[d] { break }
                target -= outStrides[d] * index[d]; index[d] = 0; d -= 1
            }
        }
        for i in 0..<count { output[i] = Glibc.logf(output[i]) + maxima[i] }
    }
}

/// Pointwise functions on activations (ONNX unary ops, Pow with a constant exponent, and the
/// fused GELU of `x · ½ · (1 + erf(x / √2))`).
enum UnaryFunction: Equatable, Sendable {
    case erf, gelu, sqrt, exp, log, neg, abs, reciprocal, floor, ceil, sin, cos, softplus, sign, round
    case square
    case pow(Float)
    /// `x · scale + shift` (a fused Mul/Add by scalars).
    case affine(scale: Float, shift: Float)
}

/// Vector erf (Abramowitz & Stegun 7.1.26, |error| ≤ 1.5e-7), odd-extended; NaN → NaN.
@inline(__always)
func erf16(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let a = x.replacing(with: -x, where: x .< 0)
    let t = 1 / (1 + 0.3275911 * a)
    var p = SIMD16<Float>(repeating: 1.061405429)
    p = p * t - 1.453152027
    p = p * t + 1.421413741
    p = p * t - 0.284496736
    p = p * t + 0.254829592
    p = p * t
    let y = 1 - p * exp16(-(a * a))
    return y.replacing(with: -y, where: x .< 0)
}

func runUnary(_ f: UnaryFunction, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int) {
    @inline(__always) func vector(_ body: (SIMD16<Float>) -> SIMD16<Float>, _ scalar: (Float) -> Float) {
        var i = 0
        while i + 16 <= count {
            let v = UnsafeRawPointer(input + i).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(output + i).storeBytes(of: body(v), as: SIMD16<Float>.self)
            i += 16
        }
        while i < count { output[i] = scalar(input[i]); i += 1 }
    }
    @inline(__always) func scalarOnly(_ body: (Float) -> Float) {
        for i in 0..<count { output[i] = body(input[i]) }
    }
    switch f {
    case .erf: vector(erf16, { Glibc.erff($0) })
    case .gelu:
        vector({ $0 * 0.5 * (1 + erf16($0 * 0.70710678118654752)) }, { $0 * 0.5 * (1 + Glibc.erff($0 * 0.70710678118654752)) })
    case .sqrt: vector({ $0.squareRoot() }, { $0.squareRoot() })
    case .exp: vector(exp16, { Glibc.expf($0) })
    case .log: scalarOnly { Glibc.logf($0) }
    case .neg: vector({ -$0 }, { -$0 })
    case .abs: vector({ $0.replacing(with: -$0, where: $0 .< 0) }, { Swift.abs($0) })
    case .reciprocal: vector({ 1 / $0 }, { 1 / $0 })
    case .floor: scalarOnly { $0.rounded(.down) }
    case .ceil: scalarOnly { $0.rounded(.up) }
    case .round: scalarOnly { $0.rounded(.toNearestOrEven) }
    case .sin: scalarOnly { Glibc.sinf($0) }
    case .cos: scalarOnly { Glibc.cosf($0) }
    case .softplus: scalarOnly { $0 > 20 ? $0 : Glibc.log1pf(Glibc.expf($0)) }
    case .sign: scalarOnly { $0 > 0 ? 1 : $0 < 0 ? -1 : $0 }
    case .square: vector({ $0 * $0 }, { $0 * $0 })
    case .pow(let e):
        if e == 0.5 { vector({ $0.squareRoot() }, { $0.squareRoot() }) }
        else if e == 1 { vector({ $0 }, { $0 }) }
        else if e == 3 { vector({ $0 * $0 * $0 }, { $0 * $0 * $0 }) }
        else { scalarOnly { Glibc.powf($0, e) } }
    case .affine(let scale, let shift): vector({ $0 * scale + shift }, { $0 * scale + shift })
    }
}

/// LayerNormalization over each run of `length` trailing elements: `(x − mean) / √(var + ε) · γ + β`
/// (two passes over the row, variance of the centred values, as ONNX Runtime computes it).
struct LayerNorm: Equatable, Sendable {
    let length: Int
    let epsilon: Float
    let scale: [Float]?
    let bias: [Float]?

    func run(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows: Int) {
        let n = Float(length)
        for r in 0..<rows {
            let x = input + r * length, y = output + r * length
            var lanes = SIMD16<Float>.zero
            var i = 0
            while i + 16 <= length { lanes += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self); i += 16 }
            var sum = lanes.sum()
            while i < length { sum += x[i]; i += 1 }
            let mean = sum / n
            var sq = SIMD16<Float>.zero
            i = 0
            while i + 16 <= length {
                let d = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self) - mean
                sq += d * d; i += 16
            }
            var variance = sq.sum()
            while i < length { let d = x[i] - mean; variance += d * d; i += 1 }
            let inv = 1 / (variance / n + epsilon).squareRoot()
            for j in 0..<length { y[j] = (x[j] - mean) * inv }
            if let scale { for j in 0..<length { y[j] *= scale[j] } }
            if let bias { for j in 0..<length { y[j] += bias[j] } }
        }
    }
}
