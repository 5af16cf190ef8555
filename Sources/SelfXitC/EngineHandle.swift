import CSelfXitABI
import Foundation
import SelfXit

/// What an `sx_engine *` points to: the Swift engine plus the C-side machinery — the async
/// request queue and its worker thread, and the bookkeeping that lets `sx_engine_destroy`
/// wait for in-flight work and refuse to run inside the engine's own callbacks.
final class EngineHandle: @unchecked Sendable {
    let engine: Engine
    let maxPending: Int

    private struct Request {
        let ticket: UInt64
        let input: [Float]
        let batch: Int
        let callback: sx_result_fn
        let userData: UnsafeMutableRawPointer?
    }

    private let condition = NSCondition()
    private var queue: [Request] = []
    private var nextTicket: UInt64 = 1
    /// Requests are served in ticket order, so "finished" is one number.
    private var finishedThrough: UInt64 = 0
    private var stopping = false
    /// Requests that failed while running, so `sx_wait` can report them; the oldest are
    /// forgotten beyond `maxRememberedFailures`.
    private var failures: [UInt64: CABIError] = [:]
    private var failureOrder: [UInt64] = []
    private let maxRememberedFailures = 1024
    private var worker: Thread?

    init(engine: Engine, maxPending: Int) {
        self.engine = engine
        self.maxPending = maxPending
    }

    // MARK: Async requests

    func enqueue(input: [Float], batch: Int, callback: @escaping sx_result_fn, userData: UnsafeMutableRawPointer?) throws -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { throw CABIError(status: SX_ERR_WRONG_STATE, message: "the engine is being destroyed") }
        guard queue.count < maxPending else { throw CABIError.busy("\(maxPending) requests are already queued (max_pending)") }
        if worker == nil {
            let thread = Thread { [unowned self] in self.serve() }
            thread.name = "selfxit-worker"
            worker = thread
            thread.start()
        }
        let ticket = nextTicket
        nextTicket += 1
        queue.append(Request(ticket: ticket, input: input, batch: batch, callback: callback, userData: userData))
        condition.broadcast()
        return ticket
    }

    /// Waits until `ticket` has finished; false on timeout. timeoutMilliseconds < 0: forever.
    /// Throws the request's own error if it failed while running.
    func wait(ticket: UInt64, timeoutMilliseconds: Int64) throws -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard ticket >= 1, ticket < nextTicket else { throw CABIError.invalid("ticket \(ticket) was never issued by this engine") }
        if timeoutMilliseconds < 0 {
            while finishedThrough < ticket { condition.wait() }
        } else {
            let deadline = Date(timeIntervalSinceNow: Double(min(timeoutMilliseconds, 1 << 40)) / 1000)
            while finishedThrough < ticket {
                if !condition.wait(until: deadline) { break }
            }
            if finishedThrough < ticket { return false }
        }
        if let failure = failures[ticket] { throw failure }
        return true
    }

    private func serve() {
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty && stopping {
                condition.unlock()
                return
            }
            let request = queue.removeFirst()
            condition.unlock()
            run(request)
            condition.lock()
            finishedThrough = request.ticket
            condition.broadcast()
            condition.unlock()
        }
    }

    private func run(_ request: Request) {
        // Inputs were validated when the request was queued; a failure while running is kept
        // for `sx_wait` on that ticket.
        let status = guarded("sx_submit_async") {
            try request.input.withUnsafeBufferPointer { input in
                try deliver(input: input, batch: request.batch, ticket: request.ticket, callback: request.callback, userData: request.userData)
            }
        }
        guard status != SX_OK else { return }
        let failure = CABIError(status: status, message: "request \(request.ticket) failed: " + String(cString: lastErrorPointer()))
        condition.lock()
        failures[request.ticket] = failure
        failureOrder.append(request.ticket)
        if failureOrder.count > maxRememberedFailures { failures[failureOrder.removeFirst()] = nil }
        condition.unlock()
    }

    /// Runs a batch and calls the C callback per sample, marking this thread as inside
    /// this engine's callback meanwhile.
    func deliver(input: UnsafeBufferPointer<Float>, batch: Int, ticket: UInt64, callback: sx_result_fn, userData: UnsafeMutableRawPointer?) throws {
        try engine.submit(input, batch: batch) { result in
            var record = sx_result()
            record.struct_size = UInt32(MemoryLayout<sx_result>.size)
            record.ticket = ticket
            record.sample_index = result.sampleIndex
            record.exit_index = Int32(result.exitIndex)
            record.class_index = Int32(result.classIndex)
            record.confidence = result.confidence
            record.probabilities = result.probabilities.baseAddress
            record.num_classes = result.probabilities.count
            record.flops = UInt64(max(result.flops, 0))
            record.latency_seconds = result.latency
            record.flags = result.nonFinite ? SX_RESULT_NON_FINITE : 0
            CallbackScope.enter(self)
            callback(&record, userData)
            CallbackScope.leave(self)
        }
    }

    /// Stops the worker after the queue drains and waits for it.
    func drainAndStop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        let last = nextTicket - 1
        while finishedThrough < last { condition.wait() }
        condition.unlock()
    }
}

