/// One point of the exit-head search space (SelfXit §3.2).
///
/// A head maps a per-sample backbone activation `[C, H, W]` to `classes` logits:
///
///     [avg-pool inputPool×inputPool, stride inputPool]      (parameter-free; 1 = none)
///     per-channel standardisation (mean/std fitted on the training activations; fixed)
///     0…2 × conv(kernel 1|3, stride, channels, pad kernel/2) + ReLU
///     global average pooling, or flatten when `flatten` is set
///     0…2 × dense(hidden[i]) + ReLU
///     dense(classes)  → logits;  probabilities = softmax(logits / T)
///
/// Pooling and convolution output sizes use floor division (`H / p`; conv: `(H + 2·pad − k) / s + 1`).
struct ExitHeadArchitecture: Codable, Hashable, CustomStringConvertible {
    struct ConvLayer: Codable, Hashable {
        var kernel: Int   // 1 or 3
        var stride: Int   // 1, 2, 4 or 8
        var channels: Int // 1...512
    }
    /// Average-pooling window (= stride) applied to the input first; 1 = none.
    var inputPool: Int
    var convs: [ConvLayer]
    /// Flatten the (small) final feature map instead of global average pooling.
    var flatten: Bool
    var hidden: [Int]

    init(inputPool: Int = 1, convs: [ConvLayer] = [], flatten: Bool = false, hidden: [Int] = []) {
        self.inputPool = inputPool; self.convs = convs; self.flatten = flatten; self.hidden = hidden
    }

    var description: String {
        var parts: [String] = []
        if inputPool > 1 { parts.append("pool\(inputPool)") }
        for c in convs { parts.append("conv\(c.kernel)x\(c.kernel)/\(c.stride)→\(c.channels)") }
        parts.append(flatten ? "flatten" : "gap")
        for h in hidden { parts.append("fc\(h)") }
        parts.append("fc")
        return parts.joined(separator: " ")
    }

    /// Per-sample FLOPs (multiply-add = 2; pooling/GAP = 1 per input element, standardisation = 2
    /// per element, softmax ≈ 4 per class). 0 when the architecture does not fit the input.
    func flops(input: [Int], classes: Int) -> Int {
        guard let plan = try? ExitHeadPlan(self, inputShape: input, classes: classes) else { return 0 }
        return plan.flops
    }

    /// Trainable parameters (weights + biases). 0 when the architecture does not fit the input.
    func parameterCount(input: [Int], classes: Int) -> Int {
        guard let plan = try? ExitHeadPlan(self, inputShape: input, classes: classes) else { return 0 }
        return plan.parameterCount
    }
}

/// The resolved shapes and parameter layout of an architecture on one input shape.
///
/// Parameters live in one flat `[Float]`: per conv `W[outC][inC][k][k]` then `b[outC]`; per dense
/// `W[out][in]` then `b[out]`.
struct ExitHeadPlan {
    struct Conv {
        let inC, inH, inW, outC, outH, outW, kernel, stride, pad: Int
        let wOffset, bOffset: Int
        var colRows: Int { inC * kernel * kernel }
        var outPlane: Int { outH * outW }
        var inSize: Int { inC * inH * inW }
        var outSize: Int { outC * outH * outW }
        /// 1×1 stride 1: the input itself is the im2col matrix.
        var isPointwise: Bool { kernel == 1 && stride == 1 }
    }
    struct Dense { let inF, outF, wOffset, bOffset: Int; let relu: Bool }

    let architecture: ExitHeadArchitecture
    let inputShape: [Int]
    let classes: Int
    /// `[C, H/p, W/p]` after the input pool.
    let pooledC, pooledH, pooledW: Int
    let convs: [Conv]
    /// Floats per sample entering the dense stack (after GAP / flatten).
    let featureCount: Int
    let denses: [Dense]
    let parameterCount: Int
    let flops: Int

    var pooledSize: Int { pooledC * pooledH * pooledW }
    /// No convolutions and GAP: the whole prefix (pool, standardise, GAP) is parameter-free.
    var gapFirst: Bool { convs.isEmpty && !architecture.flatten }
    /// Floats per sample of the parameter-free prefix's output (what training iterates over).
    var stageInputSize: Int { gapFirst ? pooledC : pooledSize }

