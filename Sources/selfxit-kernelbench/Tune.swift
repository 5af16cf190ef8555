// `selfxit-kernelbench tune [threads] [batch...]`: re-measures each planner decision on this
// machine. The thresholds in DirectConvPlan (direct vs packed, channel-major vs grid), Conv2D
// (channel-major packed products on small planes) and DepthwisePlan (in place vs padded copy)
// were measured on one CPU (an AVX-512 Zen 4); here every alternative the kernel configuration
// allows is built for each layer and timed, and the report says where the rule picks the slower.
import Foundation
import SelfXit

func runTuningCheck(layers: [(String, Conv2DGeometry)], threads: Int, batches: [Int], pool: ThreadPool) {
    let choices: [Conv2DKernel.PlanChoice] = [.packed(channelMajor: false), .packed(channelMajor: true),
                                             .direct(channelMajor: false), .direct(channelMajor: true), .packedSharingDirect]
    print("threads \(threads); kernel configuration: \(KernelConfigInfo.currentName)")
    print("layer".padding(toLength: 30, withPad: " ", startingAt: 0)
          + " batch  rule            ms   fastest         ms    verdict")
    var slower = 0, checked = 0, lost = 0.0, total = 0.0
    for batch in batches {
        for (name, g) in layers {
            let w = (0..<(g.outChannels * g.inChannels / g.groups * g.kernelHeight * g.kernelWidth)).map { Float($0 % 17) / 8 - 1 }
            let bias = [Float](repeating: 0.1, count: g.outChannels)
            let depthwise = g.groups == g.inChannels && g.groups == g.outChannels
            let candidates: [Conv2DKernel.PlanChoice] = depthwise ? [.depthwise(inPlace: true), .depthwise(inPlace: false)] : choices
            let rule = Conv2DKernel(geometry: g, weights: w, bias: bias, activation: .relu)
            var kernels = [rule.algorithmName: rule]
            for c in candidates {
                let k = Conv2DKernel(geometry: g, weights: w, bias: bias, activation: .relu, plan: c)
                if kernels[k.algorithmName] == nil { kernels[k.algorithmName] = k }
            }
            let inCount = batch * g.inChannels * g.inHeight * g.inWidth, outCount = batch * g.outChannels * g.outHeight * g.outWidth
            let x = UnsafeMutablePointer<Float>.allocate(capacity: inCount)
            x.initialize(repeating: 0.5, count: inCount)
            let y = UnsafeMutablePointer<Float>.allocate(capacity: outCount)
            y.initialize(repeating: 0.25, count: outCount)
            // The alternatives take turns (9 rounds, ≥ 20 ms of calls each), best per call kept: on a
            // shared machine each gets its share of the quiet moments.
            let runs = kernels.sorted(by: { $0.key < $1.key }).map { (algo, k) in
                (algo, k, UnsafeMutablePointer<Float>.allocate(capacity: max(1, threads * k.scratchFloatsPerThread)))
            }
            var times: [String: Double] = [:]
            // "+res" layers add the residual in place, as the memory plan lays it out (the
            // expansions of ResNet-50's bottlenecks; the grid and channel-major epilogues differ there).
            let residual = name.hasSuffix("+res") ? UnsafePointer(y) : nil
            for (_, k, scratch) in runs { k.run(input: x, residual: residual, output: y, batch: batch, scratch: scratch, pool: pool) }
            for _ in 0..<9 {
                for (algo, k, scratch) in runs {
                    var calls = 0
                    let start = DispatchTime.now().uptimeNanoseconds
                    var elapsed: UInt64 = 0
                    repeat {
                        k.run(input: x, residual: residual, output: y, batch: batch, scratch: scratch, pool: pool)
                        calls += 1
                        elapsed = DispatchTime.now().uptimeNanoseconds - start
                    } while elapsed < 20_000_000
                    times[algo] = min(times[algo] ?? .infinity, Double(elapsed) / 1e9 / Double(calls))
                }
            }
            for (_, _, scratch) in runs { scratch.deallocate() }
            x.deallocate(); y.deallocate()
            let ruleTime = times[rule.algorithmName]!
            let (best, bestTime) = times.min { $0.value < $1.value }!
            checked += 1
            total += ruleTime
            var verdict = kernels.count == 1 ? "only path" : "ok"
            // Under 3 % apart is within this machine's noise.
            if best != rule.algorithmName && ruleTime > bestTime * 1.03 {
                slower += 1
                lost += ruleTime - bestTime
                verdict = String(format: "RULE SLOWER +%.0f%%", (ruleTime / bestTime - 1) * 100)
            }
            print(name.padding(toLength: 30, withPad: " ", startingAt: 0)
                  + String(format: " %5d  %@ %8.3f   %@ %8.3f    %@", batch,
                           rule.algorithmName.padding(toLength: 12, withPad: " ", startingAt: 0), ruleTime * 1e3,
                           best.padding(toLength: 12, withPad: " ", startingAt: 0), bestTime * 1e3, verdict)
                  // Every alternative's time (the margin of an "ok" is otherwise not shown).
                  + "  [" + times.sorted(by: { $0.key < $1.key }).map { String(format: "%@ %.3f", $0.key, $0.value * 1e3) }
                      .joined(separator: ", ") + "]")
        }
    }
    print(String(format: "%d of %d decisions pick the slower path (> 3 %%); %.3f of %.3f ms lost (%.1f %%)",
                 slower, checked, lost * 1e3, total * 1e3, total > 0 ? 100 * lost / total : 0))
}
