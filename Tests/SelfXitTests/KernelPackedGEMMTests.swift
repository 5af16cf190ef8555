import XCTest
import SelfXitGEMM
@testable import SelfXit

/// SelfXit's packed SGEMM (`SelfXitGEMM`) against a Double reference, on every micro-kernel ISA
/// this machine runs (each forced in turn), and the convolution tests re-run on each ISA.
final class KernelPackedGEMMTests: XCTestCase {
    /// The ISAs to test here: every one the CPU supports.
    var isas: [Int32] {
        [PackedGEMM.scalar, PackedGEMM.avx2, PackedGEMM.avx512].filter { PackedGEMM.isSupported($0) }
    }

    func testISADetection() {
        XCTAssertTrue(PackedGEMM.isSupported(PackedGEMM.scalar))
        XCTAssertTrue(PackedGEMM.isSupported(sx_gemm_default_isa()))
        XCTAssertFalse(PackedGEMM.isSupported(7))
        print("packed GEMM ISAs available: \(isas)")
    }

    /// `act(A·B + bias + residual)` through pack A / pack B / compute, columns split into samples of
    /// `cps` columns (panels straddling samples take the scatter path).
    func check(isa: Int32, m: Int, n: Int, k: Int, cps: Int? = nil, bias: Bool, residual: Bool, act: Activation,
               channelMajor: Bool = false, file: StaticString = #filePath, line: UInt = #line) {
        var rng = SeededRandom(UInt64(m * 1000 + n * 10 + k))
        let a = rng.array(m * k), b = rng.array(k * n)
        let biasV = bias ? rng.array(m) : nil
        let cps = cps ?? n
        let samples = (n + cps - 1) / cps
        // Output layout: [sample][m][cps], pixels past n in the last sample unused.
        let outCount = samples * m * cps
        let res = residual ? rng.array(outCount) : nil
        var expected = [Double](repeating: .nan, count: outCount)
        for i in 0..<m {
            for j in 0..<n {
                var s = Double(biasV?[i] ?? 0)
                for p in 0..<k { s += Double(a[i * k + p]) * Double(b[p * n + j]) }
                let o = (j / cps) * m * cps + i * cps + j % cps
                if let res { s += Double(res[o]) }
                expected[o] = referenceActivation(act, s)
            }
        }
        let packedA = a.withUnsafeBufferPointer {
            PackedMatrixA(isa: isa, rows: $0.baseAddress!, lda: k, m: m, k: k, channelMajor: channelMajor)
        }
        let pb = allocateFloats(Int(sx_gemm_packed_b_floats(Int32(n), Int32(k))))
        defer { pb.deallocate() }
        // Pack in two row slices and two column slices, like the threaded callers do.
        b.withUnsafeBufferPointer { bp in
            let half = n / 2, kh = k / 2
            for (r0, r1) in [(0, kh), (kh, k)] {
                sx_gemm_pack_b(bp.baseAddress!, n, Int32(half), Int32(k), Int32(r0), Int32(r1), 0, pb)
                sx_gemm_pack_b(bp.baseAddress! + half, n, Int32(n - half), Int32(k), Int32(r0), Int32(r1), Int32(half), pb)
                sx_gemm_pack_b_zero_tail(Int32(n), Int32(k), Int32(r0), Int32(r1), pb)
            }
        }
        let fused = PackedGEMM.fused(act)
        var y = [Float](repeating: .nan, count: outCount)
        let nPanels = (n + PackedGEMM.nr - 1) / PackedGEMM.nr
        y.withUnsafeMutableBufferPointer { yp in
            (res ?? []).withUnsafeBufferPointer { rp in
                (biasV ?? []).withUnsafeBufferPointer { bp in
                    var out = sx_gemm_out(c: yp.baseAddress!, ldc: cps, c_sample_stride: m * cps,
                                          residual: residual ? rp.baseAddress! : nil, ldr: cps, r_sample_stride: m * cps,
                                          bias: bias ? bp.baseAddress! : nil, cols_per_sample: Int32(cps),
                                          act: fused.code, lo: fused.lo, hi: fused.hi)
                    // Two calls over disjoint panel ranges, as two threads would (the first range
                    // odd-sized where possible, so channel-major pairs end in a single panel).
                    let mh = packedA.panels / 2 | 1
                    for (m0, m1) in [(0, min(mh, packedA.panels)), (min(mh, packedA.panels), packedA.panels)] where m1 > m0 {
                        packedA.compute(pb, cols: n, mp: m0..<m1, np: 0..<nPanels, &out)
                    }
                }
            }
        }
        if fused.separate { applyActivation(act, &y, count: y.count) }
        // Compare only the written positions.
        var got = [Float](), want = [Double]()
        for (g, e) in zip(y, expected) where !e.isNaN { got.append(g); want.append(e) }
        XCTAssertEqual(got.count, m * n, file: file, line: line)
        assertClose(got, want, "isa \(isa) m \(m) n \(n) k \(k) cps \(cps) bias \(bias) res \(residual) \(act)",
                    file: file, line: line)
    }

