import SelfXitGEMM

/// The `C` operand of an ONNX Gemm, broadcast onto `[rows, n]`.
package enum GemmBias: Equatable, Sendable {
    case none
    case scalar(Float)
    /// Shape `[n]` or `[1, n]`.
    case row([Float])
    /// Shape `[rows, n]`: only valid when `run` is called with exactly that many rows.
    case full([Float])
}

/// `y[rows, n] = act(alpha · A · B + beta · C)` for an activation `A` of shape `[rows, k]` and a
/// constant `B`, packed at init into row-major `[k, n]`. Also serves MatMul of an activation
/// `[..., M, k]` with a constant `[k, n]`: flatten the leading dims into `rows`.
package final class DenseKernel {
    package let k: Int
    package let n: Int
    package let activation: Activation
    private let alpha: Float
    private let packed: UnsafeMutablePointer<Float>
    /// `beta · C`, pre-scaled; empty unless `.row` / `.full`.
    private let bias: UnsafeMutablePointer<Float>?
    private let biasRows: Int
    private let scalarBias: Float
    /// The configuration's few-rows product (`nil` where it has none): products of up to
    /// `smallRowsMax` rows run on it, not the packed SGEMM.
    private let smallRows = PackedGEMM.currentISA != nil ? PackedGEMM.currentConfig.pointee.small_rows : nil
    private let smallRowsMax = Int(PackedGEMM.currentConfig.pointee.small_rows_max)
    /// The micro-kernels `sx_sgemm` runs on (a test's forced ISA when one is set at creation).
    private let isa = PackedGEMM.currentISA ?? sx_gemm_default_isa()

    /// Whether a product of `rows` rows runs on the few-rows product (which takes 1 to `smallRowsMax`).
    private func usesSmallRows(_ rows: Int) -> Bool { smallRows != nil && rows <= smallRowsMax }

    /// - Parameters:
    ///   - weights: `B`, `[n, k]` when `transposed` (ONNX `transB = 1`), else `[k, n]`.
    /// Precondition: `weights.count == k · n`; a `.row` bias has `n` entries, a `.full` one a multiple of `n`.
    package init(weights: [Float], k: Int, n: Int, transposed: Bool, alpha: Float = 1,
                bias: GemmBias = .none, beta: Float = 1, activation: Activation = .none) {
        precondition(k > 0 && n > 0 && weights.count == k * n)
        self.k = k
        self.n = n
        self.alpha = alpha
        self.activation = activation
        packed = allocateFloats(k * n)
        if transposed {
            for r in 0..<n { for c in 0..<k { packed[c * n + r] = weights[r * k + c] } }
        } else {
            packed.initialize(from: weights, count: k * n)
        }
        switch bias {
        case .none:
            self.bias = nil; biasRows = 0; scalarBias = 0
        case let .scalar(v):
            self.bias = nil; biasRows = 0; scalarBias = beta * v
        case let .row(v), let .full(v):
            precondition(!v.isEmpty && v.count % n == 0, "Gemm bias must be [n] or [rows, n]")
            let p = allocateFloats(v.count)
            for i in 0..<v.count { p[i] = beta * v[i] }
            self.bias = p; biasRows = v.count / n; scalarBias = 0
        }
    }

    deinit {
        packed.deallocate()
        bias?.deallocate()
    }

    /// Preconditions: `input` holds `rows · k` floats, `output` `rows · n` (not aliasing `input`);
    /// with a `.full` bias, `rows` equals its row count.
    package func run(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows: Int, pool: ThreadPool) {
        guard rows > 0 else { return }
        precondition(biasRows <= 1 || biasRows == rows, "Gemm [M, N] bias needs rows == M")
        let threads = pool.threadCount
        if rows == 1 && threads > 1 && usesSmallRows(1) && k >= 64 * threads && k * n >= 1 << 18 {
            return runSplittingK(input: input, output: output, pool: pool)
        }
        // Split rows when there are plenty; otherwise columns (each thread then streams its part of B).
        let splitRows = rows >= 4 * threads && !usesSmallRows(rows)
        pool.parallelFor(threads) { t in
            let r = splitRows ? (rows * t / threads)..<(rows * (t + 1) / threads) : 0..<rows
            let c = splitRows ? 0..<n : slice(n, t, threads)
            tile(input, output, rows: r, cols: c)
        }
    }

    /// One row over a large B (a classifier at batch 1, B from memory): each thread takes a
    /// share of K — whole rows of B, one contiguous run — and the shares' products are summed.
    /// Split by columns, every thread read a slice of every row of B, runs `n` floats apart:
    /// ResNet-50's 2048→1000 layer took 0.54–0.69 ms that way against 0.38–0.42 split by K
    /// (AMD EPYC Zen 3, 2 threads, B cycled through 64 MB; ONNX Runtime's node 0.35).
    private func runSplittingK(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let threads = pool.threadCount
        withUnsafeTemporaryAllocation(of: Float.self, capacity: (threads - 1) * n) { partials in
            let partial = partials.baseAddress!
            pool.parallelFor(threads) { t in
                let share = slice(k, t, threads)
                smallRows!(1, Int32(n), Int32(share.count), alpha, input + share.lowerBound, k,
                           packed + share.lowerBound * n, n, t == 0 ? output : partial + (t - 1) * n, n)
            }
            for t in 1..<threads { addBiasAndResidual(output, count: n, bias: 0, residual: partial + (t - 1) * n) }
        }
        finishRows(output, rows: 0..<1, cols: 0..<n)
    }

    @inline(__always)
    private func tile(_ a: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>, cols: Range<Int>) {
        guard !rows.isEmpty && !cols.isEmpty else { return }
        let out = y + rows.lowerBound * n + cols.lowerBound
        if usesSmallRows(rows.count) {
            // A few rows (a classifier at a small batch): a packed product would copy all of B for them.
            smallRows!(Int32(rows.count), Int32(cols.count), Int32(k), alpha, a + rows.lowerBound * k, k,
                       packed + cols.lowerBound, n, out, n)
        } else {
            sx_sgemm(isa, 0, 0, Int32(rows.count), Int32(cols.count), Int32(k),
                     alpha, a + rows.lowerBound * k, k, packed + cols.lowerBound, n, 0, out, n)
        }
        finishRows(y, rows: rows, cols: cols)
    }

    /// `beta · C` and the activation on rows `rows`, columns `cols` of the product `y`.
    @inline(__always)
    private func finishRows(_ y: UnsafeMutablePointer<Float>, rows: Range<Int>, cols: Range<Int>) {
        let out = y + rows.lowerBound * n + cols.lowerBound
        for r in 0..<rows.count {
            let row = out + r * n
            if let bias {
                let b = bias + (biasRows == 1 ? 0 : (rows.lowerBound + r) * n) + cols.lowerBound
                addBiasAndResidual(row, count: cols.count, bias: 0, residual: b)
            } else if scalarBias != 0 {
                addBiasAndResidual(row, count: cols.count, bias: scalarBias, residual: nil)
            }
            applyActivation(activation, row, count: cols.count)
        }
    }
}

