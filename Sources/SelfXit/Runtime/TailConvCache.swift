import Synchronization

/// The packed kernels of one run-time-tail `Conv` whose weights and bias are constants (Mask
/// R-CNN's mask head: four 3×3 convolutions on `[N, 256, 14, 14]` ROI features; issue 13).
///
/// Packing the weights is the expensive part of building a `Conv2DKernel`, and it depends only on
/// the per-image geometry (channels, height, width), not on the ROI count N, which the kernel
/// takes as its batch. So a kernel is built the first time a geometry is seen and reused by every
/// later call (the mask head always sees 14 × 14; before this every call repacked 2.4 MB of
/// weights per conv). At most `maxEntries` geometries are kept per node — a model whose tail
/// conv sees ever new sizes builds a kernel per call past that, as before, with bounded memory.
/// Thread-safe: concurrent calls of one engine share the cache; `Conv2DKernel.run` is reentrant
/// (the caller passes the scratch).
final class TailConvCache: @unchecked Sendable {
    static let maxEntries = 4

    private struct Entry: @unchecked Sendable {
        var geometry: Conv2DGeometry
        var kernel: Conv2DKernel
    }
    private let entries = Mutex<[Entry]>([])

    /// The kernel for `geometry`, built by `make` when this node has not seen it yet.
    func kernel(for geometry: Conv2DGeometry, make: () -> Conv2DKernel) -> Conv2DKernel {
        entries.withLock { list in
            if let hit = list.first(where: { $0.geometry == geometry }) { return hit.kernel }
            let kernel = make()
            if list.count < Self.maxEntries { list.append(Entry(geometry: geometry, kernel: kernel)) }
            return kernel
        }
    }
}
