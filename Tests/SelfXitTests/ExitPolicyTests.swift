import Foundation
import XCTest
@testable import SelfXit


/// A synthetic table: deeper exits are more accurate and more confident when right; confidences
/// are quantised to 1/`levels` so ties occur.
private func syntheticTable(exits m: Int, samples n: Int, seed: UInt64, levels: Int = 40)
    -> (ExitValidationRecord, ExitCosts) {
    var rng = SeededRandom(seed: seed)
    let classes = 10
    let backbone = (0..<n).map { _ in rng.int(0...(classes - 1)) }
    var confidence: [[Float]] = []
    var predicted: [[Int]] = []
    for e in 0..<m {
        let accuracy = 0.5 + 0.45 * Double(e + 1) / Double(m)
        var conf: [Float] = []
        var pred: [Int] = []
        for i in 0..<n {
            let right = rng.uniform() < accuracy
            pred.append(right ? backbone[i] : (backbone[i] + rng.int(1...(classes - 1))) % classes)
            let raw = right ? 0.3 + 0.7 * rng.uniform().squareRoot() : 0.1 + 0.8 * rng.uniform() * rng.uniform()
            conf.append(Float((raw * Double(levels)).rounded() / Double(levels)))
        }
        confidence.append(conf)
        predicted.append(pred)
    }
    let backboneFLOPs = 1_000_000
    let head = (0..<m).map { _ in rng.int(5_000...60_000) }
    let saved = (0..<m).map { e in backboneFLOPs * (m - e) / (m + 1) - rng.int(0...20_000) }
    return (ExitValidationRecord(backboneClass: backbone, confidence: confidence, predictedClass: predicted),
            ExitCosts(headFLOPs: head, savedFLOPs: saved, backboneFLOPs: backboneFLOPs))
}

/// The cascade, one sample at a time, straight from the definitions.
private func bruteCascade(_ r: ExitValidationRecord, _ c: ExitCosts, active: [Int], thresholds: [Float])
    -> ExitPolicy.CascadeResult {
    let n = r.sampleCount
    var exitCounts = Array(repeating: 0, count: active.count)
    var hits = exitCounts, misses = exitCounts, arrivals = exitCounts
    var final = 0, agree = 0, totalFLOPs = 0
    var k = 0.0
    for i in 0..<n {
        var flops = 0
        var leftAt = -1
        for (p, e) in active.enumerated() {
            arrivals[p] += 1
            flops += c.headFLOPs[e]
            if r.confidence[e][i] >= thresholds[p] && thresholds[p] != .infinity { leftAt = p; break }
        }
        if leftAt < 0 {
            final += 1
            agree += 1
            flops += c.backboneFLOPs
        } else {
            let e = active[leftAt]
            exitCounts[leftAt] += 1
            flops += c.backboneFLOPs - c.savedFLOPs[e]
            if r.predictedClass[e][i] == r.backboneClass[i] {
                hits[leftAt] += 1
                agree += 1
                k += Double(c.savedFLOPs[e] - c.headFLOPs[e])
            } else {
                misses[leftAt] += 1
                k -= Double(c.headFLOPs[e])
            }
        }
        totalFLOPs += flops
    }
    return ExitPolicy.CascadeResult(
        exitCounts: exitCounts, hits: hits, misses: misses, arrivals: arrivals, finalCount: final,
        agreement: Double(agree) / Double(n), meanFLOPs: Double(totalFLOPs) / Double(n), kScore: k,
        flopsSaved: Double(n * c.backboneFLOPs - totalFLOPs))
}

/// Eq. 3 straight from the definition: HR and CA as fractions, every candidate θ checked.
private func bruteThreshold(_ conf: [Float], _ pred: [Int], _ backbone: [Int], tolerance: Double, n: Int) -> Float {
    let count = Double(conf.count)
    let budget = tolerance / pow(2.0, Double(n))
    func holds(_ theta: Float) -> Bool {
        let hitIdx = conf.indices.filter { conf[$0] >= theta }
        if hitIdx.isEmpty { return true }
        let hr = Double(hitIdx.count) / count
        let ca = Double(hitIdx.filter { pred[$0] == backbone[$0] }.count) / Double(hitIdx.count)
        return hr * (1 - ca) <= budget + 1e-12
    }
    let candidates = Array(Set(conf)).sorted()
    // Lowest θ such that the condition holds at θ and at every observed θ' ≥ θ.
    for (j, theta) in candidates.enumerated() where candidates[j...].allSatisfy(holds) { return theta }
    return .infinity
}

