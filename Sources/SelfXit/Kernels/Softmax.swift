/// Numerically stable softmax over the last axis of a `[rows, n]` view:
/// `y[r, i] = exp(x[r, i] − max_r) / Σ_j exp(x[r, j] − max_r)`.
/// Preconditions: `n > 0`; `output` holds `rows · n` floats and may equal `input`.
/// Non-finite values behave as in ONNX Runtime: a row holding NaN or +inf (or only −inf) comes
/// out all NaN (inf − inf); −inf entries among finite ones get probability 0; finite values of
/// any magnitude never trap (differences that overflow to −inf give 0).
package func softmax(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows: Int, n: Int, pool: ThreadPool) {
    guard rows > 0 else { return }
    precondition(n > 0)
    let tasks = rows * n < 16_384 ? 1 : min(pool.threadCount, rows)
    let work = { (t: Int) in
        for r in (rows * t / tasks)..<(rows * (t + 1) / tasks) { softmaxRow(input + r * n, output + r * n, n) }
    }
    if tasks <= 1 { work(0) } else { pool.parallelFor(tasks, work) }
}

private func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
    var vmax = SIMD16<Float>(repeating: -.infinity)
    var i = 0
    while i + 16 <= n { let v = rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self); vmax = vmax.replacing(with: v, where: v .> vmax); i += 16 }
    var m = vmax.max()
    while i < n { m = max(m, x[i]); i += 1 }

    var vsum = SIMD16<Float>()
    i = 0
    while i + 16 <= n {
        let e = exp16(rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) - m)
        ry.storeBytes(of: e, toByteOffset: i * 4, as: SIMD16<Float>.self)
        vsum += e
        i += 16
    }
    var sum = vsum.sum()
    if i < n {
        var v = SIMD16<Float>(repeating: -.infinity)
        for j in 0..<(n - i) { v[j] = x[i + j] - m }
        let e = exp16(v)
        for j in 0..<(n - i) { y[i + j] = e[j]; sum += e[j] }
    }
    let scale = 1 / sum
    i = 0
    while i + 16 <= n {
        ry.storeBytes(of: ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) * scale, toByteOffset: i * 4, as: SIMD16<Float>.self)
        i += 16
    }
    while i < n { y[i] *= scale; i += 1 }
}
