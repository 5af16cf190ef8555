/// `y[n,c,·] = act(x[n,c,·] · scale[c] + shift[c])`: a BatchNormalization that could not be
/// folded into a convolution (its input is not a private Conv output).
///
/// Preconditions: `scale.count == shift.count == channels`; `input` and `output` hold
/// `batch · channels · plane` floats (they may be the same buffer).
func channelAffine(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, scale: [Float], shift: [Float],
                   batch: Int, channels: Int, plane: Int, activation: Activation, pool: ThreadPool) {
    concatChannelAffine(inputs: [(input, channels)], output: output, scale: scale, shift: shift,
                        batch: batch, plane: plane, activation: activation, pool: pool)
}

/// `y = act(concat(x₀, x₁, …) · scale[c] + shift[c])` along the channel axis, in one pass: a
/// Concat whose only reader is a BatchNormalization (+ ReLU) — DenseNet's `norm1` on the
/// concatenation before every dense layer — without writing the concatenation first and reading it
/// back (a copy and an affine pass over up to 1 000 channels before each layer, DenseNet-121).
///
/// Preconditions: `inputs[i]` is `(pointer, channels)` with `batch · channels · plane` floats;
/// the channels add up to `scale.count == shift.count`; `output` holds `batch · Σ channels · plane`
/// floats and aliases no input unless there is one input (then it may be that input).
func concatChannelAffine(inputs: [(UnsafePointer<Float>, Int)], output: UnsafeMutablePointer<Float>,
                         scale: [Float], shift: [Float], batch: Int, plane: Int, activation: Activation, pool: ThreadPool) {
    let channels = scale.count
    let planes = batch * channels
    // Per output channel: which input holds it and its channel there.
    var source = [(input: Int, channel: Int)]()
    source.reserveCapacity(channels)
    for (i, (_, count)) in inputs.enumerated() { for c in 0..<count { source.append((i, c)) } }
    let chunks = planes * plane >= 1 << 15 ? pool.threadCount : 1
    source.withUnsafeBufferPointer { source in
        scale.withUnsafeBufferPointer { scale in
            shift.withUnsafeBufferPointer { shift in
                pool.parallelFor(chunks) { chunk in
                    for index in slice(planes, chunk, chunks) {
                        let (n, channel) = index.quotientAndRemainder(dividingBy: channels)
                        let (i, c) = source[channel]
                        let x = inputs[i].0 + (n * inputs[i].1 + c) * plane, y = output + index * plane
                        affinePlane(x, y, count: plane, scale[channel], shift[channel], relu: activation == .relu)
                        if activation != .relu { applyActivation(activation, y, count: plane) }
                    }
                }
            }
        }
    }
}

/// `y[i] = x[i] · a + b` (then `max(·, 0)` with `relu`, NaN kept as ONNX Runtime's Relu does) on
/// 16 lanes at a time.
@inline(__always)
private func affinePlane(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, _ a: Float, _ b: Float, relu: Bool) {
    let va = SIMD16<Float>(repeating: a), vb = SIMD16<Float>(repeating: b)
    let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
    var i = 0
    while i + 16 <= count {
        var v = rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) * va + vb
        if relu { v = v.replacing(with: 0, where: v .< 0) }
        ry.storeBytes(of: v, toByteOffset: i * 4, as: SIMD16<Float>.self)
        i += 16
    }
    while i < count {
        let v = x[i] * a + b
        y[i] = relu && v < 0 ? 0 : v
        i += 1
    }
}