private func subsets(_ m: Int) -> [[Int]] {
    (0..<(1 << m)).map { mask in (0..<m).filter { mask & (1 << $0) != 0 } }
}

/// Selection by brute force: thresholds by position, per-sample cascade, same tie rule.
private func bruteSelect(_ r: ExitValidationRecord, _ c: ExitCosts, tolerance: Double,
                         criterion: ExitPolicy.Criterion, accuracyGuard: Bool)
    -> (active: [Int], score: Double) {
    var best: [Int] = [], bestScore = 0.0
    for s in subsets(r.exitCount) where !s.isEmpty {
        let th = s.enumerated().map {
            ExitPolicy.threshold(confidence: r.confidence[$0.element], predicted: r.predictedClass[$0.element],
                                 backbone: r.backboneClass, tolerance: tolerance, position: $0.offset + 1)
        }
        let res = bruteCascade(r, c, active: s, thresholds: th)
        if accuracyGuard && res.agreement < 1 - tolerance - 1e-12 { continue }
        let score = criterion == .flopsSaved ? res.flopsSaved : res.kScore
        if score > bestScore || (score == bestScore && s.count < best.count) { best = s; bestScore = score }
    }
    return (best, bestScore)
}

private func score(_ r: ExitPolicy.CascadeResult, _ criterion: ExitPolicy.Criterion) -> Double {
    criterion == .flopsSaved ? r.flopsSaved : r.kScore
}

final class ExitPolicyTests: XCTestCase {
    // MARK: Eq. 3 thresholds

