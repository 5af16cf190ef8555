import XCTest
@testable import SelfXit
import SelfXitGEMM

extension SeededRandom {
    init(_ seed: UInt64) { self.init(seed: seed) }
    /// `n` uniform values in [−1, 1), deterministic kernel-test data.
    mutating func array(_ n: Int) -> [Float] { (0..<n).map { _ in Float(uniform() * 2 - 1) } }
}

/// Asserts `max|a−b| ≤ tol · max(1, max|b|)`.
func assertClose(_ a: [Float], _ b: [Double], tol: Double = 1e-4, _ message: @autoclosure () -> String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "count " + message(), file: file, line: line)
    let scale = max(1, b.map { abs($0) }.max() ?? 0)
    var worst = 0.0
    for (x, y) in zip(a, b) { worst = max(worst, abs(Double(x) - y)) }
    XCTAssertLessThanOrEqual(worst, tol * scale, message(), file: file, line: line)
}

func referenceActivation(_ a: Activation, _ x: Double) -> Double {
    switch a {
    case .none: return x
    case .relu: return max(0, x)
    case let .clip(lo, hi): return min(Double(hi), max(Double(lo), x))
    case .sigmoid: return 1 / (1 + Foundation.exp(-x))
    case .silu: return x / (1 + Foundation.exp(-x))
    case let .hardSigmoid(alpha, beta): return min(1, max(0, Double(alpha) * x + Double(beta)))
    case .hardSwish: return x * min(1, max(0, x / 6 + 0.5))
    case .tanh: return Foundation.tanh(x)
    }
}

let allActivations: [Activation] = [.none, .relu, .clip(min: -0.5, max: 0.7), .sigmoid, .silu,
                                    .hardSigmoid(alpha: 0.2, beta: 0.5), .hardSwish, .tanh]

/// Runs `body` with base pointers of the arrays (output last, mutable).
func withPointers(_ inputs: [[Float]], _ output: inout [Float],
                  _ body: ([UnsafePointer<Float>], UnsafeMutablePointer<Float>) -> Void) {
    let copies = inputs.map { a -> UnsafeMutablePointer<Float> in
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, a.count))
        p.initialize(from: a, count: a.count)
        return p
    }
    defer { copies.forEach { $0.deallocate() } }
    output.withUnsafeMutableBufferPointer { body(copies.map { UnsafePointer($0) }, $0.baseAddress!) }
}

/// Multi-index of flat `i` in row-major `shape`.
func unflatten(_ i: Int, _ shape: [Int]) -> [Int] {
    var rest = i
    var idx = [Int](repeating: 0, count: shape.count)
    for d in stride(from: shape.count - 1, through: 0, by: -1) { idx[d] = rest % shape[d]; rest /= shape[d] }
    return idx
}

func flatten(_ idx: [Int], _ shape: [Int]) -> Int { zip(idx, shape).reduce(0) { $0 * $1.1 + $1.0 } }

/// The name `SELFXIT_GEMM_ISA` and the test output use for a `SX_GEMM_ISA_*` value.
func isaName(_ isa: Int32) -> String {
    switch isa {
    case PackedGEMM.avx512: return "AVX-512"
    case PackedGEMM.avx2: return "AVX2+FMA"
    case PackedGEMM.scalar: return "scalar"
    case PackedGEMM.neon: return "NEON"
    default: return "ISA \(isa)"
    }
}

/// Returns when this machine runs `isa`; otherwise prints and throws an `XCTSkip` naming the
/// paths that stay untested, so that a green run on a machine without it cannot pass for a run
/// that tested them (the test log says what was skipped).
func requireISA(_ isa: Int32, untested: String) throws {
    guard !PackedGEMM.isSupported(isa) else { return }
    let message = "skipped: \(isaName(isa)) not available on this CPU — \(untested) untested"
    print(message)
    throw XCTSkip(message)
}

/// Runs `body` once per kernel configuration this machine runs, with that configuration forced
/// (`PackedGEMM.isaOverride`), and prints which ran and which were skipped (never silently).
func forEachKernelConfig(_ what: String, _ body: (UnsafePointer<sx_kernel_config>) throws -> Void) rethrows {
    for isa in PackedGEMM.allISAs {
        guard let cfg = PackedGEMM.config(isa) else {
            print("\(what): kernel config \(isaName(isa)) skipped — not available on this CPU")
            continue
        }
        PackedGEMM.isaOverride = .some(isa)
        defer { PackedGEMM.isaOverride = nil }
        try body(cfg)
        print("\(what): kernel config \(String(cString: cfg.pointee.name)) ran")
    }
}
