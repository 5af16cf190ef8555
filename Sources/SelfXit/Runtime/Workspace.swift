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

    private var stagingBuffer: UnsafeMutablePointer<Float>?
    private var stagingCount = 0

    /// A buffer of at least `count` floats for a sample-parallel run's outputs, kept and grown
    /// with the workspace (at most the batch × the widest outputs of a segment).
    func staging(_ count: Int) -> UnsafeMutablePointer<Float> {
        if let stagingBuffer, stagingCount >= count { return stagingBuffer }
        stagingBuffer?.deallocate()
        stagingCount = max(count, 16)
        let buffer = Self.allocateAligned(stagingCount)
        stagingBuffer = buffer
        return buffer
    }

    private var extra: UnsafeMutablePointer<Float>?
    private var extraCount = 0

    /// A buffer of at least `count` floats for work beside the plan (exit heads), kept and
    /// grown with the workspace so that steady traffic allocates nothing.
    func auxiliary(_ count: Int) -> UnsafeMutablePointer<Float> {
        if let extra, extraCount >= count { return extra }
        extra?.deallocate()
        extraCount = max(count, 16)
        let buffer = Self.allocateAligned(extraCount)
        extra = buffer
        return buffer
    }

    deinit {
        arena.deallocate()
        scratch.deallocate()
        extra?.deallocate()
        stagingBuffer?.deallocate()
    }

    /// Bytes held by this workspace.
    var byteCount: Int { (arenaCount + scratchCount + stagingCount) * MemoryLayout<Float>.stride + perThread.map(\.byteCount).reduce(0, +) }
}