    /// 10 samples, confidences 0.95 … 0.2; wrong (pred ≠ backbone) at 0.8, 0.5 and 0.3, so the
    /// wrong count W(θ) at or above θ steps 0 → 1 (at 0.8) → 2 (at 0.5) → 3 (at 0.3).
    private let handConf: [Float] = [0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
    private let handPred = [1, 1, 1, 2, 1, 1, 2, 1, 2, 1]
    private let handBackbone = Array(repeating: 1, count: 10)

    private func handThreshold(_ t: Double, _ n: Int) -> Float {
        ExitPolicy.threshold(confidence: handConf, predicted: handPred, backbone: handBackbone, tolerance: t, position: n)
    }

    func testThresholdHandMadeTable() {
        // T = 0.2, n = 1: budget 0.1 → HR·(1−CA) = W/10 ≤ 0.1 → W ≤ 1 → lowest θ = 0.6.
        XCTAssertEqual(handThreshold(0.2, 1), 0.6)
        // n = 2 halves the budget: W ≤ 0.5 → W = 0 → θ = 0.85.
        XCTAssertEqual(handThreshold(0.2, 2), 0.85)
        // T = 0.4: n = 1 → W ≤ 2 → θ = 0.4; n = 2 → W ≤ 1 → θ = 0.6; n = 3 → W ≤ 0.5 → 0.85.
        XCTAssertEqual(handThreshold(0.4, 1), 0.4)
        XCTAssertEqual(handThreshold(0.4, 2), 0.6)
        XCTAssertEqual(handThreshold(0.4, 3), 0.85)
        // T = 0.6, n = 1: W ≤ 3 → every sample may exit → lowest observed confidence.
        XCTAssertEqual(handThreshold(0.6, 1), 0.2)
        // The table variant returns the same values per position.
        XCTAssertEqual(ExitPolicy.thresholds(confidence: handConf, predicted: handPred, backbone: handBackbone,
                                             tolerance: 0.4, maxPosition: 3), [0.4, 0.6, 0.85])
        // And the definition, evaluated naively, agrees.
        for t in [0.05, 0.2, 0.4, 0.6, 0.9] {
            for n in 1...4 {
                XCTAssertEqual(handThreshold(t, n), bruteThreshold(handConf, handPred, handBackbone, tolerance: t, n: n),
                               "T = \(t), n = \(n)")
            }
        }
    }

    func testThresholdAllCorrectAndAllWrong() {
        let conf: [Float] = [0.3, 0.9, 0.5, 0.7, 0.6, 0.45]
        let backbone = [0, 1, 2, 3, 4, 5]
        // All correct: the lowest observed confidence, whatever the budget.
        XCTAssertEqual(ExitPolicy.threshold(confidence: conf, predicted: backbone, backbone: backbone,
                                            tolerance: 0.01, position: 5), 0.3)
        // All wrong with T/2 < 1/N: never exits.
        let wrong = backbone.map { $0 + 1 }
        let never = ExitPolicy.threshold(confidence: conf, predicted: wrong, backbone: backbone, tolerance: 0.3, position: 1)
        XCTAssertEqual(never, .infinity)
        // All wrong but a budget of 2 samples (T/2·N = 0.35·6 = 2.1): the top two may exit.
        XCTAssertEqual(ExitPolicy.threshold(confidence: conf, predicted: wrong, backbone: backbone,
                                            tolerance: 0.7, position: 1), 0.7)
        // Empty input.
        XCTAssertEqual(ExitPolicy.threshold(confidence: [], predicted: [], backbone: [], tolerance: 0.5, position: 1),
                       .infinity)
    }

    func testThresholdTiesAndNaN() {
        // Two samples share the top confidence, one of them wrong: with a zero-sample budget the
        // whole tied group is excluded (θ = value exits both), so nothing can exit.
        let conf: [Float] = [0.9, 0.9, 0.5, 0.4]
        let pred = [1, 0, 1, 1]
        let backbone = [1, 1, 1, 1]
        XCTAssertEqual(ExitPolicy.threshold(confidence: conf, predicted: pred, backbone: backbone,
                                            tolerance: 0.1, position: 1), .infinity)
        // Budget of 1 sample (0.5/2·4 = 1): everything may exit.
        XCTAssertEqual(ExitPolicy.threshold(confidence: conf, predicted: pred, backbone: backbone,
                                            tolerance: 0.5, position: 1), 0.4)
        // NaN confidences never exit but still count in N (budget 0.25·5 = 1.25 → W ≤ 1).
        let withNaN: [Float] = [0.9, .nan, 0.8, 0.7, 0.6]
        XCTAssertEqual(ExitPolicy.threshold(confidence: withNaN, predicted: [1, 0, 0, 1, 0], backbone: [1, 1, 1, 1, 1],
                                            tolerance: 0.5, position: 1), 0.7)
    }

    func testThresholdMatchesDefinitionOnRandomTables() {
        var rng = SeededRandom(seed: 7)
        for trial in 0..<60 {
            let n = rng.int(1...60)
            let conf = (0..<n).map { _ in Float(rng.int(0...12)) / 12 }
            let backbone = (0..<n).map { _ in rng.int(0...2) }
            let pred = (0..<n).map { _ in rng.int(0...2) }
            let t = [0.01, 0.1, 0.3, 0.6, 0.95][trial % 5]
            let table = ExitPolicy.thresholds(confidence: conf, predicted: pred, backbone: backbone, tolerance: t, maxPosition: 4)
            for pos in 1...4 {
                XCTAssertEqual(table[pos - 1], bruteThreshold(conf, pred, backbone, tolerance: t, n: pos),
                               "trial \(trial), n = \(pos)")
            }
            // Thresholds never decrease with position (the budget halves).
            XCTAssertTrue(zip(table, table.dropFirst()).allSatisfy { $0 <= $1 })
        }
    }

    // MARK: Cascade

    func testCascadeMatchesPerSampleLoop() {
        for seed in UInt64(1)...6 {
            let (r, c) = syntheticTable(exits: 5, samples: 50 + 97 * Int(seed), seed: seed)
            var rng = SeededRandom(seed: seed &* 31)
            for _ in 0..<20 {
                let active = (0..<5).filter { _ in rng.uniform() < 0.6 }
                let thresholds: [Float] = active.map { e in
                    switch rng.int(0...3) {
                    case 0: return .infinity
                    case 1: return r.confidence[e][rng.int(0...(r.sampleCount - 1))]  // an observed value (ties)
                    default: return Float(rng.uniform())
                    }
                }
                let fast = ExitPolicy.cascade(r, costs: c, active: active, thresholds: thresholds)
                let slow = bruteCascade(r, c, active: active, thresholds: thresholds)
                XCTAssertEqual(fast.exitCounts, slow.exitCounts)
                XCTAssertEqual(fast.hits, slow.hits)
                XCTAssertEqual(fast.misses, slow.misses)
                XCTAssertEqual(fast.arrivals, slow.arrivals)
                XCTAssertEqual(fast.finalCount, slow.finalCount)
                XCTAssertEqual(fast.agreement, slow.agreement, accuracy: 1e-12)
                XCTAssertEqual(fast.meanFLOPs, slow.meanFLOPs, accuracy: 1e-6)
                XCTAssertEqual(fast.kScore, slow.kScore)
                XCTAssertEqual(fast.flopsSaved, slow.flopsSaved)
                XCTAssertEqual(fast.exitCounts.reduce(0, +) + fast.finalCount, r.sampleCount)
            }
        }
    }

    func testCascadeEmptyActiveSetIsTheBackbone() {
        let (r, c) = syntheticTable(exits: 3, samples: 70, seed: 3)
        let res = ExitPolicy.cascade(r, costs: c, active: [], thresholds: [])
        XCTAssertEqual(res.finalCount, 70)
        XCTAssertEqual(res.agreement, 1)
        XCTAssertEqual(res.meanFLOPs, Double(c.backboneFLOPs))
        XCTAssertEqual(res.kScore, 0)
        XCTAssertEqual(res.flopsSaved, 0)
    }

    func testCascadeHandExample() {
        // 4 samples, exits 0 and 1. Exit 0 fires on samples 0 (right) and 1 (wrong); exit 1 fires
        // on sample 2 (right) and would on 0, which already left. Sample 3 reaches the backbone.
        let r = ExitValidationRecord(backboneClass: [0, 1, 2, 3],
                                     confidence: [[0.9, 0.8, 0.1, 0.2], [0.95, 0.1, 0.7, 0.3]],
                                     predictedClass: [[0, 0, 2, 3], [0, 1, 2, 0]])
        let c = ExitCosts(headFLOPs: [10, 20], savedFLOPs: [700, 400], backboneFLOPs: 1000)
        let res = ExitPolicy.cascade(r, costs: c, active: [0, 1], thresholds: [0.75, 0.5])
        XCTAssertEqual(res.exitCounts, [2, 1])
        XCTAssertEqual(res.hits, [1, 1])
        XCTAssertEqual(res.misses, [1, 0])
        XCTAssertEqual(res.arrivals, [4, 2])
        XCTAssertEqual(res.finalCount, 1)
        XCTAssertEqual(res.agreement, 0.75)
        // FLOPs: s0, s1: 10 + 300; s2: 10 + 20 + 600; s3: 10 + 20 + 1000.
        XCTAssertEqual(res.meanFLOPs, Double(310 + 310 + 630 + 1030) / 4)
        XCTAssertEqual(res.flopsSaved, Double(4000 - 2280))
        // K = 1·(700 − 10) − 1·10 + 1·(400 − 20) = 1060.
        XCTAssertEqual(res.kScore, 1060)
    }

    // MARK: Eq. 4 selection

    func testSelectionMatchesBruteForce() throws {
        var checked = 0
        for m in 4...6 {
            for seed in UInt64(1)...4 {
                let (r, c) = syntheticTable(exits: m, samples: 50, seed: seed &* 100 &+ UInt64(m))
                for t in [0.05, 0.2, 0.5] {
                    for criterion in [ExitPolicy.Criterion.flopsSaved, .paperK] {
                        for guardOn in [true, false] {
                            let sel = try ExitPolicy.select(r, costs: c, tolerance: t, criterion: criterion,
                                                            accuracyGuard: guardOn)
                            let brute = bruteSelect(r, c, tolerance: t, criterion: criterion, accuracyGuard: guardOn)
                            let label = "m \(m) seed \(seed) T \(t) \(criterion) guard \(guardOn)"
                            XCTAssertEqual(sel.active, brute.active, label)
                            XCTAssertEqual(score(sel.result, criterion), brute.score, label)
                            XCTAssertEqual(sel.evaluatedSubsets, 1 << m)
                            // Thresholds are Eq. 3 by position in the active set.
                            for (p, e) in sel.active.enumerated() {
                                XCTAssertEqual(sel.thresholds[p], ExitPolicy.threshold(
                                    confidence: r.confidence[e], predicted: r.predictedClass[e],
                                    backbone: r.backboneClass, tolerance: t, position: p + 1))
                            }
                            // The reported result is the cascade of the reported configuration.
                            XCTAssertEqual(sel.result, bruteCascade(r, c, active: sel.active, thresholds: sel.thresholds))
                            // Eq. 3 keeps the agreement at or above 1 − T.
                            XCTAssertGreaterThanOrEqual(sel.result.agreement, 1 - t - 1e-12)
                            checked += 1
                        }
                    }
                }
            }
        }
        XCTAssertEqual(checked, 3 * 4 * 3 * 2 * 2)
    }

    func testKScoreAndFlopsSavedAgainstBruteForceOverAllSubsets() {
        let (r, c) = syntheticTable(exits: 5, samples: 50, seed: 99)
        let search = ExitPolicy.SubsetSearch(record: r, costs: c, tolerance: 0.2, criterion: .paperK, accuracyGuard: false)
        var scratch = ExitPolicy.CascadeEvaluator.Scratch(exits: 5, words: search.evaluator.wordCount)
        var offsets: [Int] = []
        for s in subsets(5) {
            let th = s.enumerated().map { search.thresholdTable[$0.element][$0.offset] }
            let brute = bruteCascade(r, c, active: s, thresholds: th)
            let (k, _) = search.evaluate(s, offsets: &offsets, scratch: &scratch)
            XCTAssertEqual(Double(k), brute.kScore, "\(s)")
            XCTAssertEqual(Double(search.evaluator.flopsSaved(active: s, scratch: scratch)), brute.flopsSaved, "\(s)")
            // Identity: saved = K + Σ misses·C2 − Σ pass-through·C1.
            var passThroughCost = 0.0, missCredit = 0.0
            for (p, e) in s.enumerated() {
                passThroughCost += Double(brute.arrivals[p] - brute.exitCounts[p]) * Double(c.headFLOPs[e])
                missCredit += Double(brute.misses[p]) * Double(c.savedFLOPs[e])
            }
            XCTAssertEqual(brute.flopsSaved, brute.kScore + missCredit - passThroughCost, "\(s)")
        }
    }

    func testCriteriaDifferOnExpensiveRarelyFiringExit() throws {
        // One exit that fires on 1 of 100 samples (correctly) but costs 1000 FLOPs for everyone:
        // K(S) = 1·(5000 − 1000) > 0 keeps it, the true saving 5000 − 100·1000 < 0 rejects it.
        let n = 100
        let conf: [Float] = [0.99] + Array(repeating: 0.1, count: n - 1)
        let backbone = Array(repeating: 0, count: n)
        let pred = [0] + Array(repeating: 1, count: n - 1)
        let r = ExitValidationRecord(backboneClass: backbone, confidence: [conf], predictedClass: [pred])
        let c = ExitCosts(headFLOPs: [1000], savedFLOPs: [5000], backboneFLOPs: 10000)
        let exact = try ExitPolicy.select(r, costs: c, tolerance: 0.1)
        let paper = try ExitPolicy.select(r, costs: c, tolerance: 0.1, criterion: .paperK)
        XCTAssertEqual(exact.active, [])
        XCTAssertEqual(exact.result.meanFLOPs, 10000)
        XCTAssertEqual(paper.active, [0])
        XCTAssertEqual(paper.thresholds, [0.99])
        XCTAssertEqual(paper.result.kScore, 4000)
        XCTAssertEqual(paper.result.flopsSaved, 5000 - 100_000)
    }

    func testAccuracyGuardNeverBindsWithEq3Thresholds() throws {
        for seed in UInt64(1)...5 {
            let (r, c) = syntheticTable(exits: 6, samples: 200, seed: seed &+ 500)
            for t in [0.02, 0.1, 0.3] {
                let on = try ExitPolicy.select(r, costs: c, tolerance: t, accuracyGuard: true)
                let off = try ExitPolicy.select(r, costs: c, tolerance: t, accuracyGuard: false)
                XCTAssertEqual(on, off)
                XCTAssertGreaterThanOrEqual(on.result.agreement, 1 - t)
            }
        }
    }

    func testAccuracyGuardBound() {
        // The guard itself: misses ≤ T·N.
        let (r, c) = syntheticTable(exits: 2, samples: 10, seed: 1)
        let search = ExitPolicy.SubsetSearch(record: r, costs: c, tolerance: 0.2, criterion: .flopsSaved, accuracyGuard: true)
        XCTAssertTrue(search.passesGuard(misses: 2))
        XCTAssertFalse(search.passesGuard(misses: 3))
        let off = ExitPolicy.SubsetSearch(record: r, costs: c, tolerance: 0.2, criterion: .flopsSaved, accuracyGuard: false)
        XCTAssertTrue(off.passesGuard(misses: 10))
    }

    func testHeuristicPath() throws {
        let (r, c) = syntheticTable(exits: 14, samples: 400, seed: 2024)
        for criterion in [ExitPolicy.Criterion.flopsSaved, .paperK] {
            let a = try ExitPolicy.select(r, costs: c, tolerance: 0.1, criterion: criterion)
            let b = try ExitPolicy.select(r, costs: c, tolerance: 0.1, criterion: criterion)
            XCTAssertEqual(a, b, "deterministic")
            XCTAssertLessThan(a.evaluatedSubsets, 1 << 14, "heuristic, not exhaustive")
            // At least as good as the best single exit (each at position 1).
            var bestSingle = 0.0
            for e in 0..<14 {
                let th = ExitPolicy.threshold(confidence: r.confidence[e], predicted: r.predictedClass[e],
                                              backbone: r.backboneClass, tolerance: 0.1, position: 1)
                let res = ExitPolicy.cascade(r, costs: c, active: [e], thresholds: [th])
                if res.agreement >= 1 - 0.1 { bestSingle = max(bestSingle, score(res, criterion)) }
            }
            XCTAssertGreaterThan(bestSingle, 0)
            XCTAssertGreaterThanOrEqual(score(a.result, criterion), bestSingle)
            // No better than the exhaustive optimum (2^14 subsets, forced).
            let full = try ExitPolicy.select(r, costs: c, tolerance: 0.1, criterion: criterion, maxExhaustiveExits: 14)
            XCTAssertEqual(full.evaluatedSubsets, 1 << 14)
            XCTAssertLessThanOrEqual(score(a.result, criterion), score(full.result, criterion))
            print("heuristic m=14 \(criterion): \(a.active) score \(score(a.result, criterion)) " +
                  "(exhaustive \(full.active) \(score(full.result, criterion))), \(a.evaluatedSubsets) evaluations")
        }
    }

    func testHeuristicOnSmallTablesIsNeverBetterThanExhaustive() throws {
        for seed in UInt64(1)...6 {
            let (r, c) = syntheticTable(exits: 6, samples: 80, seed: seed &+ 900)
            for criterion in [ExitPolicy.Criterion.flopsSaved, .paperK] {
                let h = try ExitPolicy.select(r, costs: c, tolerance: 0.2, criterion: criterion, maxExhaustiveExits: 0)
                let x = try ExitPolicy.select(r, costs: c, tolerance: 0.2, criterion: criterion)
                XCTAssertLessThanOrEqual(score(h.result, criterion), score(x.result, criterion))
                XCTAssertGreaterThanOrEqual(score(h.result, criterion), 0)
                XCTAssertEqual(h.result, bruteCascade(r, c, active: h.active, thresholds: h.thresholds))
            }
        }
    }

    // MARK: Invalid inputs

    func testInvalidInputsThrow() {
        let (r, c) = syntheticTable(exits: 3, samples: 20, seed: 5)
        func expectInvalid(_ record: ExitValidationRecord, _ costs: ExitCosts, tolerance: Double = 0.1,
                           _ label: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try ExitPolicy.select(record, costs: costs, tolerance: tolerance), label,
                                 file: file, line: line) { error in
                guard case SelfXitError.invalidArgument = error else {
                    return XCTFail("\(label): expected invalidArgument, got \(error)", file: file, line: line)
                }
            }
        }
        for t in [0, 1, -0.1, 1.5, .nan, .infinity, -.infinity] {
            expectInvalid(r, c, tolerance: t, "tolerance \(t)")
        }
        XCTAssertNoThrow(try ExitPolicy.select(r, costs: c, tolerance: 0.1))

        var conf = r.confidence
        conf[1].removeLast()
        expectInvalid(ExitValidationRecord(backboneClass: r.backboneClass, confidence: conf, predictedClass: r.predictedClass),
                      c, "ragged confidence")
        var pred = r.predictedClass
        pred[2].append(0)
        expectInvalid(ExitValidationRecord(backboneClass: r.backboneClass, confidence: r.confidence, predictedClass: pred),
                      c, "ragged predictions")
        expectInvalid(ExitValidationRecord(backboneClass: r.backboneClass, confidence: r.confidence,
                                           predictedClass: Array(r.predictedClass.dropLast())), c, "row count mismatch")
        expectInvalid(ExitValidationRecord(backboneClass: Array(r.backboneClass.dropLast()), confidence: r.confidence,
                                           predictedClass: r.predictedClass), c, "backbone length")
        expectInvalid(ExitValidationRecord(backboneClass: [], confidence: [[], [], []], predictedClass: [[], [], []]),
                      c, "no samples")
        expectInvalid(ExitValidationRecord(backboneClass: r.backboneClass, confidence: [], predictedClass: []),
                      ExitCosts(headFLOPs: [], savedFLOPs: [], backboneFLOPs: 10), "no exits")
        var nanConf = r.confidence
        nanConf[0][3] = .nan
        expectInvalid(ExitValidationRecord(backboneClass: r.backboneClass, confidence: nanConf, predictedClass: r.predictedClass),
                      c, "NaN confidence")
        expectInvalid(r, ExitCosts(headFLOPs: [1, 2], savedFLOPs: c.savedFLOPs, backboneFLOPs: c.backboneFLOPs), "short heads")
        expectInvalid(r, ExitCosts(headFLOPs: c.headFLOPs, savedFLOPs: [1, 2, 3, 4], backboneFLOPs: c.backboneFLOPs), "long saved")
        expectInvalid(r, ExitCosts(headFLOPs: [1, -2, 3], savedFLOPs: c.savedFLOPs, backboneFLOPs: c.backboneFLOPs), "negative head")
        expectInvalid(r, ExitCosts(headFLOPs: c.headFLOPs, savedFLOPs: [1, 2, c.backboneFLOPs + 1], backboneFLOPs: c.backboneFLOPs),
                      "saving above backbone")
        XCTAssertThrowsError(try ExitPolicy.select(r, costs: c, tolerance: 0.1, maxExhaustiveExits: -1))
    }

    // MARK: Performance

    func testSelectPerformanceTwelveExits() throws {
        let (r, c) = syntheticTable(exits: 12, samples: 2000, seed: 42, levels: 1000)
        let start = DispatchTime.now().uptimeNanoseconds
        let sel = try ExitPolicy.select(r, costs: c, tolerance: 0.1)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        print(String(format: "ExitPolicy.select m=12 N=2000: %.3f s, %d subsets, active %@, mean FLOPs %.0f of %d, agreement %.4f",
                     seconds, sel.evaluatedSubsets, "\(sel.active)", sel.result.meanFLOPs, c.backboneFLOPs,
                     sel.result.agreement))
        XCTAssertEqual(sel.evaluatedSubsets, 4096)
        XCTAssertLessThan(seconds, 5)
        XCTAssertFalse(sel.active.isEmpty)
    }
}
