/// A pointwise activation fused into a kernel's epilogue or run as a standalone op.
package enum Activation: Equatable, Sendable {
    case none
    case relu
    case clip(min: Float, max: Float)
    case sigmoid
    case silu
    /// `max(0, min(1, alpha * x + beta))` (ONNX HardSigmoid).
    case hardSigmoid(alpha: Float, beta: Float)
    /// `x * max(0, min(1, x / 6 + 0.5))` (ONNX HardSwish).
    case hardSwish
    case tanh
}

/// Applies `a` in place to `x[0..<count]`. Vectorised over SIMD16; `count` may be 0.
func applyActivation(_ a: Activation, _ x: UnsafeMutablePointer<Float>, count: Int) {
    switch a {
    case .none: return
    case .relu: map(x, count, Relu())
    case let .clip(lo, hi): map(x, count, Clip(lo: SIMD16(repeating: lo), hi: SIMD16(repeating: hi)))
    // Sigmoid and SiLU on the kernel configuration's vectors (AVX-512 / AVX2 / NEON, total like
    // exp16): EfficientNet runs a SiLU after nearly every convolution.
    case .sigmoid: PackedGEMM.currentConfig.pointee.sigmoid(x, x, count)
    case .silu: PackedGEMM.currentConfig.pointee.silu(x, x, count)
    case let .hardSigmoid(alpha, beta): map(x, count, HardSigmoid(alpha: alpha, beta: beta))
    case .hardSwish: map(x, count, HardSwish())
    case .tanh: map(x, count, Tanh())
    }
}

/// `min(max(v, lo), hi)` per lane. Written with masks on purpose: the standard library's
/// `clamped(lowerBound:upperBound:)` and `pointwiseMin/Max` on SIMD16 are not specialised
/// here and run ~50× slower (19 ms instead of 0.4 ms for a 1.2 M-float ReLU6).
@inline(__always)
func clamp16(_ v: SIMD16<Float>, _ lo: SIMD16<Float>, _ hi: SIMD16<Float>) -> SIMD16<Float> {
    let low = v.replacing(with: lo, where: v .< lo)
    return low.replacing(with: hi, where: low .> hi)
}

/// One activation on 16 lanes. Concrete types (not closures) so each `map` is specialised and inlined.
private protocol VectorFunction { func callAsFunction(_ v: SIMD16<Float>) -> SIMD16<Float> }

private struct Relu: VectorFunction {
    @inline(__always) func callAsFunction(_ v: SIMD16<Float>) -> SIMD16<Float> { v.replacing(with: 0, where: v .< 0) }
}
private struct Clip: VectorFunction {
    let lo, hi: SIMD16<Float>
    @inline(__always) func callAsFunction(_ v: SIMD16<Float>) -> SIMD16<Float> { clamp16(v, lo, hi) }
}
private struct Sigmoid: VectorFunction {
    @inline(__always) func callAsFunction(_ v: SIMD16<Float>) -> SIMD16<Float> { sigmoid16(v) }
}
private struct SiLU: VectorFunction {
    @inline(__always) func callAsFunction(_ v: SIMD16<Float>) -> SIMD16<Float> { v * sigmoid16(v) }
}
private struct HardSigmoid: VectorFunction {
    let alpha, beta: Float
    @inline(__always) func callAsFunction(_ v: SIMD16<Float>) -> SIMD16<Float> {
        clamp16(v * alpha + beta, .zero, .one)
    }
}
private struct HardSwish: VectorFunction {
    @inline(__always) func callAsFunction(_ v: SIMD16<Float>) -> SIMD16<Float> {
        v * clamp16(v * (1 / 6) + 0.5, .zero, .one)
    }
}
private struct Tanh: VectorFunction {
    // tanh(x) = 2·sigmoid(2x) − 1; absolute error stays at float epsilon. Below |x| = 4e-4,
    // tanh(x) = x to within x³/3 < half an ulp, and the identity would cancel to 0 (ORT keeps
    // tanh(1e-40) = 1e-40), so those lanes take x itself. ±inf → ±1, NaN → NaN.
    @inline(__always) func callAsFunction(_ v: SIMD16<Float>) -> SIMD16<Float> {
        (2 * sigmoid16(v + v) - 1).replacing(with: v, where: v * v .< 1.6e-7)
    }
}