/// Which engines' callbacks are running on the current thread (a callback may itself
/// submit to another engine, so it is a list).
enum CallbackScope {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { raw in
            if let raw { Unmanaged<Box>.fromOpaque(raw).release() }
        }
        return key
    }()

    private final class Box { var handles: [ObjectIdentifier] = [] }

    private static var box: Box {
        if let raw = pthread_getspecific(key) { return Unmanaged<Box>.fromOpaque(raw).takeUnretainedValue() }
        let box = Box()
        pthread_setspecific(key, Unmanaged.passRetained(box).toOpaque())
        return box
    }

    static func enter(_ handle: EngineHandle) { box.handles.append(ObjectIdentifier(handle)) }
    static func leave(_ handle: EngineHandle) { _ = box.handles.popLast() }
    static func contains(_ handle: EngineHandle) -> Bool { box.handles.contains(ObjectIdentifier(handle)) }
}

/// Live handles, so a NULL, destroyed or foreign pointer is an error and not a crash (as far
/// as a C library can tell: a pointer is checked against the engines it handed out).
enum HandleRegistry {
    private static let lock = NSLock()
    private static var live: [UnsafeMutableRawPointer: (handle: EngineHandle, calls: Int)] = [:]
    private static let idle = NSCondition()

    static func register(_ handle: EngineHandle) -> OpaquePointer {
        let pointer = Unmanaged.passRetained(handle).toOpaque()
        lock.lock()
        live[pointer] = (handle, 0)
        lock.unlock()
        return OpaquePointer(pointer)
    }

    /// Runs `body` with the handle behind `pointer`, counting the call as in flight.
    static func with<T>(_ pointer: OpaquePointer?, _ body: (EngineHandle) throws -> T) throws -> T {
        guard let pointer else { throw CABIError.invalid("engine is NULL") }
        let key = UnsafeMutableRawPointer(pointer)
        lock.lock()
        guard let entry = live[key] else {
            lock.unlock()
            throw CABIError.invalid("engine \(key) is not a live engine (destroyed, or not made by sx_engine_create)")
        }
        live[key] = (entry.handle, entry.calls + 1)
        lock.unlock()
        defer {
            lock.lock()
            if let current = live[key] { live[key] = (current.handle, current.calls - 1) }
            lock.unlock()
            idle.lock()
            idle.broadcast()
            idle.unlock()
        }
        return try body(entry.handle)
    }

    /// Removes the handle once no other call is using it (`ownCalls` are the caller's own).
    static func unregister(_ pointer: OpaquePointer, ownCalls: Int) {
        let key = UnsafeMutableRawPointer(pointer)
        idle.lock()
        while true {
            lock.lock()
            let calls = live[key]?.calls ?? 0
            if calls <= ownCalls {
                live[key] = nil
                lock.unlock()
                break
            }
            lock.unlock()
            _ = idle.wait(until: Date(timeIntervalSinceNow: 0.01))
        }
        idle.unlock()
        Unmanaged<EngineHandle>.fromOpaque(key).release()
    }
}
