import XCTest
@testable import SelfXit

/// The warning-exit rule (issue 12 follow-up, `ExitPolicy.warningExits`): warning exits are chosen
/// on their own terms — any trained exit finishing before the full model, the n-th warning exit
/// allowed W/2^n · N false warnings on validation (Eq. 3's split), the subset that warns of the
/// most watched frames.
final class WarningExitTests: XCTestCase {
    // 400 validation frames, person (1) on the first 200. Four trained exits, depth order:
    //  0 (active): says person on 0..<100 at 0.9, falsely on 200, 201 at 0.6;
    //  1 (not active): person on 50..<190 at 0.8, falsely on 202 at 0.7 and 203 at 0.75;
    //  2: person on 60..<90 at 0.95 only (nothing exit 0 does not already warn of);
    //  3: person on every person frame at 0.99, never falsely — but attached so late that with
    //     the heads it finishes after the full model.
    static let n = 400
    static let teacher = (0..<n).map { $0 < 200 ? 1 : 0 }
    static func exit(_ person: Range<Int>, at c: Float, falsely: [(Int, Float)]) -> (confidence: [Float], predicted: [Int]) {
        var confidence = [Float](repeating: 0.99, count: n), predicted = [Int](repeating: 0, count: n)
        for f in person { predicted[f] = 1; confidence[f] = c }
        for (f, c) in falsely { predicted[f] = 1; confidence[f] = c }
        return (confidence, predicted)
    }
    static let exits = [exit(0..<100, at: 0.9, falsely: [(200, 0.6), (201, 0.6)]),
                        exit(50..<190, at: 0.8, falsely: [(202, 0.7), (203, 0.75)]),
                        exit(60..<90, at: 0.95, falsely: []),
                        exit(0..<200, at: 0.99, falsely: [])]
    static let costs = ExitCosts(headFLOPs: [10, 10, 10, 10], savedFLOPs: [800, 500, 400, 5], backboneFLOPs: 1000)

    func testWarningExitsAreChosenOnTheirOwnTermsWithinTheSplitBudget() {
        let confidence = Self.exits.map(\.confidence), predicted = Self.exits.map(\.predicted)
        // W = 1 %: 4 false warnings in all; 2 at the first warning exit, 1 at the second, 0.5 at the third.
        let chosen = ExitPolicy.warningExits(teacherClass: Self.teacher, confidence: confidence, predicted: predicted, watchedClass: 1,
                                             budget: 0.01, active: [0], costs: Self.costs)
        // Exit 3 finishes after the full model (995 + heads ≥ 1000): never warns. Exit 2 adds no
        // warned frame: it takes no position. Exit 1 warns though it is not active.
        XCTAssertEqual(chosen, [0: 0.6, 1: 0.75], "exit 0 first (2 false warnings allowed), exit 1 second (1 allowed)")
        // The cascade's validation false warnings: at most W · N (= 4) whatever the overlap.
        let falseWarnings = Set(chosen.flatMap { e, t in (0..<Self.n).filter { predicted[e][$0] == 1 && confidence[e][$0] >= t && Self.teacher[$0] == 0 } })
        XCTAssertEqual(falseWarnings, [200, 201, 203])
        XCTAssertLessThanOrEqual(Double(falseWarnings.count), 0.01 * Double(Self.n))
        // Attached earlier (finishing in time), the last exit joins at the third position (no
        // false warning: fits 0.5); exits 0 and 1 stay, as they warn earlier of most frames.
        let earlier = ExitCosts(headFLOPs: [10, 10, 10, 10], savedFLOPs: [800, 500, 400, 100], backboneFLOPs: 1000)
        XCTAssertEqual(ExitPolicy.warningExits(teacherClass: Self.teacher, confidence: confidence, predicted: predicted, watchedClass: 1,
                                               budget: 0.01, active: [0], costs: earlier), [0: 0.6, 1: 0.75, 3: 0.99])
        // Without costs every exit is in time and none is earlier: the one exit that warns of all.
        XCTAssertEqual(ExitPolicy.warningExits(teacherClass: Self.teacher, confidence: confidence, predicted: predicted, watchedClass: 1,
                                               budget: 0.01, active: [0], costs: nil), [3: 0.99])
        // A tighter budget (0.25 %: 0.5 false warning at the first exit): none may warn falsely.
        let tight = ExitPolicy.warningExits(teacherClass: Self.teacher, confidence: confidence, predicted: predicted, watchedClass: 1,
                                            budget: 0.0025, active: [0], costs: Self.costs)
        XCTAssertEqual(tight, [0: 0.9, 1: 0.8])
        // No frame of the class on validation: no warning exit.
        XCTAssertEqual(ExitPolicy.warningExits(teacherClass: [Int](repeating: 0, count: Self.n), confidence: confidence, predicted: predicted,
                                               watchedClass: 1, budget: 0.01, active: [0], costs: Self.costs), [:])
    }

    func testGuardsCoverWarningExitsAndLeaveTheSafetyRuleAlone() throws {
        let confidence = Self.exits.map(\.confidence), predicted = Self.exits.map(\.predicted)
        // The warning budget option overrides the tolerance (5 % would let exit 0 warn at 0.6 at
        // every position and let more exits in).
        let watched = [WatchedClass(classIndex: 1, missBudget: 0.005, warningBudget: 0.01)]
        let guards = ExitPolicy.watchGuards(teacherClass: Self.teacher, confidence: confidence, predicted: predicted,
                                            candidateIndex: [10, 11, 12, 13], active: [0], watched: watched, tolerance: 0.05, costs: Self.costs)
        XCTAssertEqual(guards.map(\.candidateIndex), [10, 11])
        XCTAssertEqual(guards.map(\.warnThresholds), [[0.6], [0.75]])
        // Exit 0 hides 100 person frames at 0.99: 200 frames cannot certify 0.25 % → refused, as before.
        XCTAssertTrue(guards[0].refused)
        XCTAssertTrue(guards[1].refused, "a warning-only exit never answers")
        XCTAssertEqual(guards[1].falseWarningRate, [1.0 / 200])
        XCTAssertEqual(guards[1].warningRecall, [140.0 / 200])
        // A given warn threshold keeps the old behaviour: the active exits warn at it, no others.
        let given = ExitPolicy.watchGuards(teacherClass: Self.teacher, confidence: confidence, predicted: predicted,
                                           candidateIndex: [10, 11, 12, 13], active: [0],
                                           watched: [WatchedClass(classIndex: 1, missBudget: 0.005, warnThreshold: 0.5)],
                                           tolerance: 0.01, costs: Self.costs)
        XCTAssertEqual(given.map(\.candidateIndex), [10])
        XCTAssertEqual(given[0].warnThresholds, [0.5])
        // A warning budget outside (0, 1) is refused when the engine is made.
        var options = EngineOptions(threads: 1, maxBatch: 1)
        options.teacher = .detector(DetectorTeacher())
        for bad in [0.0, 1.0, -0.1, .nan] {
            options.watched = [WatchedClass(classIndex: 1, warningBudget: bad)]
            XCTAssertThrowsError(try Engine(contentsOf: PedestrianTests.model, options: options)) { error in
                guard case .invalidArgument(let message) = error as? SelfXitError else { return XCTFail("\(error)") }
                XCTAssert(message.contains("warning budget of watched class 1 must lie in (0, 1)"), message)
            }
        }
    }
}