/// In-place `x[i] = f(x[i])` over full SIMD16 chunks plus a zero-padded tail chunk.
private func map<F: VectorFunction>(_ x: UnsafeMutablePointer<Float>, _ count: Int, _ f: F) {
    let raw = UnsafeMutableRawPointer(x)
    var i = 0
    while i + 16 <= count {
        let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        raw.storeBytes(of: f(v), toByteOffset: i * 4, as: SIMD16<Float>.self)
        i += 16
    }
    if i < count {
        var v = SIMD16<Float>()
        for j in 0..<(count - i) { v[j] = x[i + j] }
        let r = f(v)
        for j in 0..<(count - i) { x[i + j] = r[j] }
    }
}

/// `1 / (1 + e^−x)`: NaN → NaN, +inf → 1, −inf → 0 (exp16's limits make it total).
@inline(__always)
func sigmoid16(_ x: SIMD16<Float>) -> SIMD16<Float> {
    1 / (1 + exp16(-x))
}

/// Vector `e^x` (Cephes-style: 2^n · P(r), |r| ≤ ln2/2), relative error ~2 ulp on
/// [−87.3, 88.3]. Total over every float, like ONNX Runtime's Exp:
///   - NaN → NaN: the clamp below is mask-based, so NaN passes it, and NaN stays NaN through
///     the polynomial and the final scaling;
///   - x > 88.7228 (where e^x exceeds Float.greatestFiniteMagnitude), +inf included → +inf;
///     (88.3, 88.7228] saturates at e^88.3 ≈ 2.0e38 — only an Exp of that band would see it
///     (sigmoid, SiLU, tanh and softmax results do not change);
///   - x < −87.3365 (e^x below the smallest normal float), −inf included → 0.
/// No float → int conversion happens: n = round(x/ln2) comes from adding 1.5·2^23 (the float
/// then holds n in its low mantissa bits, rounded to nearest-even by the add itself), and 2^n
/// is built from that bit pattern with wrapping integer ops. A checked `Int32(_:)` conversion
/// here used to trap on NaN (SIGILL in the host) and cost a per-lane range check (5× slower
/// SiLU on AVX2).
@inline(__always)
func exp16(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let xc = clamp16(x, SIMD16(repeating: -87.3), SIMD16(repeating: 88.3))
    let magic = SIMD16<Float>(repeating: 12_582_912)  // 1.5 · 2^23
    let t = xc * 1.44269504088896341 + magic          // bits(t) = 0x4B40_0000 + n for |n| < 2^22
    let n = t - magic
    var r = xc - n * 0.693359375
    r = r + n * 2.12194440e-4
    var p = SIMD16<Float>(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    p = p * (r * r) + r + 1
    // 2^n through the exponent bits; n ∈ [−126, 127] after the clamp, so the biased exponent
    // is in [1, 254]. For NaN lanes the bits are garbage, but p is NaN there and so is p · 2^n.
    let bits = (unsafeBitCast(t, to: SIMD16<Int32>.self) &- 0x4B40_0000 &+ 127) &<< 23
    let y = p * unsafeBitCast(bits, to: SIMD16<Float>.self)
    return y.replacing(with: .infinity, where: x .> 88.72283935546875)
            .replacing(with: 0, where: x .< -87.33654022216797)
}

/// Standalone activation op: `output[i] = a(input[i])` for `i < count`, split over the pool when large.
/// `output` may equal `input` (in place) but must not otherwise overlap it.
func runActivation(_ a: Activation, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                   count: Int, pool: ThreadPool) {
    let tasks = count < 32_768 ? 1 : pool.threadCount
    let work = { (t: Int) in
        let lo = count * t / tasks, hi = count * (t + 1) / tasks
        if UnsafePointer(output) != input { (output + lo).update(from: input + lo, count: hi - lo) }
        applyActivation(a, output + lo, count: hi - lo)
    }
    if tasks == 1 { work(0) } else { pool.parallelFor(tasks, work) }
}
