/// What an engine does with NaN and ±inf in a submitted input.
public enum NonFiniteInputs: Sendable, Equatable {
    /// Refuse the batch with `SelfXitError.invalidArgument` naming the first such element
    /// (default). A camera frame with a NaN pixel is a broken frame, not a picture: answering
    /// it would give a confident-looking class for garbage.
    case refuse
    /// Run it: NaN and inf propagate through the kernels as in ONNX Runtime, and every result
    /// of such a sample has `nonFinite` set, `classIndex` −1 and `confidence` 0. Such samples
    /// are never answered by an early exit and never collected for exit building.
    case propagate
}

/// Index of the first NaN or ±inf in `x[0..<count]`, or nil when every value is finite.
///
/// One vectorised pass: `v − v` is 0 for every finite v and NaN for NaN and ±inf, and NaN is
/// sticky under addition, so an accumulator lane ends NaN exactly when it met a non-finite
/// value. Four accumulators keep the add chains independent; only when the sum shows NaN is
/// the range rescanned element by element to name the culprit.
func firstNonFinite(_ x: UnsafePointer<Float>, count: Int) -> Int? {
    let raw = UnsafeRawPointer(x)
    var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
    var i = 0
    while i + 64 <= count {
        let v0 = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        let v1 = raw.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD16<Float>.self)
        let v2 = raw.loadUnaligned(fromByteOffset: i * 4 + 128, as: SIMD16<Float>.self)
        let v3 = raw.loadUnaligned(fromByteOffset: i * 4 + 192, as: SIMD16<Float>.self)
        a0 += v0 - v0
        a1 += v1 - v1
        a2 += v2 - v2
        a3 += v3 - v3
        i += 64
    }
    var tail: Float = 0
    while i < count { tail += x[i] - x[i]; i += 1 }
    let total = ((a0 + a1) + (a2 + a3)).sum() + tail
    guard total.isNaN else { return nil }
    for k in 0..<count where !x[k].isFinite { return k }
    return nil
}

/// "NaN", "+inf" or "-inf".
func nonFiniteName(_ v: Float) -> String { v.isNaN ? "NaN" : (v > 0 ? "+inf" : "-inf") }

extension Engine {
    /// Checks a batch as `submit` will — batch size, length, and (unless
    /// `nonFiniteInputs` is `.propagate`) that every value is finite — without running it.
    /// Lets a caller that queues work (the C ABI's sx_submit_async) refuse a bad batch at once.
    public func checkInput(_ input: UnsafeBufferPointer<Float>, batch: Int) throws {
        try validate(input, batch: batch)
    }

    /// Refuses a batch holding a NaN or ±inf (when `options.nonFiniteInputs` is `.refuse`),
    /// naming the first one's sample and element. One pass over the input.
    func refuseNonFinite(_ input: UnsafeBufferPointer<Float>, batch: Int) throws {
        guard options.nonFiniteInputs == .refuse, let base = input.baseAddress else { return }
        let n = inputCount
        // The whole batch is scanned in one go (the common case: all finite); the sample is
        // found only after a hit.
        guard let index = firstNonFinite(base, count: batch * n) else { return }
        throw SelfXitError.invalidArgument(
            "input sample \(index / n), element \(index % n) is \(nonFiniteName(base[index])) "
                + "(non-finite inputs are refused unless the engine option non_finite_inputs / nonFiniteInputs is set to propagate)")
    }

    /// Per sample, whether its input holds a NaN or ±inf; nil when none does (or when
    /// non-finite inputs are refused, which `validate` has already done).
    func nonFiniteSamples(_ input: UnsafeBufferPointer<Float>, batch: Int) -> [Bool]? {
        guard options.nonFiniteInputs == .propagate, let base = input.baseAddress else { return nil }
        let n = inputCount
        guard firstNonFinite(base, count: batch * n) != nil else { return nil }
        return (0..<batch).map { firstNonFinite(base + $0 * n, count: n) != nil }
    }
}

/// Whether every value of `values` is finite (a probability row; short).
func allFinite(_ values: UnsafeBufferPointer<Float>) -> Bool {
    var acc: Float = 0
    for v in values { acc += v - v }
    return !acc.isNaN
}
