// Times conv layers of ResNet-18 (width 64, 28×28 input) and MobileNetV2 depthwise layers.
// Usage: selfxit-kernelbench [r50] [threads] [batch...]   (defaults: 2 threads, batches 1 and 32;
// `r50`: ResNet-50's bottleneck layers at 224×224 instead, "+res" ones adding a residual in place)
//        selfxit-kernelbench tune [threads] [batch...]   re-measures every planner decision on
// ResNet-18/50, MobileNetV2, EfficientNet, RegNetY and ResNeXt layers (Tune.swift); SELFXIT_GEMM_ISA
// picks the config; `tune grouped ...` the grouped layers alone.
import ArgumentParser
import Foundation
import SelfXit

struct KernelBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selfxit-kernelbench",
        abstract: "Time ResNet-18 (width 64, 28×28) and MobileNetV2 conv layers, or ResNet-50's bottleneck layers at 224×224 (r50): ms and GFLOPS.",
        usage: "selfxit-kernelbench [r50|dn|dw|pw|tune [grouped]] [min|cold] [grid|ctd|packed|copy|inplace] [threads] [batch...]")

    @Argument(help: ArgumentHelp("[r50] [threads] [batch...]: r50 picks ResNet-50's layers; then the thread count (default 2) and batch sizes (default 1 32).", valueName: "r50|threads|batch"))
    var words: [String] = []

    var resnet50: Bool { words.contains("r50") }
    var densenet: Bool { words.contains("dn") }
    /// `pw`: MobileNetV2's 1×1 projections (more inputs than outputs, 16–160 outputs) and its stem.
    var projections: Bool { words.contains("pw") }
    var tune: Bool { words.contains("tune") }
    /// `dw`: the depthwise layers of EfficientNet-B0, MobileNetV3-Large and MobileNetV2 (with
    /// their activations: SiLU, HardSwish / ReLU, ReLU6).
    var depthwise: Bool { words.contains("dw") }
    /// With `tune`: only the grouped layers (RegNetY, ResNeXt).
    var grouped: Bool { words.contains("grouped") }
    /// `min`: the fastest single call instead of best-of-5 means (a shared, loaded machine: a
    /// call that ran without being preempted).
    var fastestCall: Bool { words.contains("min") }
    /// `cold`: each call runs a different copy of the layer (48 MB of weights in all, round
    /// robin), so its weights come from memory as in a whole model at batch 1; the median call.
    var coldWeights: Bool { words.contains("cold") }
    /// `grid` / `packed`: force the direct product on the grid / the packed GEMM (experiments).
    var forced: Conv2DKernel.PlanChoice {
        words.contains("grid") ? .direct(channelMajor: false) : words.contains("ctd") ? .direct(channelMajor: true)
            : words.contains("packed") ? .packed(channelMajor: nil) : words.contains("copy") ? .depthwise(inPlace: false)
            : words.contains("inplace") ? .depthwise(inPlace: true) : .rule
    }
    static let names: Set<String> = ["r50", "dn", "dw", "pw", "tune", "grouped", "min", "cold", "grid", "ctd", "packed", "copy", "inplace"]
    var numbers: [Int] { words.filter { !Self.names.contains($0) }.compactMap { Int($0) } }

    func validate() throws {
        for word in words where !Self.names.contains(word) {
            guard let value = Int(word), value >= 1 else {
                throw ValidationError("'\(word)' is neither a word (\(Self.names.sorted().joined(separator: ", "))) nor a positive number (threads, then batch sizes)")
            }
        }
    }
}

let command = KernelBenchCommand.parseOrExit()

func geometry(_ c: Int, _ h: Int, _ oc: Int, k: Int, s: Int, groups: Int = 1) -> Conv2DGeometry {
    let pad = k / 2
    let o = (h + 2 * pad - k) / s + 1
    return Conv2DGeometry(inChannels: c, inHeight: h, inWidth: h, outChannels: oc, outHeight: o, outWidth: o,
                          kernelHeight: k, kernelWidth: k, strideH: s, strideW: s, padTop: pad, padLeft: pad, groups: groups)
}

