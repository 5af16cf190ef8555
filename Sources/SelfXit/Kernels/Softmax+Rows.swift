import Foundation

/// Numerically stable softmax over each run of `length` consecutive floats.
/// Preconditions: `length` ≥ 1; buffers hold `rows × length` floats (they may alias).
func softmaxRows(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows: Int, length: Int) {
    for row in 0..<rows {
        let x = input + row * length, y = output + row * length
        var peak = -Float.infinity
        for i in 0..<length { peak = max(peak, x[i]) }
        var sum: Float = 0
        for i in 0..<length {
            y[i] = expf(x[i] - peak)
            sum += y[i]
        }
        let scale = 1 / sum
        for i in 0..<length { y[i] *= scale }
    }
}
