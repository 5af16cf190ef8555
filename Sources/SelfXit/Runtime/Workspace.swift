import FoundationEssentials
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The memory one forward pass runs in: the planned activation arena for up to `capacity`
/// batch rows, and per-thread kernel scratch. One workspace serves one pass at a time;
/// concurrent callers each take their own from the engine's pool.
///
/// Every buffer here is sized by the caller's batch, so it is allocated with a failure check
/// (`tryAllocateFloats`): a host under a memory limit gets `SelfXitError.outOfMemory`, not a trap
/// (Swift's own allocators abort the process when malloc fails).
final class Workspace {
    let capacity: Int
    let arena: UnsafeMutablePointer<Float>
    let scratch: UnsafeMutablePointer<Float>
    private let arenaCount: Int
    private let scratchCount: Int

    /// Throws `outOfMemory` when the arena (`capacity` × `floatsPerSample` floats) or the
    /// scratch cannot be allocated, or their sizes overflow. Precondition: `capacity` ≥ 1.
    init(capacity: Int, floatsPerSample: Int, scratchFloats: Int) throws {
        self.capacity = capacity
        let (floats, overflow) = capacity.multipliedReportingOverflow(by: floatsPerSample)
        guard !overflow else {
            throw SelfXitError.outOfMemory("an activation arena of \(capacity) rows × \(floatsPerSample) floats does not fit in memory")
        }
        arenaCount = max(floats, 16)
        scratchCount = max(scratchFloats, 16)
        arena = try tryAllocateFloats(arenaCount, for: "the activation arena of a batch of \(capacity)")
        do {
            scratch = try tryAllocateFloats(scratchCount, for: "kernel scratch")
        } catch {
            free(arena)
            throw error
        }
    }

    private var perThread: [Workspace] = []

    /// `count` one-sample workspaces for the threads of a sample-parallel run (made by `make`
    /// the first time, then kept with this workspace); nil when they cannot be allocated (the
    /// caller then runs the batch without them).
    func threadWorkspaces(_ count: Int, make: () throws -> Workspace) -> [Workspace]? {
        while perThread.count < count {
            guard let workspace = try? make() else { return nil }
            perThread.append(workspace)
        }
        return perThread
    }

    /// A kept, grow-only buffer (so that steady traffic allocates nothing).
    private struct Spare {
        var buffer: UnsafeMutablePointer<Float>?
        var count = 0

        /// At least `needed` floats (the old contents are not kept when it grows). Throws
        /// `outOfMemory` (keeping the old buffer) when it cannot grow.
        mutating func reserve(_ needed: Int, for purpose: @autoclosure () -> String) throws -> UnsafeMutablePointer<Float> {
            if let buffer, count >= needed { return buffer }
            let grownCount = max(needed, 16)
            let grown = try tryAllocateFloats(grownCount, for: purpose())
            free(buffer)
            buffer = grown
            count = grownCount
            return grown
        }
    }
    private var stagingSpare = Spare()
    private var auxiliarySpare = Spare()
    private var resultsSpare = Spare()
    private var gatherSpare = Spare()

    /// A buffer of at least `count` floats for a sample-parallel run's outputs (at most the
    /// batch × the widest outputs of a segment), kept and grown with the workspace; nil when it
    /// cannot be allocated (the caller then runs the batch without it).
    func staging(_ count: Int) -> UnsafeMutablePointer<Float>? { try? stagingSpare.reserve(count, for: "staging") }

    /// A buffer of at least `count` floats for work beside the plan (exit heads), kept and
    /// grown with the workspace. Throws `outOfMemory` when it cannot be allocated.
    func auxiliary(_ count: Int) throws -> UnsafeMutablePointer<Float> {
        try auxiliarySpare.reserve(count, for: "exit-head scratch")
    }

    /// `count` floats for the per-sample probabilities a pass hands to its callbacks (batch ×
    /// classes), kept and grown with the workspace. Throws `outOfMemory`.
    func results(_ count: Int) throws -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: try resultsSpare.reserve(count, for: "the probabilities of a batch"), count: count)
    }

    /// At least `count` floats for gathering the inputs of the samples a pass records for exit
    /// building, kept and grown with the workspace. Throws `outOfMemory`.
    func gathering(_ count: Int) throws -> UnsafeMutablePointer<Float> {
        try gatherSpare.reserve(count, for: "the inputs recorded for exit building")
    }

    deinit {
        free(arena)
        free(scratch)
        free(auxiliarySpare.buffer)
        free(stagingSpare.buffer)
        free(resultsSpare.buffer)
        free(gatherSpare.buffer)
    }

    /// Bytes held by this workspace.
    var byteCount: Int {
        (arenaCount + scratchCount + stagingSpare.count + auxiliarySpare.count + resultsSpare.count + gatherSpare.count) * MemoryLayout<Float>.stride
            + perThread.map(\.byteCount).reduce(0, +)
    }
}

/// `count` zeroed floats, 64-byte aligned, to be released with `free`. Throws
/// `SelfXitError.outOfMemory` naming `purpose` and the size when the size overflows or the
/// allocation fails — unlike `UnsafeMutablePointer.allocate`, which aborts the process.
func tryAllocateFloats(_ count: Int, for purpose: @autoclosure () -> String) throws -> UnsafeMutablePointer<Float> {
    let (bytes, overflow) = max(count, 1).multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
    guard !overflow, let raw = allocateForKernels(bytes: bytes) else {
        throw SelfXitError.outOfMemory("could not allocate \(overflow ? "more than \(Int.max) bytes" : describeBytes(bytes)) for \(purpose())")
    }
    memset(raw, 0, bytes)
    return raw.bindMemory(to: Float.self, capacity: max(count, 1))
}

/// Bytes of a transparent huge page on x86-64 and most aarch64 kernels.
private let hugePageBytes = 2 << 20

/// `bytes` (> 0) 64-byte aligned, to be released with `free`; nil when the allocation fails.
/// From 2 MiB on, on a 2 MiB boundary with its whole 2 MiB pages marked MADV_HUGEPAGE: the
/// kernels read a layer's weights and its input planes as dozens of streams at once (a 1×1
/// layer's 256 channel planes), each on its own 4 KiB page, more than the TLB holds; where the
/// system grants huge pages only on request (THP "madvise", the default of several
/// distributions) this asks for them for our own buffers — nothing process-wide changes.
func allocateForKernels(bytes: Int) -> UnsafeMutableRawPointer? {
    var raw: UnsafeMutableRawPointer?
    let huge = bytes >= hugePageBytes
    guard posix_memalign(&raw, huge ? hugePageBytes : 64, bytes) == 0, let raw else { return nil }
    #if os(Linux)
    if huge { _ = madvise(raw, bytes & ~(hugePageBytes - 1), MADV_HUGEPAGE) }
    #endif
    return raw
}

/// `bytes` for a message: exact below 1 MiB, else in MiB or GiB with one decimal.
func describeBytes(_ bytes: Int) -> String {
    if bytes < 1 << 20 { return "\(bytes) bytes" }
    if bytes < 1 << 30 { return (Double(bytes) / Double(1 << 20)).fixed(1) + " MiB" }
    return (Double(bytes) / Double(1 << 30)).fixed(1) + " GiB"
}
