import Foundation
import SelfXit

/// What `selfxit build` measures for `selfxit report` beyond the bundle's own build report,
/// written beside the bundle as `<bundle>.json` (the sidecar). The bundle stays the library's
/// format; the sidecar names the bundle's bytes (FNV-1a) so a report never mixes a sidecar
/// with another build's bundle.
struct ReportData: Codable {
    /// One operating point of one exit used alone: every sample whose calibrated confidence
    /// at this exit is ≥ threshold leaves there, the others run the full model.
    struct OperatingPoint: Codable {
        var threshold: Double
        /// Share of samples leaving at the exit, agreement with the full model among them,
        /// agreement over all samples, and mean FLOPs per sample relative to the full model.
        var hitRate: Double, agreementOnHits: Double, agreement: Double, flopsFraction: Double
    }
    struct ExitCurve: Codable {
        var candidateIndex: Int
        var tensor: String
        var active: Bool
        /// The build's threshold (+∞ when out of service) and the point it gives.
        var threshold: Double
        var chosen: OperatingPoint?
        var points: [OperatingPoint]
    }
    /// The cascade of one build (tolerance) measured on the evaluation frames.
    struct CascadePoint: Codable {
        var tolerance: Double
        var activeExits: [Int]
        var thresholds: [Double]
        var agreement: Double
        var flopsFraction: Double
        /// Share of samples answered by each active exit (same order), and by the full model.
        var exitShares: [Double]
        var fullModelShare: Double
        /// The build's own held-out numbers (its test split of the collected samples).
        var buildTestAgreement: Double
        var buildTestFLOPsRatio: Double
        var buildSeconds: Double
    }
    var format = 1
    var model: String
    var modelFLOPs: Int
    var bundleFNV1a: String
    var frames: Int
    var collected: Int
    var evaluated: Int
    /// "held-out frames" (not collected) or "collected frames" (in-sample, when every frame was collected).
    var evaluation: String
    var tolerance: Double
    var candidates: [ExitCandidateInfo]
    var build: ExitBuildReport
    var curves: [ExitCurve]
    var tolerances: [CascadePoint]
}

func fnv1a64Hex(_ bytes: Data) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    return String(format: "%016llx", hash)
}

/// Every trained exit's prediction and the full model's answer on a set of samples
/// (`Engine.analyze`), and the operating points derived from them.
struct Analysis {
    /// [exit][sample]
    var confidence: [[Float]], predicted: [[Int]]
    var backbone: [Int]
    var count: Int { backbone.count }

    init(exits: Int) {
        confidence = Array(repeating: [], count: exits)
        predicted = Array(repeating: [], count: exits)
        backbone = []
    }

    mutating func append(_ results: [ExitAnalysis]) {
        for sample in results {
            backbone.append(sample.backboneClass)
            for (e, prediction) in sample.exits.enumerated() where e < confidence.count {
                confidence[e].append(prediction.classIndex < 0 ? -1 : prediction.confidence)
                predicted[e].append(prediction.classIndex)
            }
        }
    }

    /// Exit `e` used alone at `threshold` (exit FLOPs: backbone up to it plus its head; the
    /// others also run the rest of the backbone).
    func point(exit e: Int, threshold: Double, flopsBefore: Int, headFLOPs: Int, flopsAfter: Int, modelFLOPs: Int) -> ReportData.OperatingPoint {
        var hits = 0, agree = 0
        for s in 0..<count where confidence[e][s] >= 0 && Double(confidence[e][s]) >= threshold {
            hits += 1
            if predicted[e][s] == backbone[s] { agree += 1 }
        }
        let n = Double(max(count, 1))
        let hitRate = Double(hits) / n
        let flops = Double(flopsBefore + headFLOPs) + (1 - hitRate) * Double(flopsAfter)
        return .init(threshold: threshold, hitRate: hitRate, agreementOnHits: hits == 0 ? 1 : Double(agree) / Double(hits),
                     agreement: 1 - Double(hits - agree) / n, flopsFraction: flops / Double(max(modelFLOPs, 1)))
    }

    /// The cascade: each sample leaves at the first active exit (in depth order) confident
    /// enough, paying the backbone up to it and every active head it passed.
    func cascade(active: [(exit: Int, threshold: Double, flopsBefore: Int, headFLOPs: Int)], modelFLOPs: Int)
        -> (agreement: Double, flopsFraction: Double, shares: [Double], fullShare: Double) {
        var agree = 0, flops = 0.0
        var counts = [Int](repeating: 0, count: active.count), full = 0
        for s in 0..<count {
            var heads = 0, answered = false
            for (position, a) in active.enumerated() {
                heads += a.headFLOPs
                if confidence[a.exit][s] >= 0, Double(confidence[a.exit][s]) >= a.threshold {
                    counts[position] += 1
                    flops += Double(a.flopsBefore + heads)
                    if predicted[a.exit][s] == backbone[s] { agree += 1 }
                    answered = true
                    break
                }
            }
            if !answered {
                full += 1
                flops += Double(modelFLOPs + heads)
                agree += 1
            }
        }
        let n = Double(max(count, 1))
        return (Double(agree) / n, flops / n / Double(max(modelFLOPs, 1)), counts.map { Double($0) / n }, Double(full) / n)
    }
}
