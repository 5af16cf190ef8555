import XCTest
@testable import SelfXit

final class KernelGemmTests: XCTestCase {
    func testDenseVariants() {
        var rng = SeededRandom(3)
        // Up to 8 rows take the small-rows kernel (AVX-512): every row count, column tails of
        // 1–31 past whole 32-column blocks; 9 and more rows go to the packed `sx_sgemm`. One row
        // over a B of 2^18+ floats with K ≥ 64 a thread splits K (1×300×1000 and 1×390×700 at 2
        // and 3 threads, 1×130×2100 at 2; at 3 threads its columns).
        for (rows, k, n) in [(1, 7, 5), (1, 300, 1000), (1, 390, 700), (1, 130, 2100), (5, 64, 10), (37, 33, 70), (2, 40, 33), (3, 5, 47),
                             (4, 17, 64), (6, 9, 95), (7, 3, 16), (8, 129, 47), (9, 20, 17)] {
            let w = rng.array(k * n)
            for transposed in [false, true] {
                let biases: [GemmBias] = [.none, .scalar(0.3), .row(rng.array(n)), .full(rng.array(rows * n))]
                for bias in biases {
                    for act in [Activation.none, .relu] {
                        let alpha: Float = 0.5, beta: Float = 2
                        let kernel = DenseKernel(weights: w, k: k, n: n, transposed: transposed, alpha: alpha,
                                                 bias: bias, beta: beta, activation: act)
                        let a = rng.array(rows * k)
                        var expected = [Double](repeating: 0, count: rows * n)
                        for r in 0..<rows {
                            for j in 0..<n {
                                var s = 0.0
                                for c in 0..<k { s += Double(a[r * k + c]) * Double(transposed ? w[j * k + c] : w[c * n + j]) }
                                var c = 0.0
                                switch bias {
                                case .none: c = 0
                                case let .scalar(v): c = Double(v)
                                case let .row(v): c = Double(v[j])
                                case let .full(v): c = Double(v[r * n + j])
                                }
                                expected[r * n + j] = referenceActivation(act, Double(alpha) * s + Double(beta) * c)
                            }
                        }
                        for t in [1, 2, 3] {
                            var y = [Float](repeating: .nan, count: rows * n)
                            withPointers([a], &y) { kernel.run(input: $0[0], output: $1, rows: rows, pool: ThreadPool(threadCount: t)) }
                            assertClose(y, expected, "rows \(rows) k \(k) n \(n) \(transposed) \(bias) t \(t)")
                        }
                    }
                }
            }
        }
    }

    func referenceMatMul(_ a: [Float], _ aShape: [Int], _ b: [Float], _ bShape: [Int], _ outShape: [Int]) -> [Double] {
        let a2 = aShape.count == 1 ? [1] + aShape : aShape, b2 = bShape.count == 1 ? bShape + [1] : bShape
        let m = a2[a2.count - 2], k = a2[a2.count - 1], n = b2[b2.count - 1]
        let rank = max(a2.count, b2.count) - 2
        let aB = [Int](repeating: 1, count: rank - (a2.count - 2)) + a2.dropLast(2)
        let bB = [Int](repeating: 1, count: rank - (b2.count - 2)) + b2.dropLast(2)
        let oB = zip(aB, bB).map { max($0, $1) }
        let count = oB.reduce(1, *)
        var y = [Double](repeating: 0, count: count * m * n)
        for i in 0..<count {
            let idx = unflatten(i, oB)
            let ai = flatten(zip(idx, aB).map { $1 == 1 ? 0 : $0 }, aB), bi = flatten(zip(idx, bB).map { $1 == 1 ? 0 : $0 }, bB)
            for r in 0..<m { for c in 0..<n {
                var s = 0.0
                for j in 0..<k { s += Double(a[ai * m * k + r * k + j]) * Double(b[bi * k * n + j * n + c]) }
                y[i * m * n + r * n + c] = s
            } }
        }
        XCTAssertEqual(y.count, outShape.reduce(1, *))
        return y
    }

    func testBatchedMatMulBroadcasting() {
        var rng = SeededRandom(4)
        let cases: [([Int], [Int], [Int])] = [
            ([2, 3, 4], [2, 4, 5], [2, 3, 5]),
            ([3, 1, 3, 4], [5, 4, 6], [3, 5, 3, 6]),
            ([1, 7, 8], [4, 8, 2], [4, 7, 2]),
            ([4], [2, 4, 3], [2, 3]),
            ([2, 5, 4], [4], [2, 5]),
            ([6, 9], [9, 5], [6, 5]),
        ]
        for (aShape, bShape, outShape) in cases {
            let mm = BatchedMatMul(aShape: aShape, bShape: bShape)
            XCTAssertEqual(mm.outputShape, outShape)
            let a = rng.array(aShape.reduce(1, *)), b = rng.array(bShape.reduce(1, *))
            let expected = referenceMatMul(a, aShape, b, bShape, outShape)
            for t in [1, 2, 3] {
                var y = [Float](repeating: .nan, count: expected.count)
                withPointers([a, b], &y) { mm.run(a: $0[0], b: $0[1], output: $1, pool: ThreadPool(threadCount: t)) }
                assertClose(y, expected, "\(aShape) × \(bShape) t \(t)")
            }
        }
    }
}