/// MatMul of two activations with numpy semantics: 1-D operands are promoted (and the promoted
/// axis dropped from the result), leading batch dims broadcast.
package struct BatchedMatMul: Equatable, Sendable {
    package let outputShape: [Int]
    private let m: Int, k: Int, n: Int
    private let batchShape: [Int]
    /// Element strides of each operand's matrices over `batchShape` (0 where broadcast).
    private let aBatchStrides: [Int], bBatchStrides: [Int]
    /// The micro-kernels `sx_sgemm` runs on (a test's forced ISA when one is set at creation).
    private let isa = PackedGEMM.currentISA ?? sx_gemm_default_isa()

    /// Precondition: both shapes non-empty, inner dims agree, batch dims broadcast.
    package init(aShape: [Int], bShape: [Int]) {
        precondition(!aShape.isEmpty && !bShape.isEmpty)
        let a = aShape.count == 1 ? [1] + aShape : aShape
        let b = bShape.count == 1 ? bShape + [1] : bShape
        m = a[a.count - 2]; k = a[a.count - 1]; n = b[b.count - 1]
        precondition(b[b.count - 2] == k, "MatMul inner dims differ: \(aShape) × \(bShape)")
        let aBatch = Array(a.dropLast(2)), bBatch = Array(b.dropLast(2))
        let rank = max(aBatch.count, bBatch.count)
        let aFull = [Int](repeating: 1, count: rank - aBatch.count) + aBatch
        let bFull = [Int](repeating: 1, count: rank - bBatch.count) + bBatch
        batchShape = zip(aFull, bFull).map { x, y in
            precondition(x == y || x == 1 || y == 1, "MatMul batch dims do not broadcast: \(aShape) × \(bShape)")
            return max(x, y)
        }
        aBatchStrides = broadcastStrides(aFull, matrix: m * k)
        bBatchStrides = broadcastStrides(bFull, matrix: k * n)
        var out = batchShape
        if aShape.count > 1 { out.append(m) }
        if bShape.count > 1 { out.append(n) }
        outputShape = out
    }

    /// Preconditions: buffers hold their shapes' element counts; `output` aliases neither input.
    package func run(a: UnsafePointer<Float>, b: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let count = batchShape.reduce(1, *)
        guard count > 0 && m > 0 && n > 0 else { return }
        let threads = pool.threadCount
        let (m, k, n, isa) = (self.m, self.k, self.n, self.isa)
        func multiply(_ i: Int, rows: Range<Int>) {
            guard !rows.isEmpty else { return }
            var aOff = 0, bOff = 0, rest = i
            for d in stride(from: batchShape.count - 1, through: 0, by: -1) {
                let idx = rest % batchShape[d]
                rest /= batchShape[d]
                aOff += idx * aBatchStrides[d]
                bOff += idx * bBatchStrides[d]
            }
            let y = output + i * m * n + rows.lowerBound * n
            if k == 0 { y.update(repeating: 0, count: rows.count * n); return }
            sx_sgemm(isa, 0, 0, Int32(rows.count), Int32(n), Int32(k), 1,
                     a + aOff + rows.lowerBound * k, k, b + bOff, n, 0, y, n)
        }
        if count >= threads {
            pool.parallelFor(threads) { t in
                for i in (count * t / threads)..<(count * (t + 1) / threads) { multiply(i, rows: 0..<m) }
            }
        } else {
            for i in 0..<count {
                pool.parallelFor(threads) { t in multiply(i, rows: (m * t / threads)..<(m * (t + 1) / threads)) }
            }
        }
    }
}

/// Row-major strides of `shape` (with `matrix` elements per innermost item), 0 on size-1 dims.
private func broadcastStrides(_ shape: [Int], matrix: Int) -> [Int] {
    var strides = [Int](repeating: 0, count: shape.count)
    var s = matrix
    for d in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[d] = shape[d] == 1 ? 0 : s
        s *= shape[d]
    }
    return strides
}
