/// Concatenation along `axis` of inputs whose shapes agree on every other axis (ONNX Concat).
package struct Concat: Equatable, Sendable {
    package let outputShape: [Int]
    /// Product of the dims before `axis`, and each input's contiguous chunk per outer index.
    private let outer: Int, chunks: [Int]

    /// Precondition: `shapes` non-empty, same rank, equal except along `axis` (already non-negative).
    package init(shapes: [[Int]], axis: Int) {
        precondition(!shapes.isEmpty && axis >= 0 && axis < shapes[0].count)
        for s in shapes {
            precondition(s.count == shapes[0].count && s.indices.allSatisfy { $0 == axis || s[$0] == shapes[0][$0] })
        }
        var out = shapes[0]
        out[axis] = shapes.reduce(0) { $0 + $1[axis] }
        outputShape = out
        outer = shapes[0][..<axis].reduce(1, *)
        chunks = shapes.map { $0[axis...].reduce(1, *) }
    }

    /// Preconditions: `inputs[i]` holds shape `i`'s element count, `output` the output's; no overlap.
    package func run(inputs: [UnsafePointer<Float>], output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        precondition(inputs.count == chunks.count)
        let row = chunks.reduce(0, +)
        let tasks = outer * row < 65_536 ? 1 : min(pool.threadCount, outer)
        let work = { (t: Int) in
            for o in (self.outer * t / tasks)..<(self.outer * (t + 1) / tasks) {
                var dst = output + o * row
                for (x, chunk) in zip(inputs, self.chunks) {
                    dst.update(from: x + o * chunk, count: chunk)
                    dst += chunk
                }
            }
        }
        if tasks <= 1 { work(0) } else { pool.parallelFor(tasks, work) }
    }
}
