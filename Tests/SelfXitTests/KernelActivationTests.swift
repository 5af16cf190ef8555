import XCTest
@testable import SelfXit

final class KernelActivationTests: XCTestCase {
    func testActivationsMatchReference() {
        var rng = SeededRandom(1)
        for count in [0, 1, 15, 16, 17, 100] {
            let x = rng.array(count).map { $0 * 12 }
            for a in allActivations {
                var y = x
                y.withUnsafeMutableBufferPointer { applyActivation(a, $0.baseAddress!, count: count) }
                assertClose(y, x.map { referenceActivation(a, Double($0)) }, tol: 1e-5, "\(a) \(count)")
            }
        }
    }

    func testExpExtremes() {
        var y: [Float] = [-1000, -90, -20, 0, 20, 88, 1000]
        y.withUnsafeMutableBufferPointer { applyActivation(.sigmoid, $0.baseAddress!, count: $0.count) }
        assertClose(y, [0, 0, 2.06e-9, 0.5, 1, 1, 1], tol: 1e-6)
    }
}
