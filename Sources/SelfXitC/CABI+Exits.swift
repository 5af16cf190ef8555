import CSelfXitABI
import FoundationEssentials
import Glibc
import SelfXit

// sx_update_options_init, sx_update_exits, sx_set_exits_enabled, sx_save_exits, sx_load_exits.

let defaultUpdateOptions: sx_update_options = {
    let swift = ExitBuildOptions()
    var options = sx_update_options()
    options.struct_size = UInt32(MemoryLayout<sx_update_options>.size)
    options.tolerance = swift.tolerance
    options.search_budget = UInt32(swift.searchBudget)
    options.seed = swift.seed
    options.memory_budget_bytes = UInt64(swift.memoryBudgetBytes)
    options.train_fraction = swift.trainFraction
    options.validation_fraction = swift.validationFraction
    options.min_samples = UInt32(swift.minimumSamples)
    options.epochs = UInt32(swift.epochs)
    options.keep_order = 0
    options.threshold_rule = SX_THRESHOLD_POINT
    options.guarantee_delta = ExitThresholdRule.defaultDelta
    options.cost_model = SX_COST_FLOPS
    options.threads = 0
    return options
}()

@_cdecl("sx_update_options_init")
public func sx_update_options_init(_ options: UnsafeMutablePointer<sx_update_options>?) {
    options?.pointee = defaultUpdateOptions
}

@_cdecl("sx_update_exits")
public func sx_update_exits(_ engine: OpaquePointer?, _ options: UnsafePointer<sx_update_options>?) -> sx_status {
    guarded("sx_update_exits") {
        try HandleRegistry.with(engine) { handle in
            _ = try handle.engine.updateExits(try exitBuildOptions(options, handle: handle, background: false))
        }
    }
}

/// The host's sx_progress_fn as an `ExitBuildOptions.onProgress` handler. The build calls it
/// on the thread that called sx_update_exits only, never concurrently, so the unchecked
/// Sendable (a C pointer pair) is sound.
struct ProgressCallback: @unchecked Sendable {
    let function: sx_progress_fn
    let userData: UnsafeMutableRawPointer?
    let handle: EngineHandle

    init?(_ function: sx_progress_fn?, _ userData: UnsafeMutableRawPointer?, handle: EngineHandle) {
        guard let function else { return nil }
        self.function = function; self.userData = userData; self.handle = handle
    }

    var handler: @Sendable (ExitBuildProgress) -> ExitBuildDecision {
        { progress in
            var report = sx_progress()
            report.struct_size = UInt32(MemoryLayout<sx_progress>.size)
            report.fraction = progress.fraction
            report.stage = stageNames[progress.stage]
            // Inside the callback this engine counts as "in its own callback": destroying it
            // from there is refused (BUSY) instead of freeing what the build still uses.
            CallbackScope.enter(handle)
            defer { CallbackScope.leave(handle) }
            let answer = progress.message.withCString { message -> Int32 in
                report.message = message
                return withUnsafePointer(to: &report) { function($0, userData) }
            }
            return answer == 0 ? .proceed : .cancel
        }
    }
}

/// sx_progress.stage strings: static storage, as the header promises.
private let stageNames: [ExitBuildProgress.Stage: UnsafePointer<CChar>] = Dictionary(
    uniqueKeysWithValues: ExitBuildProgress.Stage.allCases.map { ($0, UnsafePointer(strdup($0.rawValue)!)) })

@_cdecl("sx_set_exits_enabled")
public func sx_set_exits_enabled(_ engine: OpaquePointer?, _ enabled: Int32) -> sx_status {
    guarded("sx_set_exits_enabled") {
        try HandleRegistry.with(engine) { $0.engine.setExitsEnabled(enabled != 0) }
    }
}

private func fileURL(_ path: UnsafePointer<CChar>?) throws -> URL {
    guard let path else { throw CABIError.invalid("path is NULL") }
    let string = String(cString: path)
    guard !string.isEmpty else { throw CABIError.invalid("path is empty") }
    return URL(fileURLWithPath: string)
}

@_cdecl("sx_save_exits")
public func sx_save_exits(_ engine: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> sx_status {
    guarded("sx_save_exits") {
        try HandleRegistry.with(engine) { try $0.engine.saveExits(to: try fileURL(path)) }
    }
}

@_cdecl("sx_load_exits")
public func sx_load_exits(_ engine: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> sx_status {
    guarded("sx_load_exits") {
        try HandleRegistry.with(engine) { try $0.engine.loadExits(from: try fileURL(path)) }
    }
}

@_cdecl("sx_set_all_exits")
public func sx_set_all_exits(_ engine: OpaquePointer?, _ enabled: Int32) -> sx_status {
    guarded("sx_set_all_exits") {
        try HandleRegistry.with(engine) { handle in handle.engine.setAllExitsMode(enabled != 0) }
    }
}
