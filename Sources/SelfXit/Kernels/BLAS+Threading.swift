import CBLAS
#if canImport(Glibc)
import Glibc
#endif

private let blasConfigured: Void = {
    openblas_set_num_threads(1)
    upgradeFallbackCore()
}()

/// Makes OpenBLAS single-threaded; call (idempotent) before any kernel uses BLAS, and before
/// other threads may be inside OpenBLAS.
///
/// Kernels plan their own threading over the `ThreadPool` and give each thread a slice of the
/// problem; OpenBLAS's own threading collapses on the small-N shapes of batch-1 inference.
/// Also repairs OpenBLAS's CPU detection (see `upgradeFallbackCore`).
func configureBLASForExternalThreading() {
    _ = blasConfigured
}

/// OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not know newer Intel models (e.g. Xeon family 6 model 207)
/// and falls back to its SSE3 "Prescott" kernels, 3–4× slower than its AVX-512 ones. When that
/// happens and the user did not pick a core (`OPENBLAS_CORETYPE`), re-run OpenBLAS's dynamic core
/// selection with the best core the CPU flags allow.
private func upgradeFallbackCore() {
    #if os(Linux) && arch(x86_64)
    guard getenv("OPENBLAS_CORETYPE") == nil,
          let current = openblas_get_corename().map({ String(cString: $0) }),
          ["prescott", "core2", "penryn", "dunnington", "nehalem", "sandybridge"].contains(current.lowercased()),
          let flagsLine = cpuFlagsLine()
    else { return }
    let flags = Set(flagsLine.split(separator: " "))
    let core: String
    if flags.contains("avx512f") && flags.contains("avx512bw") && flags.contains("avx512vl") {
        core = "SkylakeX"
    } else if flags.contains("avx2") && flags.contains("fma") {
        core = "Haswell"
    } else {
        return
    }
    guard let quit = dlsym(nil, "gotoblas_dynamic_quit"), let initialize = dlsym(nil, "gotoblas_dynamic_init") else { return }
    typealias Hook = @convention(c) () -> Void
    setenv("OPENBLAS_CORETYPE", core, 1)
    unsafeBitCast(quit, to: Hook.self)()
    unsafeBitCast(initialize, to: Hook.self)()
    unsetenv("OPENBLAS_CORETYPE")
    #endif
}

/// The first `flags` line of /proc/cpuinfo, if readable.
private func cpuFlagsLine() -> String? {
    guard let file = fopen("/proc/cpuinfo", "r") else { return nil }
    defer { fclose(file) }
    var line: UnsafeMutablePointer<CChar>?
    var capacity = 0
    defer { free(line) }
    while getline(&line, &capacity, file) > 0 {
        let text = String(cString: line!)
        if text.hasPrefix("flags") { return text.trimmingSuffix() }
    }
    return nil
}

private extension String {
    func trimmingSuffix() -> String { String(self.prefix { $0 != "\n" }) }
}
