import CBLAS

private let blasConfigured: Void = { openblas_set_num_threads(1) }()

/// Makes OpenBLAS single-threaded; call (idempotent) before any kernel uses BLAS.
///
/// Kernels plan their own threading over the `ThreadPool` and give each thread a slice of the
/// problem; OpenBLAS's own threading collapses on the small-N shapes of batch-1 inference.
func configureBLASForExternalThreading() {
    _ = blasConfigured
}