let resnet50Layers: [(String, Conv2DGeometry)] = [
    ("r50 l1 1x1 256→64 56", geometry(256, 56, 64, k: 1, s: 1)),
    ("r50 l1 3x3 64→64 56", geometry(64, 56, 64, k: 3, s: 1)),
    ("r50 l1 1x1 64→256 56 +res", geometry(64, 56, 256, k: 1, s: 1)),
    ("r50 l1 1x1 64→256 56", geometry(64, 56, 256, k: 1, s: 1)),
    ("r50 l2 3x3 s2 128 56", geometry(128, 56, 128, k: 3, s: 2)),
    ("r50 l2 1x1 s2 256→512 56", geometry(256, 56, 512, k: 1, s: 2)),
    ("r50 l2 1x1 512→128 28", geometry(512, 28, 128, k: 1, s: 1)),
    ("r50 l2 3x3 128→128 28", geometry(128, 28, 128, k: 3, s: 1)),
    ("r50 l2 1x1 128→512 28 +res", geometry(128, 28, 512, k: 1, s: 1)),
    ("r50 l3 1x1 1024→256 14", geometry(1024, 14, 256, k: 1, s: 1)),
    ("r50 l3 3x3 256→256 14", geometry(256, 14, 256, k: 3, s: 1)),
    ("r50 l3 1x1 256→1024 14 +res", geometry(256, 14, 1024, k: 1, s: 1)),
    ("r50 l4 3x3 512→512 7", geometry(512, 7, 512, k: 3, s: 1)),
    ("r50 l4 1x1 512→2048 7 +res", geometry(512, 7, 2048, k: 1, s: 1)),
    // The other stride-2 layers (layer3.0's and layer4.0's 3×3 and downsamples) and the stem.
    ("r50 l3 3x3 s2 256 28", geometry(256, 28, 256, k: 3, s: 2)),
    ("r50 l3 1x1 s2 512→1024 28", geometry(512, 28, 1024, k: 1, s: 2)),
    ("r50 l4 3x3 s2 512 14", geometry(512, 14, 512, k: 3, s: 2)),
    ("r50 l4 1x1 s2 1024→2048 14", geometry(1024, 14, 2048, k: 1, s: 2)),
    ("r50 stem 7x7 s2 3→64 224", geometry(3, 224, 64, k: 7, s: 2)),
]

/// MobileNetV2's 1×1 projections at 224×224 (ReLU here; the model has none after them) and its
/// stem (K 27: the stems of MobileNetV3, EfficientNet and RegNet are the same shape).
let projectionLayers: [(String, Conv2DGeometry)] = [
    ("mbv2 stem 3→32 3x3 s2 224", geometry(3, 224, 32, k: 3, s: 2)),
    ("mbv2 pw 32→16 112", geometry(32, 112, 16, k: 1, s: 1)),
    ("mbv2 pw 96→24 56", geometry(96, 56, 24, k: 1, s: 1)),
    ("mbv2 pw 144→24 56", geometry(144, 56, 24, k: 1, s: 1)),
    ("mbv2 pw 144→32 28", geometry(144, 28, 32, k: 1, s: 1)),
    ("mbv2 pw 192→32 28", geometry(192, 28, 32, k: 1, s: 1)),
    ("mbv2 pw 384→64 14", geometry(384, 14, 64, k: 1, s: 1)),
    ("mbv2 pw 576→96 14", geometry(576, 14, 96, k: 1, s: 1)),
    ("mbv2 pw 960→160 7", geometry(960, 7, 160, k: 1, s: 1)),
]

let resnet18Layers: [(String, Conv2DGeometry)] = [
    ("r18 stem 3→64 3x3 28", geometry(3, 28, 64, k: 3, s: 1)),
    ("r18 l1 64→64 3x3 28", geometry(64, 28, 64, k: 3, s: 1)),
    ("r18 l2 64→128 3x3 s2 28", geometry(64, 28, 128, k: 3, s: 2)),
    ("r18 l2 128→128 3x3 14", geometry(128, 14, 128, k: 3, s: 1)),
    ("r18 l2 down 1x1 s2 28", geometry(64, 28, 128, k: 1, s: 2)),
    ("r18 l3 128→256 3x3 s2 14", geometry(128, 14, 256, k: 3, s: 2)),
    ("r18 l3 256→256 3x3 7", geometry(256, 7, 256, k: 3, s: 1)),
    ("r18 l3 down 1x1 s2 14", geometry(128, 14, 256, k: 1, s: 2)),
    ("r18 l4 256→512 3x3 s2 7", geometry(256, 7, 512, k: 3, s: 2)),
    ("r18 l4 512→512 3x3 4", geometry(512, 4, 512, k: 3, s: 1)),
    ("r18 l4 down 1x1 s2 7", geometry(256, 7, 512, k: 1, s: 2)),
    ("mbv2 dw 32 3x3 112", geometry(32, 112, 32, k: 3, s: 1, groups: 32)),
    ("mbv2 dw 144 3x3 s2 56", geometry(144, 56, 144, k: 3, s: 2, groups: 144)),
    ("mbv2 pw 1x1 144→24 56", geometry(144, 56, 24, k: 1, s: 1)),
]

