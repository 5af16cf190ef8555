import FoundationEssentials
import Glibc

/// Options for loading a model.
public struct EngineOptions: Sendable {
    /// Worker threads for the kernels (the calling thread counts as one). Default: all cores.
    public var threads: Int
    /// Per-sample input shape (without the batch), for models whose file leaves spatial
    /// dimensions symbolic. nil: take it from the file.
    public var inputShape: [Int]?
    /// Largest batch one call may submit; bounds the activation arena. Default 1024.
    public var maxBatch: Int
    /// Memory for recording unlabeled traffic (inputs and backbone outputs) that exits are
    /// built from; 0 turns collection off. Default 64 MiB.
    public var collectionBudgetBytes: Int
    /// Seed of the collector's reservoir sampling.
    public var seed: UInt64
    /// NaN / ±inf in an input: refused (default) or propagated (see `NonFiniteInputs`).
    public var nonFiniteInputs: NonFiniteInputs
    /// What the exits learn from the full model's outputs (classifier, detector, host labels;
    /// see `Teacher`, paper §3.5). Default: classifier.
    public var teacher: Teacher = .classifier
    /// Classes that must not be missed, each with its miss budget (see `WatchedClass`); with any,
    /// exits warn of them early and the full model confirms (`ExitResult.kind`).
    public var watched: [WatchedClass] = []

    public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount, inputShape: [Int]? = nil, maxBatch: Int = 1024,
                collectionBudgetBytes: Int = 64 << 20, seed: UInt64 = 0, nonFiniteInputs: NonFiniteInputs = .refuse) {
        self.threads = threads
        self.inputShape = inputShape
        self.maxBatch = maxBatch
        self.collectionBudgetBytes = collectionBudgetBytes
        self.seed = seed
        self.nonFiniteInputs = nonFiniteInputs
    }
}

/// A loaded model, ready to run. Thread-safe: any number of threads may call `infer`
/// concurrently; each pass takes a workspace of its own from a pool.
public final class Engine: @unchecked Sendable {
    /// Per-sample shape of the model's input (the batch dimension excluded).
    public var inputShape: [Int] { plan.graph.values[plan.graph.input].shape }
    /// Per-sample shape of the model's (first) output.
    public var outputShape: [Int] { plan.graph.values[plan.graph.outputs[0]].shape }
    /// Floats per sample of input and of output.
    public var inputCount: Int { plan.graph.values[plan.graph.input].elementsPerSample }
    public var outputCount: Int { plan.graph.values[plan.graph.outputs[0]].elementsPerSample }
    /// FLOPs per sample of the full model.
    public let backboneFLOPs: Int
    public let options: EngineOptions
    /// FNV-1a hash of the model file's bytes: exit bundles carry it so they are never
    /// loaded into an engine of another model.
    public let modelFingerprint: UInt64

    let plan: ExecutionPlan
    let workspaces = WorkspacePool()
    /// Activation memory one pass may plan for (16 GiB of floats).
    static let maxArenaFloats = 1 << 32
    /// Where exits may attach (paper §3.1), depth order.
    let candidates: [Graph.ExitCandidate]
    /// Whether the model's output already is a probability distribution (ends in Softmax).
    let outputIsProbability: Bool
    let collector: SampleCollector
    let statistics: EngineStatistics
    /// The teacher bound to this graph, and the serving mode of watched classes (Engine+Watch).
    let teacher: ResolvedTeacher
    let servingMode = ServingModeState()
    /// Audited serving, the live guard and background builds (issue 16, Exits/ExitServing.swift).
    let serving = ExitServingMonitor()
    /// The exits in service (nil until built or loaded) and whether they are used.
    private let exitLock = PosixLock()
    private var installedExits: ExitConfiguration?
    private var exitsOn = true

    /// Loads an ONNX file. Throws `SelfXitError` for an unreadable, damaged or unsupported model.
    public convenience init(contentsOf url: URL, options: EngineOptions = EngineOptions()) throws {
        try self.init(modelBytes: try readFile(url), options: options)
    }

    /// The ONNX model in `bytes`; valid ONNX the reader does not handle is not a damaged model,
    /// and the error says which.
    private static func parse(_ bytes: [UInt8]) throws -> ONNXModel {
        do { return try ONNXModel(serializedBytes: bytes) } catch let error as ModelLoadError { throw error.asSelfXitError }
    }

