/// `y[n,c,·] = act(x[n,c,·] · scale[c] + shift[c])`: a BatchNormalization that could not be
/// folded into a convolution (its input is not a private Conv output).
///
/// Preconditions: `scale.count == shift.count == channels`; `input` and `output` hold
/// `batch · channels · plane` floats (they may be the same buffer).
func channelAffine(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, scale: [Float], shift: [Float],
                   batch: Int, channels: Int, plane: Int, activation: Activation, pool: ThreadPool) {
    let planes = batch * channels
    let chunks = planes * plane >= 1 << 15 ? pool.threadCount : 1
    pool.parallelFor(chunks) { chunk in
        for index in slice(planes, chunk, chunks) {
            let channel = index % channels
            let (a, b) = (scale[channel], shift[channel])
            let x = input + index * plane, y = output + index * plane
            for i in 0..<plane { y[i] = x[i] * a + b }
            applyActivation(activation, y, count: plane)
        }
    }
}
