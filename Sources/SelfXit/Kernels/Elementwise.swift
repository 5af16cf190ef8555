/// An elementwise binary arithmetic op.
package enum BinaryOp: Equatable, Sendable { case add, sub, mul, div }

/// `y = act(a op b)` with numpy/ONNX multidirectional broadcasting (rank ≤ 6 after coalescing).
///
/// At init the shapes are right-aligned, size-1 axes dropped and adjacent axes merged where both
/// operands are laid out alike, so the common cases (same shape, scalar, `[C,1,1]` or `[N,C,1,1]`
/// against `[N,C,H,W]`) reduce to a vectorised inner loop over contiguous or broadcast operands.
package struct BroadcastBinary: Equatable, Sendable {
    package let op: BinaryOp
    package let activation: Activation
    package let outputShape: [Int]
    /// Coalesced outer dims (outermost first) and each operand's element strides over them.
    private let outer: [Int], aOuter: [Int], bOuter: [Int]
    /// Innermost coalesced dim; each operand's stride there is 0 (broadcast) or 1.
    private let inner: Int, aInner: Int, bInner: Int

    /// Precondition: every axis pair (right-aligned) is equal or has a 1.
    package init(_ op: BinaryOp, aShape: [Int], bShape: [Int], activation: Activation = .none) {
        self.op = op
        self.activation = activation
        let rank = max(aShape.count, bShape.count)
        let a = [Int](repeating: 1, count: rank - aShape.count) + aShape
        let b = [Int](repeating: 1, count: rank - bShape.count) + bShape
        let out = zip(a, b).map { x, y -> Int in
            precondition(x == y || x == 1 || y == 1, "shapes \(aShape) and \(bShape) do not broadcast")
            return x == 1 ? y : x
        }
        outputShape = out
        let aStrides = elementStrides(a), bStrides = elementStrides(b)
        // Coalesce, innermost first: merge an axis into the previous one when both operands stay linear.
        var dims: [Int] = [], sa: [Int] = [], sb: [Int] = []
        for d in stride(from: rank - 1, through: 0, by: -1) where out[d] != 1 {
            let ta = a[d] == 1 ? 0 : aStrides[d], tb = b[d] == 1 ? 0 : bStrides[d]
            if let last = dims.indices.last, ta == sa[last] * dims[last], tb == sb[last] * dims[last] {
                dims[last] *= out[d]
            } else {
                dims.append(out[d]); sa.append(ta); sb.append(tb)
            }
        }
        if dims.isEmpty { dims = [1]; sa = [1]; sb = [1] }
        precondition(dims.count <= 6, "broadcast needs more than 6 coalesced axes")
        // Every axis after the innermost kept one has size 1, so its strides are 0 or 1.
        inner = dims[0]; aInner = sa[0]; bInner = sb[0]
        outer = dims.dropFirst().reversed(); aOuter = sa.dropFirst().reversed(); bOuter = sb.dropFirst().reversed()
    }

    /// Preconditions: `a`, `b` hold their shapes' element counts and `output` the output's;
    /// `output` may alias an operand that has the output's shape.
    package func run(a: UnsafePointer<Float>, b: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let rows = outer.reduce(1, *)
        let total = rows * inner
        guard total > 0 else { return }
        // Below ~32K elements a thread handoff costs more than it saves.
        let tasks = total < 32_768 ? 1 : pool.threadCount
        let work = { (t: Int) in
            if rows >= tasks {
                for r in (rows * t / tasks)..<(rows * (t + 1) / tasks) { self.row(r, 0..<self.inner, a, b, output) }
            } else {
                let part = (self.inner * t / tasks)..<(self.inner * (t + 1) / tasks)
                for r in 0..<rows { self.row(r, part, a, b, output) }
            }
        }
        if tasks == 1 { work(0) } else { pool.parallelFor(tasks, work) }
    }

    @inline(__always)
    private func row(_ r: Int, _ range: Range<Int>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                     _ y: UnsafeMutablePointer<Float>) {
        var aOff = 0, bOff = 0, rest = r
        for d in stride(from: outer.count - 1, through: 0, by: -1) {
            let i = rest % outer[d]
            rest /= outer[d]
            aOff += i * aOuter[d]
            bOff += i * bOuter[d]
        }
        let lo = range.lowerBound
        let out = y + r * inner + lo
        let pa = a + aOff + lo * aInner, pb = b + bOff + lo * bInner
        switch op {
        case .add: binaryLoop(pa, aInner, pb, bInner, out, range.count) { $0 + $1 }
        case .sub: binaryLoop(pa, aInner, pb, bInner, out, range.count) { $0 - $1 }
        case .mul: binaryLoop(pa, aInner, pb, bInner, out, range.count) { $0 * $1 }
        case .div: binaryLoop(pa, aInner, pb, bInner, out, range.count) { $0 / $1 }
        }
        applyActivation(activation, out, count: range.count)
    }
}

/// `y[i] = f(a[i·sa], b[i·sb])` for `i < count`, where each stride is 0 (scalar) or 1.
@inline(__always)
private func binaryLoop(_ a: UnsafePointer<Float>, _ sa: Int, _ b: UnsafePointer<Float>, _ sb: Int,
                        _ y: UnsafeMutablePointer<Float>, _ count: Int,
                        _ f: (SIMD16<Float>, SIMD16<Float>) -> SIMD16<Float>) {
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b), ry = UnsafeMutableRawPointer(y)
    @inline(__always) func load(_ p: UnsafeRawPointer, _ s: Int, _ i: Int) -> SIMD16<Float> {
        s == 0 ? SIMD16(repeating: p.load(as: Float.self)) : p.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
    }
    var i = 0
    while i + 16 <= count {
        ry.storeBytes(of: f(load(ra, sa, i), load(rb, sb, i)), toByteOffset: i * 4, as: SIMD16<Float>.self)
        i += 16
    }
    while i < count {
        y[i] = f(SIMD16(repeating: a[i * sa]), SIMD16(repeating: b[i * sb]))[0]
        i += 1
    }
}

/// Row-major element strides of `shape`.
func elementStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var s = 1
    for d in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[d] = s
        s *= shape[d]
    }
    return strides
}