    func testOddSizesEveryISA() {
        let sizes: [(Int, Int, Int)] = [(1, 1, 1), (1, 17, 3), (5, 1, 7), (17, 33, 1), (16, 16, 16), (13, 16, 9),
                                        (33, 47, 65), (7, 5, 300), (64, 100, 257), (100, 3, 40),
                                        (300, 70, 1000)]  // last: A over 1 MB, so K is blocked (accumulating tiles)
        for isa in isas {
            for (m, n, k) in sizes {
                check(isa: isa, m: m, n: n, k: k, bias: false, residual: false, act: .none)
                check(isa: isa, m: m, n: n, k: k, bias: true, residual: true, act: .relu)
                check(isa: isa, m: m, n: n, k: k, bias: true, residual: false, act: .clip(min: -0.5, max: 0.7))
            }
        }
    }

    func testSamplesSharingPanelsEveryISA() {
        for isa in isas {
            check(isa: isa, m: 19, n: 3 * 7, k: 11, cps: 7, bias: true, residual: true, act: .relu)
            check(isa: isa, m: 8, n: 5 * 49, k: 30, cps: 49, bias: true, residual: false, act: .clip(min: 0, max: 6))
            check(isa: isa, m: 20, n: 4 * 16, k: 9, cps: 16, bias: false, residual: true, act: .none)
            check(isa: isa, m: 3, n: 2 * 5, k: 2, cps: 5, bias: true, residual: true, act: .sigmoid)
        }
    }

    /// The channel-major product (`sx_gemm_compute_ct`, AVX-512): pixel rows in every tail size
    /// 1…8, channels not a multiple of 16, samples sharing panels, K long enough to prefetch past
    /// and, with several samples, split into blocks.
    func testChannelMajorAVX512() throws {
        try requireISA(PackedGEMM.avx512, untested: "the channel-major product sx_gemm_compute_ct")
        let sizes: [(Int, Int, Int, Int?)] = [(1, 1, 1, nil), (16, 49, 64, nil), (37, 9, 300, nil), (70, 23, 17, nil),
                                              (48, 3 * 49, 200, 49), (19, 4 * 9, 33, 9), (96, 5 * 7, 700, 7),
                                              (40, 5 * 49, 1200, 49)]  // last: B over 1 MB, so K is blocked
        for (m, n, k, cps) in sizes {
            check(isa: PackedGEMM.avx512, m: m, n: n, k: k, cps: cps, bias: false, residual: false, act: .none, channelMajor: true)
            check(isa: PackedGEMM.avx512, m: m, n: n, k: k, cps: cps, bias: true, residual: true, act: .relu, channelMajor: true)
            check(isa: PackedGEMM.avx512, m: m, n: n, k: k, cps: cps, bias: true, residual: false,
                  act: .clip(min: -0.5, max: 0.7), channelMajor: true)
        }
    }

    /// Runs the convolution suite with kernels built for `isa` (`nil`: the unpacked `sx_sgemm` path).
    func runConvSuite(_ isa: Int32?) {
        PackedGEMM.isaOverride = .some(isa)
        defer { PackedGEMM.isaOverride = nil }
        // Failures inside are recorded against the running test (this one).
        #if os(Linux)
        let conv = KernelConvTests(name: "KernelConvTests", testClosure: { _ in })
        #else
        let conv = KernelConvTests()
        #endif
        conv.testPointwise()
        conv.testPointwiseStrided()
        conv.test3x3()
        conv.test7x7Stride2Pad3()
        conv.testDilation()
        conv.testAsymmetricPads()
        conv.testGrouped()
        conv.testResidualInPlace()
        // Late-layer shapes: few pixels (several samples per product), and many (row bands at batch 1).
        conv.check(conv.geometry(c: 32, h: 4, w: 4, oc: 40, k: (3, 3), pads: (1, 1, 1, 1)), residual: true, act: .relu,
                   batches: [1, 2, 7, 33], threads: [1, 2, 3])
        conv.check(conv.geometry(c: 24, h: 7, w: 7, oc: 18, k: (1, 1)), act: .clip(min: 0, max: 6),
                   batches: [1, 4, 11], threads: [2, 4])
        conv.check(conv.geometry(c: 6, h: 20, w: 13, oc: 35, k: (3, 3), s: (1, 1), pads: (1, 1, 1, 1)), residual: true,
                   act: .hardSwish, batches: [1, 3], threads: [2, 3])
    }

    func testConvScalar() { runConvSuite(PackedGEMM.scalar) }
    func testConvAVX2() throws {
        try requireISA(PackedGEMM.avx2, untested: "convolutions on the AVX2 micro-kernel (sx_gemm_compute)")
        runConvSuite(PackedGEMM.avx2)
    }
    func testConvAVX512() throws {
        try requireISA(PackedGEMM.avx512, untested: "convolutions on the AVX-512 micro-kernels (sx_gemm_compute 16×16 and 8×32, sx_gemm_compute_ct)")
        runConvSuite(PackedGEMM.avx512)
    }
    /// The unpacked path (`SELFXIT_GEMM_ISA=blas`): im2col then `sx_sgemm` on the default ISA.
    func testConvUnpackedSGEMM() { runConvSuite(nil) }
}