/// DenseNet-121's (torchvision, 224×224) layer shapes: the 7×7 stride-2 stem (ResNet-50's too),
/// each dense layer's 1×1 (K = 64 + 32·i → 128) and 3×3 128 → 32, and the transitions' 1×1.
let densenetLayers: [(String, Conv2DGeometry)] = [
    ("stem 7x7 s2 3→64 224", geometry(3, 224, 64, k: 7, s: 2)),
    ("dn b1 1x1 64→128 56", geometry(64, 56, 128, k: 1, s: 1)),
    ("dn b1 1x1 224→128 56", geometry(224, 56, 128, k: 1, s: 1)),
    ("dn b1 3x3 128→32 56", geometry(128, 56, 32, k: 3, s: 1)),
    ("dn t1 1x1 256→128 56", geometry(256, 56, 128, k: 1, s: 1)),
    ("dn b2 1x1 128→128 28", geometry(128, 28, 128, k: 1, s: 1)),
    ("dn b2 1x1 480→128 28", geometry(480, 28, 128, k: 1, s: 1)),
    ("dn b2 3x3 128→32 28", geometry(128, 28, 32, k: 3, s: 1)),
    ("dn t2 1x1 512→256 28", geometry(512, 28, 256, k: 1, s: 1)),
    ("dn b3 1x1 256→128 14", geometry(256, 14, 128, k: 1, s: 1)),
    ("dn b3 1x1 992→128 14", geometry(992, 14, 128, k: 1, s: 1)),
    ("dn b3 3x3 128→32 14", geometry(128, 14, 32, k: 3, s: 1)),
    ("dn t3 1x1 1024→512 14", geometry(1024, 14, 512, k: 1, s: 1)),
    ("dn b4 1x1 512→128 7", geometry(512, 7, 128, k: 1, s: 1)),
    ("dn b4 1x1 992→128 7", geometry(992, 7, 128, k: 1, s: 1)),
    ("dn b4 3x3 128→32 7", geometry(128, 7, 32, k: 3, s: 1)),
]

