import CSelfXitABI
import FoundationEssentials
import Glibc
import SelfXit

// sx_engine_options_init, sx_engine_create*, sx_engine_destroy, sx_engine_info.

private let defaultEngineOptions: sx_engine_options = {
    var options = sx_engine_options()
    options.struct_size = UInt32(MemoryLayout<sx_engine_options>.size)
    options.threads = 0
    options.max_batch = 1024
    options.collection_budget_bytes = 64 << 20
    options.seed = 0
    options.input_shape = nil
    options.input_rank = 0
    options.max_pending = 64
    options.non_finite_inputs = 0
    options.teacher = nil
    options.watched_classes = nil
    options.miss_budgets = nil
    options.warn_thresholds = nil
    options.num_watched = 0
    options.warning_budgets = nil
    return options
}()

@_cdecl("sx_engine_options_init")
public func sx_engine_options_init(_ options: UnsafeMutablePointer<sx_engine_options>?) {
    options?.pointee = defaultEngineOptions
}

private func makeEngine(_ options: UnsafePointer<sx_engine_options>?, _ out: UnsafeMutablePointer<OpaquePointer?>?,
                        _ load: (EngineOptions) throws -> Engine) throws {
    guard let out else { throw CABIError.invalid("engine (the out-pointer) is NULL") }
    out.pointee = nil
    let raw = try readVersioned(options, defaults: defaultEngineOptions, name: "options")
    guard raw.threads <= ThreadPool.maxThreads else { throw CABIError.invalid("threads must be at most \(ThreadPool.maxThreads), got \(raw.threads)") }
    guard raw.max_batch >= 1, raw.max_batch <= 1 << 20 else { throw CABIError.invalid("max_batch must be in 1...1048576, got \(raw.max_batch)") }
    guard raw.max_pending >= 1, raw.max_pending <= 1 << 16 else { throw CABIError.invalid("max_pending must be in 1...65536, got \(raw.max_pending)") }
    guard raw.collection_budget_bytes <= UInt64(Int.max) else { throw CABIError.invalid("collection_budget_bytes is too large") }
    guard raw.non_finite_inputs <= 1 else {
        throw CABIError.invalid("non_finite_inputs must be 0 (refuse) or 1 (propagate), got \(raw.non_finite_inputs)")
    }
    var inputShape: [Int]?
    if raw.input_rank > 0 {
        guard let shape = raw.input_shape, raw.input_rank <= Int(SX_MAX_RANK) else {
            throw CABIError.invalid("input_shape is NULL or input_rank exceeds \(SX_MAX_RANK)")
        }
        inputShape = try (0..<raw.input_rank).map {
            guard shape[$0] > 0, shape[$0] < 1 << 20 else { throw CABIError.invalid("input_shape[\($0)] = \(shape[$0]) is out of range") }
            return Int(shape[$0])
        }
    }
    let threads = raw.threads == 0 ? ProcessInfo.processInfo.activeProcessorCount : Int(raw.threads)
    let engineOptions = EngineOptions(threads: max(1, min(threads, ThreadPool.maxThreads)), inputShape: inputShape, maxBatch: Int(raw.max_batch),
                                      collectionBudgetBytes: Int(raw.collection_budget_bytes), seed: raw.seed,
                                      nonFiniteInputs: raw.non_finite_inputs == 1 ? .propagate : .refuse)
    var withTeacher = engineOptions
    try readTeacherOptions(raw, into: &withTeacher)
    let engine = try load(withTeacher)
    out.pointee = HandleRegistry.register(EngineHandle(engine: engine, maxPending: Int(raw.max_pending)))
}

@_cdecl("sx_engine_create")
public func sx_engine_create(_ path: UnsafePointer<CChar>?, _ options: UnsafePointer<sx_engine_options>?,
                             _ engine: UnsafeMutablePointer<OpaquePointer?>?) -> sx_status {
    guarded("sx_engine_create") {
        engine?.pointee = nil
        guard let path else { throw CABIError.invalid("path is NULL") }
        let file = String(cString: path)
        try makeEngine(options, engine) { try Engine(contentsOf: URL(fileURLWithPath: file), options: $0) }
    }
}

