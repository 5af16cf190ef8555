import XCTest
@testable import SelfXit

final class KernelElementwiseTests: XCTestCase {
    func reference(_ op: BinaryOp, _ a: [Float], _ aShape: [Int], _ b: [Float], _ bShape: [Int], _ out: [Int],
                   _ act: Activation) -> [Double] {
        let rank = out.count
        let aS = [Int](repeating: 1, count: rank - aShape.count) + aShape
        let bS = [Int](repeating: 1, count: rank - bShape.count) + bShape
        return (0..<out.reduce(1, *)).map { i in
            let idx = unflatten(i, out)
            let x = Double(a[flatten(zip(idx, aS).map { $1 == 1 ? 0 : $0 }, aS)])
            let y = Double(b[flatten(zip(idx, bS).map { $1 == 1 ? 0 : $0 }, bS)])
            let r: Double
            switch op { case .add: r = x + y; case .sub: r = x - y; case .mul: r = x * y; case .div: r = x / y }
            return referenceActivation(act, r)
        }
    }

    func testBroadcastCases() {
        var rng = SeededRandom(5)
        let cases: [([Int], [Int], [Int])] = [
            ([2, 3, 5, 7], [2, 3, 5, 7], [2, 3, 5, 7]),   // same shape
            ([2, 3, 5, 7], [], [2, 3, 5, 7]),             // scalar
            ([1], [4, 33], [4, 33]),                       // scalar on the left
            ([2, 16, 9, 9], [16, 1, 1], [2, 16, 9, 9]),   // squeeze-excite channel scale
            ([3, 16, 9, 9], [3, 16, 1, 1], [3, 16, 9, 9]),
            ([3, 1, 5], [4, 1], [3, 4, 5]),
            ([2, 1, 3, 1, 5, 1], [4, 1, 6, 1, 7], [2, 4, 3, 6, 5, 7]),
            ([64, 300, 40], [40], [64, 300, 40]),          // large: threaded
            ([2, 64, 56, 56], [64, 1, 1], [2, 64, 56, 56]),
            ([5, 1], [1, 70000], [5, 70000]),
        ]
        for (aShape, bShape, outShape) in cases {
            let a = rng.array(aShape.reduce(1, *))
            let b = rng.array(bShape.reduce(1, *)).map { $0 + ($0 >= 0 ? 0.5 : -0.5) }
            for op in [BinaryOp.add, .sub, .mul, .div] {
                let act: Activation = op == .add ? .relu : .none
                let kernel = BroadcastBinary(op, aShape: aShape, bShape: bShape, activation: act)
                XCTAssertEqual(kernel.outputShape, outShape)
                let expected = reference(op, a, aShape, b, bShape, outShape, act)
                for t in [1, 3] {
                    var y = [Float](repeating: .nan, count: expected.count)
                    withPointers([a, b], &y) { kernel.run(a: $0[0], b: $0[1], output: $1, pool: ThreadPool(threadCount: t)) }
                    assertClose(y, expected, "\(op) \(aShape) \(bShape) t \(t)")
                }
            }
        }
    }

    func testInPlaceAdd() {
        var rng = SeededRandom(6)
        var x = rng.array(1000)
        let b = rng.array(1000)
        let expected = zip(x, b).map { Double($0) + Double($1) }
        let kernel = BroadcastBinary(.add, aShape: [1000], bShape: [1000])
        b.withUnsafeBufferPointer { bp in
            x.withUnsafeMutableBufferPointer { kernel.run(a: $0.baseAddress!, b: bp.baseAddress!, output: $0.baseAddress!, pool: ThreadPool(threadCount: 2)) }
        }
        assertClose(x, expected)
    }

    func testStandaloneActivation() {
        var rng = SeededRandom(8)
        let x = rng.array(50_000).map { $0 * 8 }
        for a in allActivations {
            var y = [Float](repeating: .nan, count: x.count)
            withPointers([x], &y) { runActivation(a, input: $0[0], output: $1, count: x.count, pool: ThreadPool(threadCount: 2)) }
            assertClose(y, x.map { referenceActivation(a, Double($0)) }, tol: 1e-5, "\(a)")
        }
    }
}
