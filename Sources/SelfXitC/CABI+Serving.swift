import CSelfXitABI
import FoundationEssentials
import Glibc
import SelfXit

// Issue 16: sx_update_exits_async, sx_cancel_exit_build, sx_wait_exit_build,
// sx_serving_options_init, sx_configure_serving, sx_get_serving_stats_json.

/// sx_update_options → ExitBuildOptions (ranges are checked by ExitBuildOptions.validated()).
func exitBuildOptions(_ options: UnsafePointer<sx_update_options>?, handle: EngineHandle, background: Bool) throws -> ExitBuildOptions {
    let raw = try readVersioned(options, defaults: defaultUpdateOptions, name: "options")
    guard raw.memory_budget_bytes <= UInt64(Int.max), raw.search_budget <= 1000 else {
        throw CABIError.invalid("memory_budget_bytes or search_budget out of range")
    }
    var result = ExitBuildOptions(
        tolerance: raw.tolerance, searchBudget: Int(raw.search_budget), seed: raw.seed,
        memoryBudgetBytes: Int(raw.memory_budget_bytes), trainFraction: raw.train_fraction,
        validationFraction: raw.validation_fraction, minimumSamples: Int(raw.min_samples), epochs: Int(raw.epochs),
        onProgress: ProgressCallback(raw.progress, raw.progress_user_data, handle: handle)?.handler)
    switch raw.threshold_rule {
    case SX_THRESHOLD_POINT: result.thresholdRule = .point
    case SX_THRESHOLD_GUARANTEED: result.thresholdRule = .guaranteed(delta: raw.guarantee_delta)
    default: throw CABIError.invalid("threshold_rule must be SX_THRESHOLD_POINT (0) or SX_THRESHOLD_GUARANTEED (1), got \(raw.threshold_rule)")
    }
    switch raw.cost_model {
    case SX_COST_FLOPS: result.costModel = .flops
    case SX_COST_MEASURED: result.costModel = .measured
    default: throw CABIError.invalid("cost_model must be SX_COST_FLOPS (0) or SX_COST_MEASURED (1), got \(raw.cost_model)")
    }
    guard raw.keep_order <= 1 else { throw CABIError.invalid("keep_order must be 0 or 1, got \(raw.keep_order)") }
    result.keepOrder = raw.keep_order == 1
    guard raw.threads <= 256 else { throw CABIError.invalid("threads must be at most 256, got \(raw.threads)") }
    result.threads = raw.threads == 0 ? (background ? 1 : nil) : Int(raw.threads)
    return result
}

@_cdecl("sx_update_exits_async")
public func sx_update_exits_async(_ engine: OpaquePointer?, _ options: UnsafePointer<sx_update_options>?) -> sx_status {
    guarded("sx_update_exits_async") {
        try HandleRegistry.with(engine) { handle in
            try handle.engine.startExitBuild(try exitBuildOptions(options, handle: handle, background: true))
        }
    }
}

@_cdecl("sx_cancel_exit_build")
public func sx_cancel_exit_build(_ engine: OpaquePointer?) -> sx_status {
    guarded("sx_cancel_exit_build") {
        try HandleRegistry.with(engine) { try $0.engine.cancelExitBuild() }
    }
}

@_cdecl("sx_wait_exit_build")
public func sx_wait_exit_build(_ engine: OpaquePointer?, _ timeoutMilliseconds: Int64) -> sx_status {
    guarded("sx_wait_exit_build") {
        try HandleRegistry.with(engine) { handle in
            // The build's own callbacks run on its thread: waiting there would never end.
            guard !(CallbackScope.contains(handle) && handle.engine.exitBuildRunning) else {
                throw CABIError.busy("sx_wait_exit_build called from one of this engine's callbacks while a build runs")
            }
            let done = handle.engine.waitForExitBuild(timeoutSeconds: timeoutMilliseconds < 0 ? nil : Double(timeoutMilliseconds) / 1000)
            guard done else { throw CABIError(status: SX_ERR_TIMEOUT, message: "the background exit build is still running after \(timeoutMilliseconds) ms") }
            if let failure = handle.engine.lastExitBuildError { throw failure }
        }
    }
}

