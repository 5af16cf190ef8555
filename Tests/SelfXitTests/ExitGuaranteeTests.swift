import Foundation
import XCTest
@testable import SelfXit

/// Thresholds with a guarantee (issue 16, point 4): the Clopper–Pearson bound and the rule that
/// keeps it within T/2^n, checked on a distribution whose true risk is known.
final class ExitGuaranteeTests: XCTestCase {
    func testClopperPearsonKnownValues() {
        // x = 0: 1 − δ^(1/n) exactly.
        XCTAssertEqual(BinomialBound.upper(successes: 0, trials: 100, delta: 0.05), 1 - pow(0.05, 0.01), accuracy: 1e-12)
        // 5/100 at 95 % one-sided: 0.1022534 (scipy.stats.beta.ppf(0.95, 6, 95)).
        XCTAssertEqual(BinomialBound.upper(successes: 5, trials: 100, delta: 0.05), 0.1022534, accuracy: 1e-6)
        // The bound solves P(X ≤ x; n, U) = δ.
        let u = BinomialBound.upper(successes: 12, trials: 2000, delta: 0.01)
        XCTAssertEqual(BinomialBound.cdf(12, 2000, u), 0.01, accuracy: 1e-9)
        XCTAssertEqual(BinomialBound.upper(successes: 7, trials: 7, delta: 0.05), 1)
        XCTAssertEqual(BinomialBound.upper(successes: 0, trials: 0, delta: 0.05), 1)
        // Lower bound: 95/100 at 95 % → 1 − U(5/100).
        XCTAssertEqual(BinomialBound.lower(successes: 95, trials: 100, delta: 0.05), 1 - 0.1022534, accuracy: 1e-6)
        // Monotone in x.
        var previous = 0.0
        for x in 0...20 {
            let value = BinomialBound.upper(successes: x, trials: 500, delta: 0.05)
            XCTAssertGreaterThan(value, previous)
            previous = value
        }
    }

    func testAllowedWrongMatchesTheBound() {
        let w = ExitPolicy.allowedWrong(frames: 2000, budget: 0.005, delta: 0.05)
        XCTAssertGreaterThanOrEqual(w, 0)
        XCTAssertLessThanOrEqual(BinomialBound.upper(successes: w, trials: 2000, delta: 0.05), 0.005)
        XCTAssertGreaterThan(BinomialBound.upper(successes: w + 1, trials: 2000, delta: 0.05), 0.005)
        // Too few frames for the budget: even no wrong frame is not enough evidence.
        XCTAssertEqual(ExitPolicy.allowedWrong(frames: 100, budget: 0.005, delta: 0.05), -1)
    }

