import XCTest
@testable import SelfXit

final class KernelShapeOpTests: XCTestCase {
    func testSoftmax() {
        var rng = SeededRandom(11)
        for (rows, n) in [(1, 1), (3, 10), (2, 1000), (40, 1001)] {
            let x = rng.array(rows * n).map { $0 * 50 }
            var expected = [Double]()
            for r in 0..<rows {
                let row = x[(r * n)..<((r + 1) * n)].map(Double.init)
                let m = row.max()!
                let e = row.map { Foundation.exp($0 - m) }
                let s = e.reduce(0, +)
                expected += e.map { $0 / s }
            }
            var y = [Float](repeating: .nan, count: x.count)
            withPointers([x], &y) { softmax(input: $0[0], output: $1, rows: rows, n: n, pool: ThreadPool(threadCount: 2)) }
            assertClose(y, expected, tol: 1e-5, "\(rows)×\(n)")
        }
    }

    func testTranspose() {
        var rng = SeededRandom(12)
        let cases: [([Int], [Int])] = [([3, 4], [1, 0]), ([2, 3, 4, 5], [0, 2, 3, 1]), ([2, 3, 4, 5], [0, 1, 3, 2]),
                                       ([2, 1, 3, 4, 2, 3], [5, 3, 1, 0, 4, 2]), ([6, 7], [0, 1]), ([64, 100, 30], [1, 0, 2])]
        for (shape, perm) in cases {
            let x = rng.array(shape.reduce(1, *))
            let t = Transpose(shape: shape, perm: perm)
            let out = perm.map { shape[$0] }
            XCTAssertEqual(t.outputShape, out)
            let expected = (0..<x.count).map { i -> Double in
                let o = unflatten(i, out)
                var idx = [Int](repeating: 0, count: shape.count)
                for (k, p) in perm.enumerated() { idx[p] = o[k] }
                return Double(x[flatten(idx, shape)])
            }
            var y = [Float](repeating: .nan, count: x.count)
            withPointers([x], &y) { t.run(input: $0[0], output: $1, pool: ThreadPool(threadCount: 2)) }
            assertClose(y, expected, tol: 0, "\(shape) \(perm)")
        }
    }

    func testConcat() {
        var rng = SeededRandom(13)
        for (shapes, axis) in [([[2, 3, 4], [2, 5, 4], [2, 1, 4]], 1), ([[2, 3], [4, 3]], 0), ([[2, 3, 4], [2, 3, 1]], 2),
                               ([[4, 64, 30, 30], [4, 32, 30, 30]], 1)] {
            let xs = shapes.map { rng.array($0.reduce(1, *)) }
            let c = Concat(shapes: shapes, axis: axis)
            let out = c.outputShape
            let expected = (0..<out.reduce(1, *)).map { i -> Double in
                var idx = unflatten(i, out)
                var which = 0
                while idx[axis] >= shapes[which][axis] { idx[axis] -= shapes[which][axis]; which += 1 }
                return Double(xs[which][flatten(idx, shapes[which])])
            }
            var y = [Float](repeating: .nan, count: expected.count)
            withPointers(xs, &y) { c.run(inputs: $0, output: $1, pool: ThreadPool(threadCount: 2)) }
            assertClose(y, expected, tol: 0, "\(shapes) axis \(axis)")
        }
    }

    func testPad() {
        var rng = SeededRandom(14)
        for (shape, pads) in [([1, 2, 3, 4], [0, 0, 1, 2, 0, 0, 3, 1]), ([2, 3, 4, 5], [1, 0, 0, 0, 0, 2, 1, 1]),
                              ([2, 3, 6, 6], [0, 0, -1, 2, 0, 0, 1, -2]), ([2, 64, 60, 60], [0, 0, 1, 1, 0, 0, 1, 1])] {
            let x = rng.array(shape.reduce(1, *))
            let p = ConstantPad4D(shape: shape, pads: pads, value: 0.25)
            let out = p.outputShape
            let expected = (0..<out.reduce(1, *)).map { i -> Double in
                let idx = zip(unflatten(i, out), pads[0..<4]).map { $0 - $1 }
                return zip(idx, shape).allSatisfy { $0 >= 0 && $0 < $1 } ? Double(x[flatten(idx, shape)]) : 0.25
            }
            var y = [Float](repeating: .nan, count: expected.count)
            withPointers([x], &y) { p.run(input: $0[0], output: $1, pool: ThreadPool(threadCount: 2)) }
            assertClose(y, expected, tol: 0, "\(shape) \(pads)")
        }
    }
}