private let defaultServingOptions: sx_serving_options = {
    let swift = ExitServingOptions()
    var options = sx_serving_options()
    options.struct_size = UInt32(MemoryLayout<sx_serving_options>.size)
    options.audit_rate = swift.auditRate
    options.seed = swift.seed
    options.guard_enabled = swift.guardEnabled ? 1 : 0
    options.guard_delta = swift.guardDelta
    options.rebuild_on_guard_trip = swift.rebuildOnGuardTrip ? 1 : 0
    options.rebuild_after_collected = UInt64(swift.rebuildAfterCollected)
    options.restart_collection_on_trip = swift.restartCollectionOnTrip ? 1 : 0
    options.guard_window = UInt32(swift.guardWindow)
    options.guard_prior_frames = UInt32(swift.guardPriorFrames)
    options.collect_after_trip = UInt64(swift.collectAfterTrip)
    return options
}()

@_cdecl("sx_serving_options_init")
public func sx_serving_options_init(_ options: UnsafeMutablePointer<sx_serving_options>?) {
    options?.pointee = defaultServingOptions
}

/// The host's sx_event_fn as an `ExitServingOptions.onEvent` handler. Weak: the engine holds
/// its options, and the handle holds the engine.
private struct EventCallback: @unchecked Sendable {
    let function: sx_event_fn
    let userData: UnsafeMutableRawPointer?
    weak var handle: EngineHandle?

    var handler: @Sendable (ExitServingEvent) -> Void {
        { event in
            var report = sx_event()
            report.struct_size = UInt32(MemoryLayout<sx_event>.size)
            report.kind = eventKindNames[event.kind]
            report.exit_index = Int32(clamping: event.exitIndex)
            if let handle { CallbackScope.enter(handle) }
            defer { if let handle { CallbackScope.leave(handle) } }
            event.message.withCString { message in
                report.message = message
                withUnsafePointer(to: &report) { function($0, userData) }
            }
        }
    }
}

private let eventKindNames: [ExitServingEvent.Kind: UnsafePointer<CChar>] = Dictionary(
    uniqueKeysWithValues: [ExitServingEvent.Kind.guardTripped, .rebuildStarted, .rebuildSucceeded, .rebuildCancelled, .rebuildFailed]
        .map { ($0, UnsafePointer(strdup($0.rawValue)!)) })

@_cdecl("sx_configure_serving")
public func sx_configure_serving(_ engine: OpaquePointer?, _ options: UnsafePointer<sx_serving_options>?) -> sx_status {
    guarded("sx_configure_serving") {
        try HandleRegistry.with(engine) { handle in
            let raw = try readVersioned(options, defaults: defaultServingOptions, name: "options")
            guard raw.rebuild_after_collected <= UInt64(Int.max), raw.collect_after_trip <= UInt64(Int.max) else {
                throw CABIError.invalid("rebuild_after_collected or collect_after_trip out of range")
            }
            var rebuild = try exitBuildOptions(raw.rebuild_options, handle: handle, background: true)
            if raw.rebuild_options == nil { rebuild.threads = 1 }
            let event = raw.on_event.map { EventCallback(function: $0, userData: raw.event_user_data, handle: handle).handler }
            try handle.engine.configureServing(ExitServingOptions(
                auditRate: raw.audit_rate, seed: raw.seed, guardEnabled: raw.guard_enabled != 0, guardDelta: raw.guard_delta,
                guardWindow: Int(raw.guard_window), guardPriorFrames: Int(raw.guard_prior_frames),
                rebuildOnGuardTrip: raw.rebuild_on_guard_trip != 0, collectAfterTrip: Int(raw.collect_after_trip),
                rebuildAfterCollected: Int(raw.rebuild_after_collected),
                restartCollectionOnTrip: raw.restart_collection_on_trip != 0, rebuildOptions: rebuild, onEvent: event))
        }
    }
}

@_cdecl("sx_get_serving_stats_json")
public func sx_get_serving_stats_json(_ engine: OpaquePointer?, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int,
                                      _ needed: UnsafeMutablePointer<Int>?) -> sx_status {
    guarded("sx_get_serving_stats_json") {
        try HandleRegistry.with(engine) { handle in
            try writeString(handle.engine.servingStatsJSON(), to: buffer, capacity: capacity, needed: needed)
        }
    }
}