/// Every distinct depthwise shape of EfficientNet-B0, MobileNetV3-Large and MobileNetV2 at 224×224.
let depthwiseLayers: [(String, Conv2DGeometry)] = [
    ("effb0 dw 32 3x3 112", geometry(32, 112, 32, k: 3, s: 1, groups: 32)),
    ("effb0 dw 96 3x3 s2 112", geometry(96, 112, 96, k: 3, s: 2, groups: 96)),
    ("effb0 dw 144 3x3 56", geometry(144, 56, 144, k: 3, s: 1, groups: 144)),
    ("effb0 dw 144 5x5 s2 56", geometry(144, 56, 144, k: 5, s: 2, groups: 144)),
    ("effb0 dw 240 5x5 28", geometry(240, 28, 240, k: 5, s: 1, groups: 240)),
    ("effb0 dw 240 3x3 s2 28", geometry(240, 28, 240, k: 3, s: 2, groups: 240)),
    ("effb0 dw 480 3x3 14", geometry(480, 14, 480, k: 3, s: 1, groups: 480)),
    ("effb0 dw 480 5x5 14", geometry(480, 14, 480, k: 5, s: 1, groups: 480)),
    ("effb0 dw 672 5x5 14", geometry(672, 14, 672, k: 5, s: 1, groups: 672)),
    ("effb0 dw 672 5x5 s2 14", geometry(672, 14, 672, k: 5, s: 2, groups: 672)),
    ("effb0 dw 1152 5x5 7", geometry(1152, 7, 1152, k: 5, s: 1, groups: 1152)),
    ("effb0 dw 1152 3x3 7", geometry(1152, 7, 1152, k: 3, s: 1, groups: 1152)),
    ("mnv3 dw 64 3x3 s2 112", geometry(64, 112, 64, k: 3, s: 2, groups: 64)),
    ("mnv3 dw 72 3x3 56", geometry(72, 56, 72, k: 3, s: 1, groups: 72)),
    ("mnv3 dw 72 5x5 s2 56", geometry(72, 56, 72, k: 5, s: 2, groups: 72)),
    ("mnv3 dw 120 5x5 28", geometry(120, 28, 120, k: 5, s: 1, groups: 120)),
    ("mnv3 hs dw 240 3x3 s2 28", geometry(240, 28, 240, k: 3, s: 2, groups: 240)),
    ("mnv3 hs dw 200 3x3 14", geometry(200, 14, 200, k: 3, s: 1, groups: 200)),
    ("mnv3 hs dw 672 5x5 s2 14", geometry(672, 14, 672, k: 5, s: 2, groups: 672)),
    ("mnv3 hs dw 960 5x5 7", geometry(960, 7, 960, k: 5, s: 1, groups: 960)),
    ("mbv2 dw 144 3x3 s2 56", geometry(144, 56, 144, k: 3, s: 2, groups: 144)),
    ("mbv2 dw 192 3x3 28", geometry(192, 28, 192, k: 3, s: 1, groups: 192)),
    ("mbv2 dw 576 3x3 14", geometry(576, 14, 576, k: 3, s: 1, groups: 576)),
    ("mbv2 dw 960 3x3 7", geometry(960, 7, 960, k: 3, s: 1, groups: 960)),
]

/// The layer's activation in its model (ReLU where the name does not say).
func activation(of name: String) -> Activation {
    if name.hasPrefix("effb0") { return .silu }
    if name.hasPrefix("mnv3 hs") { return .hardSwish }
    if name.hasPrefix("mbv2 dw") && command.depthwise { return .clip(min: 0, max: 6) }
    return .relu
}

let layers = command.resnet50 ? resnet50Layers : command.densenet ? densenetLayers : command.projections ? projectionLayers
    : command.depthwise ? depthwiseLayers : resnet18Layers
let args = command.numbers
let threads = args.first ?? 2
let batches = args.count > 1 ? Array(args.dropFirst()) : [1, 32]
let pool = try ThreadPool(threads: threads)

/// Best-of-5 mean seconds per call, each sample ≥ ~50 ms of calls.
func time(_ body: () -> Void) -> Double {
    body()
    if command.fastestCall {
        var best = Double.infinity
        let start = DispatchTime.now().uptimeNanoseconds
        var calls = 0
        repeat {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body(); calls += 1
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        } while calls < 2000 && DispatchTime.now().uptimeNanoseconds - start < 400_000_000
        return best
    }
    var best = Double.infinity
    for _ in 0..<5 {
        var calls = 0
        let start = DispatchTime.now().uptimeNanoseconds
        var elapsed: UInt64 = 0
        repeat {
            body(); calls += 1
            elapsed = DispatchTime.now().uptimeNanoseconds - start
        } while elapsed < 50_000_000
        best = min(best, Double(elapsed) / 1e9 / Double(calls))
    }
    return best
}