@_cdecl("sx_engine_create_from_memory")
public func sx_engine_create_from_memory(_ bytes: UnsafeRawPointer?, _ size: Int, _ options: UnsafePointer<sx_engine_options>?,
                                         _ engine: UnsafeMutablePointer<OpaquePointer?>?) -> sx_status {
    guarded("sx_engine_create_from_memory") {
        engine?.pointee = nil
        guard let bytes else { throw CABIError.invalid("bytes is NULL") }
        guard size > 0 else { throw CABIError.invalid("size is 0") }
        let copy = [UInt8](UnsafeRawBufferPointer(start: bytes, count: size))
        try makeEngine(options, engine) { try Engine(modelBytes: copy, options: $0) }
    }
}

@_cdecl("sx_engine_destroy")
public func sx_engine_destroy(_ engine: OpaquePointer?) -> sx_status {
    guarded("sx_engine_destroy") {
        guard let engine else { return }
        let handle = try HandleRegistry.with(engine) { handle -> EngineHandle in
            guard !CallbackScope.contains(handle) else { throw CABIError.busy("an engine cannot be destroyed from inside its own callback") }
            return handle
        }
        // BUSY (nothing freed) when this thread is another engine's worker that this engine's
        // worker is waiting for: the drain would deadlock both (see WaitGraph).
        try handle.drainAndStop()
        // A background exit build holds the engine: cancel it and wait (issue 16).
        handle.engine.shutDownExitBuilds()
        HandleRegistry.unregister(engine, ownCalls: 0)
    }
}

@_cdecl("sx_engine_info")
public func sx_engine_info(_ engine: OpaquePointer?, _ info: UnsafeMutablePointer<sx_info>?) -> sx_status {
    guarded("sx_engine_info") {
        try HandleRegistry.with(engine) { handle in
            let e = handle.engine
            var result = sx_info()
            result.struct_size = UInt32(MemoryLayout<sx_info>.size)
            result.input_rank = e.inputShape.count
            withUnsafeMutableBytes(of: &result.input_shape) { raw in
                let dims = raw.bindMemory(to: Int64.self)
                for (axis, dim) in e.inputShape.prefix(dims.count).enumerated() { dims[axis] = Int64(dim) }
            }
            result.input_size = e.inputCount
            result.num_classes = e.answerClasses
            result.backbone_flops = UInt64(e.backboneFLOPs)
            result.num_candidates = UInt32(e.candidateCount)
            result.num_trained_exits = UInt32(e.trainedExitCount)
            result.num_active_exits = UInt32(e.activeExitCount)
            result.exits_enabled = e.exitsEnabled ? 1 : 0
            result.collected_samples = UInt64(e.collectedSampleCount)
            result.input_has_batch_axis = e.inputHasBatchAxis ? 1 : 0
            result.has_runtime_shapes = e.hasRunTimeShapedTail ? 1 : 0
            try writeVersioned(result, to: info, name: "info")
        }
    }
}

/// sx_engine_options.teacher and the watched classes into `options` (issue 12).
private func readTeacherOptions(_ raw: sx_engine_options, into options: inout EngineOptions) throws {
    if let spec = raw.teacher { options.teacher = try Teacher(spec: String(cString: spec)) }
    guard raw.num_watched > 0 else { return }
    guard raw.num_watched <= 1 << 16 else { throw CABIError.invalid("num_watched \(raw.num_watched) is too large") }
    guard let classes = raw.watched_classes else { throw CABIError.invalid("watched_classes is NULL but num_watched is \(raw.num_watched)") }
    options.watched = (0..<raw.num_watched).map { i in
        let threshold = raw.warn_thresholds.map { $0[i] }
        let warningBudget = raw.warning_budgets.map { $0[i] }
        return WatchedClass(classIndex: Int(classes[i]), missBudget: raw.miss_budgets.map { $0[i] } ?? 0.005,
                            warnThreshold: threshold.flatMap { $0 > 0 ? $0 : nil },
                            warningBudget: warningBudget.flatMap { $0 > 0 || $0.isNaN ? $0 : nil })
    }
}
