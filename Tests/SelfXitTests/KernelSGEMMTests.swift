import XCTest
import SelfXitGEMM
@testable import SelfXit

/// The general SGEMM (`sx_sgemm`, which replaced OpenBLAS in dense layers, MatMul, the unpacked
/// convolution path and exit-head training) against a Double reference: all four transpose
/// combinations, odd sizes, sizes past every block (MC 240, KC 256, NC 512), beta 0 (C never
/// read) and 1, alpha ≠ 1, padded leading dimensions (padding never written) — on every ISA this
/// machine runs, each forced in turn. An ISA it cannot run is reported as a skip naming what
/// stays untested, never passed over silently.
final class KernelSGEMMTests: XCTestCase {
    /// One product `C = alpha·op(A)·op(B) + beta·C` checked against the reference.
    func check(isa: Int32, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float,
               file: StaticString = #filePath, line: UInt = #line) {
        var rng = SeededRandom(UInt64(m &* 7919 &+ n &* 131 &+ k &* 3 &+ (transA ? 1 : 0) &+ (transB ? 2 : 0)))
        // Stored shapes with padded rows (lda, ldb, ldc past the logical widths).
        let aRows = transA ? k : m, aCols = transA ? m : k
        let bRows = transB ? n : k, bCols = transB ? k : n
        let lda = aCols + 3, ldb = bCols + 1, ldc = n + 2
        let a = rng.array(max(1, aRows * lda)), b = rng.array(max(1, bRows * ldb))
        let c0 = rng.array(m * ldc)
        // With beta 0, C starts as NaN: reading it would poison the result.
        var c = c0
        if beta == 0 { for i in 0..<m { for j in 0..<n { c[i * ldc + j] = .nan } } }
        var want = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let x = transA ? a[p * lda + i] : a[i * lda + p]
                    let y = transB ? b[j * ldb + p] : b[p * ldb + j]
                    s += Double(x) * Double(y)
                }
                want[i * n + j] = Double(alpha) * s + (beta == 0 ? 0 : Double(beta) * Double(c0[i * ldc + j]))
            }
        }
        withPointers([a, b], &c) { p, out in
            sx_sgemm(isa, transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha,
                     p[0], lda, p[1], ldb, beta, out, ldc)
        }
        var got = [Float](), padOK = true
        for i in 0..<m {
            got.append(contentsOf: c[(i * ldc)..<(i * ldc + n)])
            for j in n..<ldc where c[i * ldc + j] != c0[i * ldc + j] { padOK = false }
        }
        let what = "isa \(isa) \(transA ? "T" : "N")\(transB ? "T" : "N") m \(m) n \(n) k \(k) alpha \(alpha) beta \(beta)"
        // Sums of k products of values in [-1, 1): scale the tolerance with k.
        assertClose(got, want, tol: 2e-6 * Double(max(k, 8)), what, file: file, line: line)
        XCTAssertTrue(padOK, "wrote past n in a row of C: " + what, file: file, line: line)
    }

    /// Every transpose combination and beta over odd sizes in 1…70 and sizes past each block.
    func runSuite(isa: Int32) {
        let small = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 23, 31, 33, 47, 48, 49, 64, 70]
        for transA in [false, true] {
            for transB in [false, true] {
                for beta: Float in [0, 1] {
                    // m and n over the small sizes (every row-panel and column-panel tail), k varied with them.
                    for (i, m) in small.enumerated() {
                        for (j, n) in small.enumerated() where (i + j) % 3 == 0 || m == 1 || n == 1 {
                            let k = small[(i * 5 + j * 3) % small.count]
                            check(isa: isa, transA: transA, transB: transB, m: m, n: n, k: k, beta: beta)
                        }
                    }
                    // Which path a product takes: up to 16 rows of A·Bᵀ (any rows when B has at most
                    // 256 K floats) and up to 4 rows otherwise read A and B unpacked (the small sizes
                    // above); up to 16 rows of A·B with beta 0 on AVX-512, sx_gemm_small_rows; the
                    // rest is packed. Here: packed A·Bᵀ with odd sizes (B just over 256 K floats) and
                    // sizes past MC (240 rows), KC (256: two and five K blocks) and NC (512 columns).
                    check(isa: isa, transA: transA, transB: transB, m: 37, n: 1025, k: 257, beta: beta)
                    check(isa: isa, transA: transA, transB: transB, m: 1030, n: 37, k: 300, beta: beta)
                    check(isa: isa, transA: transA, transB: transB, m: 33, n: 1001, k: 520, beta: beta)
                    check(isa: isa, transA: transA, transB: transB, m: 5, n: 1100, k: 1030, beta: beta)
                    check(isa: isa, transA: transA, transB: transB, m: 250, n: 530, k: 70, alpha: 0.5, beta: beta)
                    // Few columns (AVX2: A read in place, B packed with alpha; K in blocks of 512).
                    check(isa: isa, transA: transA, transB: transB, m: 1030, n: 32, k: 600, alpha: 0.5, beta: beta)
                    check(isa: isa, transA: transA, transB: transB, m: 50, n: 17, k: 1100, beta: beta)
                }
                // Past AVX2's blocks (MC 168 in even blocks, NC 2048, K blocks a multiple of 8).
                check(isa: isa, transA: transA, transB: transB, m: 250, n: 2060, k: 300, beta: 1)
            }
        }
        // Any other beta scales C first; alpha 0 or k 0 read neither A nor B.
        check(isa: isa, transA: false, transB: true, m: 17, n: 19, k: 23, alpha: 2, beta: 0.5)
        check(isa: isa, transA: true, transB: false, m: 9, n: 40, k: 23, alpha: 0, beta: 0.25)
        check(isa: isa, transA: false, transB: false, m: 9, n: 40, k: 0, beta: 0)
        check(isa: isa, transA: false, transB: false, m: 9, n: 40, k: 0, beta: 1)
    }

    /// Dense layers and MatMul (now on `sx_sgemm`) re-run with kernels created for `isa`.
    func runDenseSuite(isa: Int32) {
        PackedGEMM.isaOverride = .some(isa)
        defer { PackedGEMM.isaOverride = nil }
        #if os(Linux)
        let gemm = KernelGemmTests(name: "KernelGemmTests", testClosure: { _ in })
        #else
        let gemm = KernelGemmTests()
        #endif
        gemm.testDenseVariants()
        gemm.testBatchedMatMulBroadcasting()
    }

    func testSGEMMScalar() {
        runSuite(isa: PackedGEMM.scalar)
        runDenseSuite(isa: PackedGEMM.scalar)
    }

    func testSGEMMAVX2() throws {
        try requireISA(PackedGEMM.avx2, untested: "sx_sgemm and dense/MatMul on the AVX2 micro-kernel")
        runSuite(isa: PackedGEMM.avx2)
        runDenseSuite(isa: PackedGEMM.avx2)
    }

    func testSGEMMAVX512() throws {
        try requireISA(PackedGEMM.avx512, untested: "sx_sgemm and dense/MatMul on the AVX-512 micro-kernels (packed 16×16 / 8×32, small rows)")
        runSuite(isa: PackedGEMM.avx512)
        runDenseSuite(isa: PackedGEMM.avx512)
    }

    /// Says which ISAs this run covers, and fails over to a named skip for the AVX-512-only paths
    /// when the CPU lacks AVX-512 (they would otherwise be passed over without a word).
    func testKernelPathsThisMachineRuns() throws {
        let runs = [PackedGEMM.avx512, PackedGEMM.avx2, PackedGEMM.scalar].filter { PackedGEMM.isSupported($0) }
        print("kernel ISA: default \(isaName(sx_gemm_default_isa())); this CPU runs \(runs.map(isaName).joined(separator: ", "))")
        if PackedGEMM.isSupported(PackedGEMM.avx512) && sx_gemm_default_isa() != PackedGEMM.avx512 {
            // SELFXIT_GEMM_ISA lowered the default: depthwise and max pooling take their portable
            // paths in this run (their AVX-512 paths run in the run at the default ISA).
            print("kernel ISA lowered by SELFXIT_GEMM_ISA: sx_dw3x3_plane and the portable max pool tested, not sx_dw3x3_direct / sx_maxpool_direct")
        }
        try requireISA(PackedGEMM.avx512, untested: "sx_gemm_compute_direct/ct/ctd, sx_gemm_small_rows, sx_dw3x3_direct, sx_maxpool_direct and the AVX-512 sx_gemm_compute")
    }

    /// An ISA above what the machine runs is lowered (packing and micro-kernel always agree).
    func testUnsupportedISAIsLowered() {
        check(isa: 7, transA: false, transB: false, m: 19, n: 21, k: 13, beta: 0)
        check(isa: 7, transA: true, transB: true, m: 19, n: 21, k: 13, beta: 1)
    }

    /// Threads running products at once each use their own scratch (results stay exact).
    func testConcurrentCallers() {
        let m = 70, n = 300, k = 600
        var rng = SeededRandom(11)
        let a = rng.array(m * k), b = rng.array(k * n)
        var want = [Float](repeating: 0, count: m * n)
        withPointers([a, b], &want) { p, out in
            sx_sgemm(sx_gemm_default_isa(), 0, 0, Int32(m), Int32(n), Int32(k), 1, p[0], k, p[1], n, 0, out, n)
        }
        let results = UnsafeMutablePointer<Float>.allocate(capacity: 4 * m * n)
        defer { results.deallocate() }
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                DispatchQueue.concurrentPerform(iterations: 4) { t in
                    for _ in 0..<5 {
                        sx_sgemm(sx_gemm_default_isa(), 0, 0, Int32(m), Int32(n), Int32(k), 1, pa.baseAddress, k,
                                 pb.baseAddress, n, 0, results + t * m * n, n)
                    }
                }
            }
        }
        for t in 0..<4 {
            XCTAssertEqual(Array(UnsafeBufferPointer(start: results + t * m * n, count: m * n)), want, "thread \(t)")
        }
    }
}