if command.tune {
    // The depthwise layers of the `dw` set and a 1×1 on a 7×7 plane besides the conv layers.
    let dwLayers = depthwiseLayers + [("effb0 pw 1x1 1152→192 7", geometry(1152, 7, 192, k: 1, s: 1))]
    // Grouped 3×3 layers: RegNetY-400MF (group width 8) and ResNeXt-50 32×4d (group widths 4–32):
    // the rule takes GroupedConvPlan where the configuration has `grouped_conv`; `packed` is im2col.
    let groupedLayers: [(String, Conv2DGeometry)] = [
        ("regnety g6 48 s2 112", geometry(48, 112, 48, k: 3, s: 2, groups: 6)),
        ("regnety g6 48 56", geometry(48, 56, 48, k: 3, s: 1, groups: 6)),
        ("regnety g13 104 s2 56", geometry(104, 56, 104, k: 3, s: 2, groups: 13)),
        ("regnety g13 104 28", geometry(104, 28, 104, k: 3, s: 1, groups: 13)),
        ("regnety g26 208 14", geometry(208, 14, 208, k: 3, s: 1, groups: 26)),
        ("regnety g55 440 7", geometry(440, 7, 440, k: 3, s: 1, groups: 55)),
        ("resnext g32 128 56", geometry(128, 56, 128, k: 3, s: 1, groups: 32)),
        ("resnext g32 256 s2 56", geometry(256, 56, 256, k: 3, s: 2, groups: 32)),
        ("resnext g32 512 14", geometry(512, 14, 512, k: 3, s: 1, groups: 32)),
        ("resnext g32 1024 7", geometry(1024, 7, 1024, k: 3, s: 1, groups: 32)),
    ]
    if command.grouped {  // `tune grouped [threads] [batch...]`: those layers alone
        runTuningCheck(layers: groupedLayers, threads: threads,
                       batches: args.count > 1 ? Array(args.dropFirst()) : [1, 8], pool: pool)
        Foundation.exit(0)
    }
    // ResNet-50's layer1 expansion is listed with and without its residual; the check takes the
    // one with it, as in the model.
    runTuningCheck(layers: resnet18Layers + resnet50Layers.filter { $0.0 != "r50 l1 1x1 64→256 56" } + dwLayers + groupedLayers,
                   threads: threads, batches: args.count > 1 ? Array(args.dropFirst()) : [1, 8], pool: pool)
    Foundation.exit(0)
}

print("threads \(threads)")
print("layer".padding(toLength: 28, withPad: " ", startingAt: 0) + " batch      ms   GFLOPS")
var totals = [Int: Double]()
for batch in batches {
    for (name, g) in layers {
        let w = (0..<(g.outChannels * g.inChannels / g.groups * g.kernelHeight * g.kernelWidth)).map { Float($0 % 17) / 8 - 1 }
        let copies = command.coldWeights ? max(2, min(512, (48 << 20) / (4 * w.count))) : 1
        let kernels = (0..<copies).map { _ in Conv2DKernel(geometry: g, weights: w, bias: [Float](repeating: 0.1, count: g.outChannels), activation: activation(of: name), plan: command.forced) }
        let kernel = kernels[0]
        let x = UnsafeMutablePointer<Float>.allocate(capacity: batch * g.inChannels * g.inHeight * g.inWidth)
        x.initialize(repeating: 0.5, count: batch * g.inChannels * g.inHeight * g.inWidth)
        let y = UnsafeMutablePointer<Float>.allocate(capacity: batch * g.outChannels * g.outHeight * g.outWidth)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, threads * kernel.scratchFloatsPerThread))
        // "+res": the residual summed in place into the output, as the memory plan lays it out.
        y.initialize(repeating: 0.25, count: batch * g.outChannels * g.outHeight * g.outWidth)
        let residual = name.hasSuffix("+res") ? UnsafePointer(y) : nil
        var t = 0.0
        if command.coldWeights {
            var calls: [Double] = []
            for round in 0..<max(3, 600 / copies) {
                for (i, k) in kernels.enumerated() {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    k.run(input: x, residual: residual, output: y, batch: batch, scratch: scratch, pool: pool)
                    if round > 0 || i >= copies / 2 { calls.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
                }
            }
            t = calls.sorted()[calls.count / 2]
        } else {
            t = time { kernel.run(input: x, residual: residual, output: y, batch: batch, scratch: scratch, pool: pool) }
        }
        let gflops = 2 * Double(g.macsPerSample * batch) / t / 1e9
        if !name.hasPrefix("mbv2") || command.depthwise || command.projections { totals[batch, default: 0] += t }
        print(name.padding(toLength: 28, withPad: " ", startingAt: 0)
              + String(format: " %5d %8.3f %8.1f  %@", batch, t * 1e3, gflops, kernel.algorithmName))
        x.deallocate(); y.deallocate(); scratch.deallocate()
    }
}
for batch in batches { print(String(format: "unique-layer sum, batch %d: %.3f ms", batch, totals[batch, default: 0] * 1e3)) }
