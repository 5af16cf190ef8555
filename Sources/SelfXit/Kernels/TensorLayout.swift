import CBLAS

/// Data-movement kernels: Transpose, Concat, constant Pad, and batched MatMul of two
/// activations. Shapes are full (batch first) and row-major.

/// Row-major strides of `shape`.
private func rowMajorStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    for axis in stride(from: shape.count - 2, through: 0, by: -1) { strides[axis] = strides[axis + 1] * shape[axis + 1] }
    return strides
}

/// Calls `body(outputIndex, sourceIndex)` over an output of `shape` whose element at each
/// coordinate comes from `sourceStrides · coordinate`; the last axis runs as an inner loop.
@inline(__always)
private func walk(_ shape: [Int], sourceStrides: [Int], _ body: (_ out: Int, _ source: Int, _ innerCount: Int, _ innerStride: Int) -> Void) {
    guard let innerCount = shape.last, let innerStride = sourceStrides.last else { body(0, 0, 1, 0); return }
    let outer = shape.dropLast().reduce(1, *)
    var coordinate = [Int](repeating: 0, count: max(shape.count - 1, 0))
    for index in 0..<outer {
        var source = 0
        for axis in 0..<coordinate.count { source += coordinate[axis] * sourceStrides[axis] }
        body(index * innerCount, source, innerCount, innerStride)
        var axis = coordinate.count - 1
        while axis >= 0 {
            coordinate[axis] += 1
            if coordinate[axis] < shape[axis] { break }
            coordinate[axis] = 0
            axis -= 1
        }
    }
}

/// Precondition: `permutation` is a permutation of the axes of `shape`.
func transpose(input: UnsafePointer<Float>, shape: [Int], permutation: [Int], output: UnsafeMutablePointer<Float>) {
    let strides = rowMajorStrides(shape)
    let outShape = permutation.map { shape[$0] }
    walk(outShape, sourceStrides: permutation.map { strides[$0] }) { out, source, count, step in
        for i in 0..<count { output[out + i] = input[source + i * step] }
    }
}

/// Precondition: shapes agree except along `axis`; `output` holds their concatenation.
func concat(inputs: [UnsafePointer<Float>], shapes: [[Int]], axis: Int, output: UnsafeMutablePointer<Float>) {
    let outer = shapes[0][..<axis].reduce(1, *)
    let chunks = shapes.map { $0[axis...].reduce(1, *) }
    let total = chunks.reduce(0, +)
    for o in 0..<outer {
        var offset = o * total
        for (input, chunk) in zip(inputs, chunks) {
            (output + offset).update(from: input + o * chunk, count: chunk)
            offset += chunk
        }
    }
}

/// Constant padding; `pads` = [begin₀ … begin_{r−1}, end₀ … end_{r−1}], all ≥ 0.
func padConstant(input: UnsafePointer<Float>, shape: [Int], pads: [Int], value: Float, output: UnsafeMutablePointer<Float>) {
    let rank = shape.count
    let outShape = (0..<rank).map { shape[$0] + pads[$0] + pads[$0 + rank] }
    let count = outShape.reduce(1, *)
    output.update(repeating: value, count: count)
    let outStrides = rowMajorStrides(outShape)
    let start = (0..<rank).reduce(0) { $0 + pads[$1] * outStrides[$1] }
    // Copy the input's rows into the padded output, row by row along the last axis.
    walk(shape, sourceStrides: outStrides) { inIndex, target, rowCount, _ in
        (output + start + target).update(from: input + inIndex, count: rowCount)
    }
}

/// `C = A · B` for activations A [..., M, K] and B [..., K, N] whose leading dims broadcast
/// to C's. Each matrix product is one single-threaded sgemm, spread over the pool.
func batchedMatMul(_ a: UnsafePointer<Float>, shape aShape: [Int], _ b: UnsafePointer<Float>, shape bShape: [Int],
                   output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
    let (m, k, n) = (aShape[aShape.count - 2], aShape[aShape.count - 1], bShape[bShape.count - 1])
    let leadA = Array(aShape.dropLast(2)), leadB = Array(bShape.dropLast(2))
    let lead = zip(leadA, leadB).map { max($0, $1) }
    let count = lead.reduce(1, *)
    let stridesA = rowMajorStrides(leadA), stridesB = rowMajorStrides(leadB)
    pool.parallelFor(count) { index in
        var remainder = index, offsetA = 0, offsetB = 0
        for axis in stride(from: lead.count - 1, through: 0, by: -1) {
            let coordinate = remainder % lead[axis]
            remainder /= lead[axis]
            if leadA[axis] != 1 { offsetA += coordinate * stridesA[axis] }
            if leadB[axis] != 1 { offsetB += coordinate * stridesB[axis] }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                    a + offsetA * m * k, Int32(k), b + offsetB * k * n, Int32(n), 0, output + index * m * n, Int32(n))
    }
}