    init(_ a: ExitHeadArchitecture, inputShape: [Int], classes: Int) throws {
        func bad(_ m: String) -> SelfXitError { .invalidArgument("exit head \(a): \(m)") }
        guard inputShape.count == 3, inputShape.allSatisfy({ $0 > 0 }) else {
            throw bad("input shape must be [C, H, W] with positive sizes, got \(inputShape)")
        }
        // Bounded before any arithmetic on it: with C·H·W ≤ 2^32 (and the layer limits below)
        // every size, offset and FLOP count of the plan fits in Int. A shape read from a file
        // (an exit bundle) may hold anything, up to Int.max.
        var elements = 1
        for size in inputShape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: size)
            guard !overflow, product <= 1 << 32 else { throw bad("input shape \(inputShape) has more than 2^32 elements") }
            elements = product
        }
        guard classes >= 2, classes <= 4096 else { throw bad("needs 2...4096 classes, got \(classes)") }
        guard (1...64).contains(a.inputPool) else { throw bad("inputPool must be in 1...64, got \(a.inputPool)") }
        guard a.convs.count <= 2 else { throw bad("at most 2 conv layers, got \(a.convs.count)") }
        guard a.hidden.count <= 2 else { throw bad("at most 2 hidden dense layers, got \(a.hidden.count)") }
        architecture = a; self.inputShape = inputShape; self.classes = classes
        let (c0, h0, w0) = (inputShape[0], inputShape[1], inputShape[2])
        guard h0 / a.inputPool >= 1, w0 / a.inputPool >= 1 else {
            throw bad("inputPool \(a.inputPool) is larger than the \(h0)×\(w0) input")
        }
        pooledC = c0; pooledH = h0 / a.inputPool; pooledW = w0 / a.inputPool
        var flops = a.inputPool > 1 ? c0 * h0 * w0 : 0
        flops += 2 * c0 * pooledH * pooledW
        var offset = 0
        var (c, h, w) = (pooledC, pooledH, pooledW)
        var convs: [Conv] = []
        for (i, layer) in a.convs.enumerated() {
            guard layer.kernel == 1 || layer.kernel == 3 else { throw bad("conv \(i) kernel must be 1 or 3, got \(layer.kernel)") }
            guard [1, 2, 4, 8].contains(layer.stride) else { throw bad("conv \(i) stride must be 1, 2, 4 or 8, got \(layer.stride)") }
            guard (1...512).contains(layer.channels) else { throw bad("conv \(i) channels must be in 1...512, got \(layer.channels)") }
            let pad = layer.kernel / 2
            let oh = (h + 2 * pad - layer.kernel) / layer.stride + 1, ow = (w + 2 * pad - layer.kernel) / layer.stride + 1
            let wCount = layer.channels * c * layer.kernel * layer.kernel
            let conv = Conv(inC: c, inH: h, inW: w, outC: layer.channels, outH: oh, outW: ow, kernel: layer.kernel,
                            stride: layer.stride, pad: pad, wOffset: offset, bOffset: offset + wCount)
            offset += wCount + layer.channels
            flops += 2 * conv.outSize * conv.colRows
            convs.append(conv)
            (c, h, w) = (layer.channels, oh, ow)
        }
        self.convs = convs
        if a.flatten {
            featureCount = c * h * w
        } else {
            featureCount = c
            flops += c * h * w
        }
        guard featureCount <= 1 << 16 else { throw bad("flatten gives \(featureCount) features (max 65536)") }
        var denses: [Dense] = []
        var inF = featureCount
        for (i, width) in (a.hidden + [classes]).enumerated() {
            guard (1...4096).contains(width) else { throw bad("dense layer \(i) width must be in 1...4096, got \(width)") }
            denses.append(Dense(inF: inF, outF: width, wOffset: offset, bOffset: offset + width * inF, relu: i < a.hidden.count))
            offset += width * inF + width
            flops += 2 * width * inF
            inF = width
        }
        flops += 4 * classes
        self.denses = denses
        parameterCount = offset
        self.flops = flops
    }
}