    /// Confidence ~ U(0, 1), wrong with probability 0.3·(1 − c)²: the true risk of threshold θ is
    /// r(θ) = ∫θ¹ 0.3(1 − c)² dc = 0.1·(1 − θ)³. Over many seeded validation sets the guaranteed
    /// rule's θ has r(θ) > T/2 in at most δ of them; the point rule's in far more.
    func testGuaranteedRuleHoldsItsRiskOnAKnownDistribution() {
        let tolerance = 0.01, delta = 0.05, trials = 300, n = 2000
        let budget = tolerance / 2
        func risk(_ theta: Float) -> Double { theta.isInfinite ? 0 : 0.1 * pow(1 - Double(theta), 3) }
        var random = SeededRandom(seed: 42)
        var guaranteedOver = 0, pointOver = 0, tighter = 0
        for _ in 0..<trials {
            var confidence: [Float] = [], predicted: [Int] = []
            for _ in 0..<n {
                let c = random.uniform()
                confidence.append(Float(c))
                predicted.append(random.uniform() < 0.3 * (1 - c) * (1 - c) ? 1 : 0)
            }
            let backbone = Array(repeating: 0, count: n)
            let point = ExitPolicy.thresholds(confidence: confidence, predicted: predicted, backbone: backbone,
                                              tolerance: tolerance, maxPosition: 1)[0]
            // One exit: δ' = δ (one (exit, position) pair).
            let guaranteed = ExitPolicy.thresholds(confidence: confidence, predicted: predicted, backbone: backbone,
                                                   tolerance: tolerance, maxPosition: 1, rule: .guaranteed(delta: delta),
                                                   pairDelta: ExitPolicy.perPairDelta(delta, exits: 1))[0]
            XCTAssertGreaterThanOrEqual(guaranteed, point, "the guarantee never lowers a threshold")
            if guaranteed > point { tighter += 1 }
            if risk(guaranteed) > budget { guaranteedOver += 1 }
            if risk(point) > budget { pointOver += 1 }
            let bound = ExitPolicy.riskUpperBound(confidence: confidence, predicted: predicted, backbone: backbone,
                                                  threshold: guaranteed, delta: delta)
            XCTAssertLessThanOrEqual(bound, budget + 1e-12)
        }
        let guaranteedRate = Double(guaranteedOver) / Double(trials), pointRate = Double(pointOver) / Double(trials)
        print("guarantee check: risk > T/2 in \(guaranteedOver)/\(trials) (guaranteed) vs \(pointOver)/\(trials) (point)")
        XCTAssertLessThanOrEqual(guaranteedRate, delta + 0.03, "the guarantee fails more often than δ")
        XCTAssertGreaterThan(pointRate, 0.2, "the point rule should break its budget often (it has no margin)")
        XCTAssertGreaterThan(tighter, trials / 2)
    }

    func testSelectWithTheGuaranteedRule() throws {
        var random = SeededRandom(seed: 7)
        let n = 3000
        var confidence: [[Float]] = [[], []], predicted: [[Int]] = [[], []]
        for e in 0..<2 {
            for _ in 0..<n {
                let c = random.uniform()
                confidence[e].append(Float(c))
                predicted[e].append(random.uniform() < (e == 0 ? 0.3 : 0.1) * (1 - c) ? 1 : 0)
            }
        }
        let record = ExitValidationRecord(backboneClass: Array(repeating: 0, count: n), confidence: confidence, predictedClass: predicted)
        let costs = ExitCosts(headFLOPs: [10, 10], savedFLOPs: [900, 500], backboneFLOPs: 1000)
        let point = try ExitPolicy.select(record, costs: costs, tolerance: 0.02)
        let guaranteed = try ExitPolicy.select(record, costs: costs, tolerance: 0.02, rule: .guaranteed(delta: 0.05))
        XCTAssertLessThanOrEqual(guaranteed.result.flopsSaved, point.result.flopsSaved, "a guarantee costs speed, never gains it")
        XCTAssertGreaterThanOrEqual(guaranteed.result.agreement, point.result.agreement)
        for bad in [0.0, 1.0, -0.1, .nan] {
            XCTAssertThrowsError(try ExitPolicy.select(record, costs: costs, tolerance: 0.02, rule: .guaranteed(delta: bad))) { error in
                guard case SelfXitError.invalidArgument(let message) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(message.contains("delta"), message)
            }
        }
        XCTAssertThrowsError(try ExitBuildOptions(tolerance: 0.01).with { $0.thresholdRule = .guaranteed(delta: 1.5) }.validated())
    }

    func testMeasuredCostsAreInPicoseconds() {
        let costs = ExitCosts.measured(head: [1e-6, 2e-6], reach: [1e-4, 5e-4], backbone: 1e-3)
        XCTAssertEqual(costs.backboneFLOPs, 1_000_000_000)
        XCTAssertEqual(costs.headFLOPs, [1_000_000, 2_000_000])
        XCTAssertEqual(costs.savedFLOPs, [900_000_000, 500_000_000])
    }
}

extension ExitBuildOptions {
    func with(_ change: (inout ExitBuildOptions) -> Void) -> ExitBuildOptions {
        var copy = self
        change(&copy)
        return copy
    }
}