    /// Loads an ONNX model from memory.
    public init(modelBytes: [UInt8], options: EngineOptions = EngineOptions()) throws {
        guard (1...ThreadPool.maxThreads).contains(options.threads) else {
            throw SelfXitError.invalidArgument("threads must be in 1...\(ThreadPool.maxThreads), got \(options.threads)")
        }
        guard (1...1 << 20).contains(options.maxBatch) else { throw SelfXitError.invalidArgument("maxBatch must be in 1...1048576, got \(options.maxBatch)") }
        guard options.collectionBudgetBytes >= 0 else { throw SelfXitError.invalidArgument("collectionBudgetBytes must not be negative") }
        modelFingerprint = fnv1a64(modelBytes)
        // The parsed model is a temporary of this one expression: gone before `fuse`, it no longer
        // shares the weight arrays the folds rewrite, so they are rewritten in place, not copied
        // (a 100 MB ResNet-50 with unfolded BatchNormalizations peaked 100 MB higher).
        var graph = try Graph(model: Self.parse(modelBytes), options: .init(inputShape: options.inputShape))
        graph.fuse()
        self.options = options
        // Throws outOfMemory when the OS refuses a kernel thread (the started ones are joined).
        plan = try ExecutionPlan(graph: graph, pool: ThreadPool(threads: options.threads))
        // The arena for the largest allowed batch must be addressable and of sane size.
        let floatsPerSample = plan.memory.floatsPerSample
        let (arenaFloats, overflow) = floatsPerSample.multipliedReportingOverflow(by: options.maxBatch)
        guard !overflow, arenaFloats <= Self.maxArenaFloats else {
            let limit = describeBytes(Self.maxArenaFloats * MemoryLayout<Float>.stride)
            let needed = overflow ? "more than \(limit)" : describeBytes(arenaFloats * MemoryLayout<Float>.stride)
            throw SelfXitError.invalidArgument("maxBatch \(options.maxBatch) needs \(needed) of activations for this model "
                + "(\(floatsPerSample) floats a sample); the limit is \(limit): lower maxBatch to at most \(Self.maxArenaFloats / max(floatsPerSample, 1))")
        }
        backboneFLOPs = graph.totalFLOPs
        candidates = graph.exitCandidates()
        if let last = graph.nodes.last, case .softmax = last.operation, last.output == graph.outputs[0] {
            outputIsProbability = true
        } else {
            outputIsProbability = false
        }
        teacher = try ResolvedTeacher(options.teacher, graph: graph, outputIsProbability: outputIsProbability)
        try teacher.validate(options.watched)
        collector = SampleCollector(inputCount: graph.values[graph.input].elementsPerSample, classes: teacher.classes,
                                    budgetBytes: options.collectionBudgetBytes, seed: options.seed)
        statistics = EngineStatistics(candidates: candidates.count)
    }

    /// The exits in service, or nil when none are built or they are switched off.
    var activeExits: ExitConfiguration? {
        exitLock.lock()
        defer { exitLock.unlock() }
        return exitsOn ? installedExits : nil
    }

    /// The built exits, whether or not they are switched on.
    var exitConfiguration: ExitConfiguration? {
        exitLock.lock()
        defer { exitLock.unlock() }
        return installedExits
    }

    func install(_ configuration: ExitConfiguration?) {
        exitLock.lock()
        installedExits = configuration
        exitLock.unlock()
        serving.reset(for: configuration)
    }

    /// Switches early exits on or off (they stay built). With exits off every sample runs
    /// the full model and is recorded for the next exit build.
    public func setExitsEnabled(_ enabled: Bool) {
        exitLock.lock()
        exitsOn = enabled
        exitLock.unlock()
    }

    public var exitsEnabled: Bool {
        exitLock.lock()
        defer { exitLock.unlock() }
        return exitsOn
    }

    /// Runs the full model on `batch` samples laid out contiguously (batch × inputCount
    /// floats) and returns the first output (batch × outputCount floats). A model whose outputs
    /// have run-time shapes (a whole detector) is refused with `invalidArgument`: `inferOutputs`.
    public func infer(_ input: UnsafeBufferPointer<Float>, batch: Int) throws -> [Float] {
        if plan.graph.tail != nil {
            throw SelfXitError.invalidArgument("infer: this model's outputs have shapes known only at run time (a whole detector); "
                + "read them with inferOutputs")
        }
        return try runFullModel(input, batch: batch) { workspace in
            Array(UnsafeBufferPointer(start: plan.pointer(plan.graph.outputs[0], in: workspace), count: batch * outputCount))
        }
    }

