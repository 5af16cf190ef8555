import SelfXitGEMM
#if canImport(Glibc)
import Glibc
#endif

/// Selects the SGEMM used by convolutions: SelfXit's own packed micro-kernels (`SelfXitGEMM`,
/// AVX-512 / AVX2+FMA / scalar, picked from CPUID) over prepacked weights, or the general
/// `sx_sgemm` over unpacked weights (the plain im2col path).
///
/// `SELFXIT_GEMM_ISA=avx512|avx2|scalar` caps the micro-kernel ISA; `SELFXIT_GEMM_ISA=blas`
/// routes convolutions through the unpacked `sx_sgemm` path instead (for comparisons; the name is
/// kept from when that path was OpenBLAS — the library no longer calls any BLAS).
enum PackedGEMM {
    /// Tests force one ISA (or `nil` for the unpacked `sx_sgemm` path) for kernels created while it is set.
    nonisolated(unsafe) static var isaOverride: Int32??

    /// The ISA a kernel created now uses; `nil` means the unpacked `sx_sgemm` path.
    static var currentISA: Int32? {
        if let forced = isaOverride { return forced }
        return defaultISA
    }

    private static let defaultISA: Int32? = {
        if let env = getenv("SELFXIT_GEMM_ISA"), String(cString: env) == "blas" { return nil }
        return sx_gemm_default_isa()
    }()

    static func isSupported(_ isa: Int32) -> Bool { sx_gemm_isa_supported(isa) != 0 }

    /// The kernel configuration of `isa` (tile sizes, the kernels it has), `nil` where this
    /// machine cannot run it. Planners ask it what it has (`direct != nil`), never an ISA id.
    static func config(_ isa: Int32) -> UnsafePointer<sx_kernel_config>? { sx_kernel_config_for(isa) }

    /// The configuration a kernel created now uses: a test's forced ISA, else the default one.
    /// With `SELFXIT_GEMM_ISA=blas` (or a forced `nil`) the default one: depthwise, pooling and
    /// activations still run on it, only convolutions take the unpacked `sx_sgemm` path.
    static var currentConfig: UnsafePointer<sx_kernel_config> {
        if let forced = isaOverride, let isa = forced, let cfg = sx_kernel_config_for(isa) { return cfg }
        return sx_kernel_config_default()!
    }

    /// Every configuration this machine runs (tests walk them all).
    static var runnableConfigs: [UnsafePointer<sx_kernel_config>] {
        (0..<Int32(SX_GEMM_ISA_COUNT)).compactMap { sx_kernel_config_for($0) }
    }

    /// The ISA ids that exist (tests report which of them this machine cannot run).
    static let allISAs: [Int32] = (0..<Int32(SX_GEMM_ISA_COUNT)).map { $0 }

    static let scalar = Int32(SX_GEMM_ISA_SCALAR)
    static let avx2 = Int32(SX_GEMM_ISA_AVX2)
    static let avx512 = Int32(SX_GEMM_ISA_AVX512)
    static let neon = Int32(SX_GEMM_ISA_NEON)
    static let nr = Int(SX_GEMM_NR)

    /// The activation the micro-kernel epilogue applies, and whether `a` needs a separate pass.
    static func fused(_ a: Activation) -> (code: Int32, lo: Float, hi: Float, separate: Bool) {
        switch a {
        case .none: return (Int32(SX_GEMM_ACT_NONE), 0, 0, false)
        case .relu: return (Int32(SX_GEMM_ACT_RELU), 0, 0, false)
        case let .clip(lo, hi): return (Int32(SX_GEMM_ACT_CLIP), lo, hi, false)
        default: return (Int32(SX_GEMM_ACT_NONE), 0, 0, true)
        }
    }

    /// `fused(a)` plus HardSwish, SiLU and Sigmoid where `config`'s kernels apply them as they
    /// store (`fused_acts`: AVX-512 and portable C), so those layers skip a second pass over
    /// their output. Only for kernels of `config`.
    static func fused(_ a: Activation, config: UnsafePointer<sx_kernel_config>) -> (code: Int32, lo: Float, hi: Float, separate: Bool) {
        fused(a, extended: config.pointee.fused_acts)
    }

