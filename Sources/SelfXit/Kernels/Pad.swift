/// Constant-value padding of a 4-D tensor (ONNX Pad, mode "constant"). Negative pads crop.
package struct ConstantPad4D: Equatable, Sendable {
    package let inputShape: [Int]
    package let outputShape: [Int]
    /// Leading pads per axis (ONNX `pads[0..<4]`).
    private let begin: [Int]
    package let value: Float

    /// - Parameter pads: ONNX order `[b0, b1, b2, b3, e0, e1, e2, e3]`.
    /// Precondition: `shape.count == 4`, `pads.count == 8`, no output axis negative.
    package init(shape: [Int], pads: [Int], value: Float) {
        precondition(shape.count == 4 && pads.count == 8)
        inputShape = shape
        outputShape = (0..<4).map { shape[$0] + pads[$0] + pads[$0 + 4] }
        precondition(outputShape.allSatisfy { $0 >= 0 })
        begin = Array(pads[0..<4])
        self.value = value
    }

    /// Preconditions: `input` holds `inputShape`'s element count, `output` `outputShape`'s; no overlap.
    package func run(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let o = outputShape, s = inputShape
        let rows = o[0] * o[1] * o[2], width = o[3]
        guard rows * width > 0 else { return }
        // Output columns fed by the input, and where they come from.
        let lo = max(0, begin[3]), hi = max(lo, min(width, s[3] + begin[3]))
        let tasks = rows * width < 65_536 ? 1 : min(pool.threadCount, rows)
        let work = { (t: Int) in
            for r in (rows * t / tasks)..<(rows * (t + 1) / tasks) {
                let dst = output + r * width
                let i0 = r / (o[1] * o[2]) - self.begin[0]
                let i1 = r / o[2] % o[1] - self.begin[1]
                let i2 = r % o[2] - self.begin[2]
                guard i0 >= 0 && i0 < s[0] && i1 >= 0 && i1 < s[1] && i2 >= 0 && i2 < s[2] else {
                    dst.update(repeating: self.value, count: width)
                    continue
                }
                let src = input + ((i0 * s[1] + i1) * s[2] + i2) * s[3]
                dst.update(repeating: self.value, count: lo)
                (dst + lo).update(from: src + lo - self.begin[3], count: hi - lo)
                (dst + hi).update(repeating: self.value, count: width - hi)
            }
        }
        if tasks <= 1 { work(0) } else { pool.parallelFor(tasks, work) }
    }
}
