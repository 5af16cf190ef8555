/// ONNX Resize of the last two axes (`[planes, H, W]` → `[planes, outH, outW]`), nearest or
/// bilinear, computed as ONNX Runtime's CPU kernel computes it (issue 13): two taps per axis, not
/// a dense product per axis (a dense `[outW, inW]` product costs O(in · out) per row — ≈ 300
/// MFLOPs of SSDLite's input transform — and rounds differently).
///
/// Bilinear follows onnxruntime's `UpsampleBilinear` term for term, so the result is the same
/// float: per axis `d1 = |in − i1|`, `d2 = |in − i2|` (0.5 each where `i1 == i2`, at the clamped
/// edge), and `y = dx2·dy2·X11 + dx1·dy2·X21 + dx2·dy1·X12 + dx1·dy1·X22`, summed left to right,
/// each weight product rounded first (Swift does not contract `a * b + c` into an FMA). Checked
/// bit-equal against onnxruntime 1.32 on the detectors' sizes (tools/detector_conformance.py).
struct Resize2DKernel: Sendable {
    let inHeight, inWidth, outHeight, outWidth: Int
    let nearest: Bool
    /// Per output row / column: first and second input index, and the weights `d1`, `d2` (the
    /// distance to the other tap: `d2` weighs the first index, `d1` the second).
    let y1, y2, x1, x2: [Int]
    let dy1, dy2, dx1, dx2: [Float]

    /// `plan` is the node's `ResizePlan`; `heightAxis`/`widthAxis` index its axes.
    init(plan: ResizePlan, heightAxis: Int, widthAxis: Int, inHeight: Int, inWidth: Int, nearest: Bool) {
        self.inHeight = inHeight
        self.inWidth = inWidth
        outHeight = plan.outputShape[heightAxis]
        outWidth = plan.outputShape[widthAxis]
        self.nearest = nearest
        func split(_ taps: [(Int, Int, Float)]) -> ([Int], [Int], [Float], [Float]) {
            var (a, b, d1, d2) = ([Int](), [Int](), [Float](), [Float]())
            for (i0, i1, w) in taps {
                a.append(i0)
                b.append(i1)
                if i0 == i1 {
                    d1.append(0.5)
                    d2.append(0.5)
                } else {
                    // The clamped source coordinate is i0 + w exactly (w = coordinate − i0 is exact).
                    let coordinate = Float(i0) + w
                    d1.append(abs(coordinate - Float(i0)))
                    d2.append(abs(coordinate - Float(i1)))
                }
            }
            return (a, b, d1, d2)
        }
        (y1, y2, dy1, dy2) = split(plan.axes[heightAxis].taps)
        (x1, x2, dx1, dx2) = split(plan.axes[widthAxis].taps)
    }

    /// Resizes `planes` consecutive `[inHeight, inWidth]` planes of `input` into `output`.
    func run(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, planes: Int, pool: ThreadPool) {
        let (inPlane, outPlane) = (inHeight * inWidth, outHeight * outWidth)
        let tasks = planes * outPlane < 65_536 ? 1 : min(pool.threadCount, planes * outHeight)
        let rows = planes * outHeight
        let work = { (t: Int) in
            y1.withUnsafeBufferPointer { y1 in y2.withUnsafeBufferPointer { y2 in
            x1.withUnsafeBufferPointer { x1 in x2.withUnsafeBufferPointer { x2 in
            dy1.withUnsafeBufferPointer { dy1 in dy2.withUnsafeBufferPointer { dy2 in
            dx1.withUnsafeBufferPointer { dx1 in dx2.withUnsafeBufferPointer { dx2 in
                for row in (rows * t / tasks)..<(rows * (t + 1) / tasks) {
                    let (plane, y) = row.quotientAndRemainder(dividingBy: outHeight)
                    let source = input + plane * inPlane
                    let target = output + plane * outPlane + y * outWidth
                    let top = source + y1[y] * inWidth, bottom = source + y2[y] * inWidth
                    if nearest {
                        for x in 0..<outWidth { target[x] = top[x1[x]] }
                        continue
                    }
                    let (a, b) = (dy1[y], dy2[y])
                    for x in 0..<outWidth {
                        let (i, j) = (x1[x], x2[x])
                        let (p, q) = (dx1[x], dx2[x])
                        var value = (q * b) * top[i]
                        value += (p * b) * top[j]
                        value += (q * a) * bottom[i]
                        value += (p * a) * bottom[j]
                        target[x] = value
                    }
                }
            } } } } } } } }
        }
        if tasks <= 1 { work(0) } else { pool.parallelFor(tasks, work) }
    }
}