    /// `fused(a)` plus the activations above Clip whose bit is set in `extended` (`fused_acts`, or
    /// all of them for kernels that apply every code, as `dw_direct` does).
    static func fused(_ a: Activation, extended: UInt32) -> (code: Int32, lo: Float, hi: Float, separate: Bool) {
        let code: Int32
        switch a {
        case .hardSwish: code = Int32(SX_GEMM_ACT_HARDSWISH)
        case .silu: code = Int32(SX_GEMM_ACT_SILU)
        case .sigmoid: code = Int32(SX_GEMM_ACT_SIGMOID)
        default: return fused(a)
        }
        guard extended & (1 << UInt32(code)) != 0 else { return fused(a) }
        return (code, 0, 0, false)
    }
}

/// A constant `m×k` row-major matrix packed once into the micro-kernel's A panels, or, with
/// `channelMajor` (configurations with a `ct` kernel), into 16-row panels for it.
final class PackedMatrixA {
    let isa: Int32
    /// The configuration whose kernels compute with these panels.
    let config: UnsafePointer<sx_kernel_config>
    let m: Int, k: Int
    /// Whether products run channel-major (`sx_gemm_compute_ct`); panels are 16 rows either way on AVX-512.
    let channelMajor: Bool
    let panels: Int
    let data: UnsafeMutablePointer<Float>

    init(isa: Int32, rows a: UnsafePointer<Float>, lda: Int, m: Int, k: Int, channelMajor: Bool = false) {
        precondition(m > 0 && k > 0 && m <= Int(Int32.max) && k <= Int(Int32.max))
        let config = sx_kernel_config_for(isa) ?? sx_kernel_config_default()!
        // Channel-major panels feed `ct` (packed products) or `ctd` (direct ones, DirectConvPlan).
        precondition(!channelMajor || ((config.pointee.ct != nil || config.pointee.ctd != nil) && lda == k))
        self.isa = config.pointee.isa
        self.config = config
        self.m = m
        self.k = k
        self.channelMajor = channelMajor
        if channelMajor {
            panels = (m + PackedGEMM.nr - 1) / PackedGEMM.nr
            data = allocateFloats(Int(sx_gemm_packed_wt_floats(Int32(m), Int32(k))))
            sx_gemm_pack_wt(a, Int32(m), Int32(k), data)
        } else {
            let mr = Int(config.pointee.mr)
            panels = (m + mr - 1) / mr
            data = allocateFloats(Int(sx_gemm_packed_a_floats(self.isa, Int32(m), Int32(k))))
            sx_gemm_pack_a(self.isa, a, lda, Int32(m), Int32(k), data)
        }
    }

    /// A panels `mp` × B panels `np` of packed `pb` (`cols` columns) into `out`.
    func compute(_ pb: UnsafePointer<Float>, cols: Int, mp: Range<Int>, np: Range<Int>, _ out: inout sx_gemm_out) {
        if channelMajor {
            config.pointee.ct(data, Int32(m), Int32(k), Int32(mp.lowerBound), Int32(mp.upperBound),
                              pb, Int32(cols), Int32(np.lowerBound), Int32(np.upperBound), &out)
        } else {
            config.pointee.gemm(data, Int32(m), Int32(k), Int32(mp.lowerBound), Int32(mp.upperBound),
                                pb, Int32(cols), Int32(np.lowerBound), Int32(np.upperBound), &out)
        }
    }

    deinit { data.deallocate() }
}

/// The kernel configuration in words, for tools in this package (selfxit-kernelbench).
package enum KernelConfigInfo {
    /// The name of the configuration kernels created now use (`avx512`, `avx2`, `neon`, `scalar`).
    package static var currentName: String { String(cString: PackedGEMM.currentConfig.pointee.name) }
}
