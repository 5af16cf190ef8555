import XCTest
@testable import SelfXit

final class KernelPoolingTests: XCTestCase {
    /// Output size with ONNX's ceil_mode rule (a window may not start in the end padding).
    func outSize(_ size: Int, _ k: Int, _ s: Int, _ p0: Int, _ p1: Int, _ d: Int, ceil: Bool) -> Int {
        let span = size + p0 + p1 - d * (k - 1) - 1
        var o = (ceil ? (span + s - 1) / s : span / s) + 1
        if ceil && (o - 1) * s >= size + p0 { o -= 1 }
        return o
    }

    func geometry(c: Int, h: Int, w: Int, k: (Int, Int), s: (Int, Int), pads: (Int, Int, Int, Int), d: (Int, Int) = (1, 1),
                  ceil: Bool) -> Pool2DGeometry {
        Pool2DGeometry(channels: c, inHeight: h, inWidth: w,
                       outHeight: outSize(h, k.0, s.0, pads.0, pads.2, d.0, ceil: ceil),
                       outWidth: outSize(w, k.1, s.1, pads.1, pads.3, d.1, ceil: ceil),
                       kernelHeight: k.0, kernelWidth: k.1, strideH: s.0, strideW: s.1,
                       padTop: pads.0, padLeft: pads.1, padBottom: pads.2, padRight: pads.3, dilationH: d.0, dilationW: d.1)
    }

    func reference(_ g: Pool2DGeometry, _ x: [Float], batch: Int, max isMax: Bool, includePad: Bool) -> [Double] {
        var y = [Double]()
        for p in 0..<(batch * g.channels) {
            for oy in 0..<g.outHeight { for ox in 0..<g.outWidth {
                var m = -Double.infinity, s = 0.0, n = 0, padded = 0
                for ky in 0..<g.kernelHeight { for kx in 0..<g.kernelWidth {
                    let iy = oy * g.strideH - g.padTop + ky * g.dilationH, ix = ox * g.strideW - g.padLeft + kx * g.dilationW
                    if iy < g.inHeight + g.padBottom && ix < g.inWidth + g.padRight { padded += 1 }
                    guard iy >= 0 && iy < g.inHeight && ix >= 0 && ix < g.inWidth else { continue }
                    let v = Double(x[(p * g.inHeight + iy) * g.inWidth + ix])
                    m = max(m, v); s += v; n += 1
                } }
                y.append(isMax ? m : s / Double(includePad ? padded : n))
            } }
        }
        return y
    }

    /// Max and average pooling on every kernel configuration this machine runs (its
    /// `maxpool_direct` kernel where it has one).
    func testPoolsEveryConfig() {
        forEachKernelConfig("pooling") { _ in testPools() }
    }

    func testPools() {
        var rng = SeededRandom(9)
        let geometries = [
            geometry(c: 3, h: 9, w: 9, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1), ceil: false),
            geometry(c: 3, h: 10, w: 10, k: (3, 3), s: (2, 2), pads: (0, 0, 0, 0), ceil: true),
            geometry(c: 2, h: 11, w: 8, k: (3, 2), s: (2, 3), pads: (1, 0, 1, 1), ceil: true),
            geometry(c: 2, h: 12, w: 13, k: (2, 2), s: (2, 2), pads: (0, 0, 0, 0), ceil: true),
            geometry(c: 4, h: 8, w: 8, k: (5, 5), s: (1, 1), pads: (2, 2, 2, 2), ceil: false),
            geometry(c: 64, h: 56, w: 56, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1), ceil: false),
            geometry(c: 2, h: 7, w: 37, k: (3, 3), s: (1, 1), pads: (1, 1, 1, 1), ceil: false),
            geometry(c: 2, h: 9, w: 71, k: (2, 3), s: (2, 2), pads: (0, 1, 1, 1), ceil: true),
            // 2×2 stride 2 inside the plane (averagePool2D's fast path; DenseNet's transitions),
            // an odd row and column left over in the first.
            geometry(c: 3, h: 13, w: 11, k: (2, 2), s: (2, 2), pads: (0, 0, 0, 0), ceil: false),
            geometry(c: 5, h: 28, w: 28, k: (2, 2), s: (2, 2), pads: (0, 0, 0, 0), ceil: false),
            // Large enough that one sample on two threads splits by bands of output rows
            // (`maxPool2D`): the direct kernel from a middle row (3×3 stride 2 and 1, an odd row
            // count), and the general loop (a 3×2 window, a 5×5 one padded by 2).
            geometry(c: 16, h: 40, w: 40, k: (3, 3), s: (2, 2), pads: (1, 1, 1, 1), ceil: false),
            geometry(c: 16, h: 15, w: 20, k: (3, 3), s: (1, 1), pads: (1, 1, 1, 1), ceil: false),
            geometry(c: 48, h: 30, w: 33, k: (3, 2), s: (2, 3), pads: (1, 0, 1, 1), ceil: true),
            geometry(c: 8, h: 24, w: 24, k: (5, 5), s: (1, 1), pads: (2, 2, 2, 2), ceil: false),
        ]
        for g in geometries {
            for batch in [1, 3] {
                let x = rng.array(batch * g.channels * g.inHeight * g.inWidth)
                let count = batch * g.channels * g.outHeight * g.outWidth
                for t in [1, 2] {
                    let pool = ThreadPool(threadCount: t)
                    var y = [Float](repeating: .nan, count: count)
                    withPointers([x], &y) { maxPool2D(g, input: $0[0], output: $1, batch: batch, pool: pool) }
                    assertClose(y, reference(g, x, batch: batch, max: true, includePad: false), "max \(g)")
                    for include in [false, true] {
                        withPointers([x], &y) {
                            averagePool2D(g, countIncludePad: include, input: $0[0], output: $1, batch: batch, pool: pool)
                        }
                        assertClose(y, reference(g, x, batch: batch, max: false, includePad: include), "avg \(include) \(g)")
                    }
                }
            }
        }
        let dilated = geometry(c: 2, h: 10, w: 10, k: (3, 3), s: (1, 1), pads: (2, 2, 2, 2), d: (2, 2), ceil: false)
        let x = rng.array(2 * 100)
        var y = [Float](repeating: .nan, count: 2 * dilated.outHeight * dilated.outWidth)
        withPointers([x], &y) { maxPool2D(dilated, input: $0[0], output: $1, batch: 1, pool: ThreadPool(threadCount: 2)) }
        assertClose(y, reference(dilated, x, batch: 1, max: true, includePad: false))
    }

    func testGlobalAveragePool() {
        var rng = SeededRandom(10)
        for (planes, size) in [(3, 1), (5, 49), (512, 17), (64, 3136)] {
            let x = rng.array(planes * size)
            let expected = (0..<planes).map { p in (0..<size).reduce(0.0) { $0 + Double(x[p * size + $1]) } / Double(size) }
            var y = [Float](repeating: .nan, count: planes)
            withPointers([x], &y) { globalAveragePool(input: $0[0], output: $1, planes: planes, planeSize: size, pool: ThreadPool(threadCount: 2)) }
            assertClose(y, expected)
        }
    }
}
