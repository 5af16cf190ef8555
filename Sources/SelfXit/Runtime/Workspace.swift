/// The memory one forward pass runs in: the planned activation arena for up to `capacity`
/// batch rows, and per-thread kernel scratch. One workspace serves one pass at a time;
/// concurrent callers each take their own from the engine's pool.
final class Workspace {
    let capacity: Int
    let arena: UnsafeMutablePointer<Float>
    let scratch: UnsafeMutablePointer<Float>
    private let arenaCount: Int
    private let scratchCount: Int

    /// Precondition: `capacity` ≥ 1 and the sizes fit in memory (checked by the engine).
    init(capacity: Int, floatsPerSample: Int, scratchFloats: Int) {
        self.capacity = capacity
        arenaCount = max(capacity * floatsPerSample, 16)
        scratchCount = max(scratchFloats, 16)
        arena = Self.allocateAligned(arenaCount)
        scratch = Self.allocateAligned(scratchCount)
    }

    private static func allocateAligned(_ count: Int) -> UnsafeMutablePointer<Float> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
        return raw.initializeMemory(as: Float.self, repeating: 0, count: count)
    }

    private var perThread: [Workspace] = []

    /// `count` one-sample workspaces for the threads of a sample-parallel run (made by `make`
    /// the first time, then kept with this workspace).
    func threadWorkspaces(_ count: Int, make: () -> Workspace) -> [Workspace] {
        while perThread.count < count { perThread.append(make()) }
        return perThread
    }

    /// A kept, grow-only buffer (so that steady traffic allocates nothing).
    private struct Spare {
        var buffer: UnsafeMutablePointer<Float>?
        var count = 0

        /// At least `needed` floats (the old contents are not kept when it grows).
        mutating func reserve(_ needed: Int) -> UnsafeMutablePointer<Float> {
            if let buffer, count >= needed { return buffer }
            buffer?.deallocate()
            count = max(needed, 16)
            let grown = Workspace.allocateAligned(count)
            buffer = grown
            return grown
        }
    }
    private var stagingSpare = Spare()
    private var auxiliarySpare = Spare()

    /// A buffer of at least `count` floats for a sample-parallel run's outputs (at most the
    /// batch × the widest outputs of a segment), kept and grown with the workspace.
    func staging(_ count: Int) -> UnsafeMutablePointer<Float> { stagingSpare.reserve(count) }

    /// A buffer of at least `count` floats for work beside the plan (exit heads), kept and
    /// grown with the workspace.
    func auxiliary(_ count: Int) -> UnsafeMutablePointer<Float> { auxiliarySpare.reserve(count) }

    deinit {
        arena.deallocate()
        scratch.deallocate()
        auxiliarySpare.buffer?.deallocate()
        stagingSpare.buffer?.deallocate()
    }

    /// Bytes held by this workspace.
    var byteCount: Int { (arenaCount + scratchCount + stagingSpare.count + auxiliarySpare.count) * MemoryLayout<Float>.stride + perThread.map(\.byteCount).reduce(0, +) }
}