    /// Validates `input`, runs the whole graph on its `batch` samples in a pooled workspace (no
    /// exits, nothing recorded) and lets `read` copy what it needs out of that workspace before
    /// it goes back to the pool. Shared by `infer`, `inferOutputs` and `teacherDistributions`.
    func runFullModel<Result>(_ input: UnsafeBufferPointer<Float>, batch: Int,
                              read: (Workspace) throws -> Result) throws -> Result {
        try validate(input, batch: batch)
        let workspace = try workspaces.take(capacity: batch) { try plan.makeWorkspace(capacity: $0) }
        defer { workspaces.give(workspace) }
        let graph = plan.graph
        plan.pointer(graph.input, in: workspace).update(from: input.baseAddress!, count: batch * inputCount)
        plan.run(0..<graph.nodes.count, rows: batch, in: workspace)
        return try read(workspace)
    }

    public func infer(_ input: [Float], batch: Int) throws -> [Float] {
        try input.withUnsafeBufferPointer { try infer($0, batch: batch) }
    }

    /// Per-node time of the full model on random input at `batch`, best of `iterations`
    /// runs: (node name, operator, milliseconds), in execution order.
    public func profile(batch: Int, iterations: Int = 10) throws -> [(node: String, op: String, milliseconds: Double)] {
        guard (1...options.maxBatch).contains(batch), iterations >= 1 else { throw SelfXitError.invalidArgument("bad batch or iterations") }
        let workspace = try workspaces.take(capacity: batch) { try plan.makeWorkspace(capacity: $0) }
        defer { workspaces.give(workspace) }
        var random = SeededRandom(seed: 1)
        let input = plan.pointer(plan.graph.input, in: workspace)
        for i in 0..<(batch * inputCount) { input[i] = Float(random.uniform() * 2 - 1) }
        var best = [Double](repeating: .infinity, count: plan.graph.nodes.count)
        for _ in 0..<iterations {
            for (index, seconds) in plan.profile(rows: batch, in: workspace).enumerated() { best[index] = min(best[index], seconds) }
        }
        return plan.graph.nodes.enumerated().map { ($1.name, $1.opType, best[$0] * 1000) }
    }

    func validate(_ input: UnsafeBufferPointer<Float>, batch: Int) throws {
        guard batch >= 1 else { throw SelfXitError.invalidArgument("batch must be at least 1, got \(batch)") }
        guard batch <= options.maxBatch else { throw SelfXitError.invalidArgument("batch \(batch) exceeds maxBatch \(options.maxBatch)") }
        guard input.baseAddress != nil, input.count == batch * inputCount else {
            throw SelfXitError.shapeMismatch("input has \(input.count) floats; batch \(batch) × \(inputShape) needs \(batch * inputCount)")
        }
        try refuseNonFinite(input, batch: batch)
    }
}

/// The bytes of a model file, read straight into one array (a model file is held once, not
/// twice). Only a regular file of at most 16 GiB is read: a FIFO, device or directory is refused
/// without blocking (see `RegularFile.read`).
func readFile(_ url: URL) throws -> [UInt8] {
    try RegularFile.read(url.path, limit: 1 << 34, what: "model")
}

/// 64-bit FNV-1a over `bytes`.
func fnv1a64<Bytes: Sequence>(_ bytes: Bytes) -> UInt64 where Bytes.Element == UInt8 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
    return hash
}

/// Workspaces kept for reuse, so a steady stream of calls allocates nothing.
final class WorkspacePool: @unchecked Sendable {
    private let lock = PosixLock()
    private var idle: [Workspace] = []

    /// A workspace with room for at least `capacity` rows (the largest idle one, or a new one).
    /// When `make` runs out of memory, the idle workspaces (all too small) are dropped and it
    /// is tried once more; if that fails too, its error is thrown.
    func take(capacity: Int, make: (Int) throws -> Workspace) throws -> Workspace {
        lock.lock()
        if let index = idle.indices.max(by: { idle[$0].capacity < idle[$1].capacity }), idle[index].capacity >= capacity {
            let workspace = idle.remove(at: index)
            lock.unlock()
            return workspace
        }
        lock.unlock()
        do {
            return try make(capacity)
        } catch let error as SelfXitError {
            guard case .outOfMemory = error else { throw error }
            lock.lock()
            let hadIdle = !idle.isEmpty
            idle.removeAll()
            lock.unlock()
            guard hadIdle else { throw error }
            return try make(capacity)
        }
    }

    func give(_ workspace: Workspace) {
        lock.lock()
        defer { lock.unlock() }
        idle.append(workspace)
        // Keep the pool small: one workspace per concurrent caller is plenty; drop the smallest.
        if idle.count > 4, let smallest = idle.indices.min(by: { idle[$0].capacity < idle[$1].capacity }) {
            idle.remove(at: smallest)
        }
    }
}
