/// General permutation of up to 6 axes: `output` axis `i` is `input` axis `perm[i]` (ONNX Transpose).
///
/// Axes that stay adjacent and in order are merged at init; when the innermost axis is kept the
/// inner loop is a contiguous copy, otherwise a strided gather.
package struct Transpose: Equatable, Sendable {
    package let outputShape: [Int]
    /// Coalesced output dims (outermost first) and the input element stride of each.
    private let dims: [Int], inStrides: [Int]

    /// Precondition: `perm` is a permutation of `0..<shape.count`, `shape.count ≤ 6`.
    package init(shape: [Int], perm: [Int]) {
        precondition(shape.count <= 6 && perm.count == shape.count && Set(perm) == Set(0..<shape.count))
        outputShape = perm.map { shape[$0] }
        let strides = elementStrides(shape)
        var d: [Int] = [], s: [Int] = []
        for axis in perm where shape[axis] != 1 {
            if let last = d.indices.last, s[last] == strides[axis] * shape[axis] {
                d[last] *= shape[axis]; s[last] = strides[axis]
            } else {
                d.append(shape[axis]); s.append(strides[axis])
            }
        }
        if d.isEmpty { d = [1]; s = [1] }
        dims = d; inStrides = s
    }

    /// Preconditions: buffers hold `shape`'s element count; `output` does not overlap `input`.
    package func run(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let inner = dims[dims.count - 1], innerStride = inStrides[dims.count - 1]
        let rows = dims.dropLast().reduce(1, *)
        guard rows * inner > 0 else { return }
        let tasks = rows * inner < 32_768 ? 1 : min(pool.threadCount, rows)
        let work = { (t: Int) in
            for r in (rows * t / tasks)..<(rows * (t + 1) / tasks) {
                var off = 0, rest = r
                for d in stride(from: self.dims.count - 2, through: 0, by: -1) {
                    off += (rest % self.dims[d]) * self.inStrides[d]
                    rest /= self.dims[d]
                }
                let src = input + off, dst = output + r * inner
                if innerStride == 1 {
                    dst.update(from: src, count: inner)
                } else {
                    for i in 0..<inner { dst[i] = src[i * innerStride] }
                }
            }
        }
        if tasks <= 1 { work(0) } else { pool.parallelFor(tasks, work) }
    }
}
