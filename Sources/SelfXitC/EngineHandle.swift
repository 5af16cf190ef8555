import CSelfXitABI
import FoundationEssentials
import Glibc
import SelfXit

/// What an `sx_engine *` points to: the Swift engine plus the C-side machinery — the async
/// request queue and its worker thread, and the bookkeeping that lets `sx_engine_destroy`
/// wait for in-flight work and refuse to run inside the engine's own callbacks.
///
/// The worker is a joinable pthread (not a Foundation `Thread`, which cannot report that the
/// OS refused to start it): `drainAndStop` joins it, so the handle outlives its worker.
final class EngineHandle: @unchecked Sendable {
    let engine: Engine
    let maxPending: Int

    private struct Request {
        let ticket: UInt64
        /// A copy of the caller's input (`count` floats, malloc'd; freed once the request ran).
        let input: UnsafeMutablePointer<Float>
        let count: Int
        let batch: Int
        let callback: sx_result_fn
        let userData: UnsafeMutableRawPointer?
    }

    private let condition = PosixCondition()
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
    private var worker: pthread_t?
    /// The graph outputs' names as C strings (sx_output_describe), owned until the handle goes.
    let outputNames: [UnsafeMutablePointer<CChar>?]

    init(engine: Engine, maxPending: Int) {
        self.engine = engine
        self.maxPending = maxPending
        outputNames = engine.outputInfos.map { strdup($0.name) }
        // The lazily made globals the worker and callbacks share, made here, before this
        // engine's worker or any caller of it can exist: swift_once inside the (statically
        // linked, uninstrumented) Swift runtime is correct but invisible to ThreadSanitizer,
        // which otherwise reports two threads' first use of them as a race.
        CallbackScope.prepare()
        WaitGraph.prepare()
    }

    deinit {
        // Only reached after drainAndStop (sx_engine_destroy) or for a handle never registered.
        for request in queue { free(request.input) }
        for name in outputNames { free(name) }
    }

    // MARK: Async requests

    /// Queues a copy of `input`. Throws OUT_OF_MEMORY when the copy cannot be allocated or the
    /// OS refuses the worker thread (started with the first request); nothing is queued then.
    func enqueue(input: UnsafeBufferPointer<Float>, batch: Int, callback: @escaping sx_result_fn, userData: UnsafeMutableRawPointer?) throws -> UInt64 {
        // Copied before taking the lock: a large batch must not hold up the worker or sx_wait.
        let (bytes, overflow) = max(input.count, 1).multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
        guard !overflow, let raw = malloc(bytes) else {
            throw CABIError(status: SX_ERR_OUT_OF_MEMORY, message: "could not allocate \(overflow ? "the" : "\(bytes) bytes for a") copy of the input of a batch of \(batch)")
        }
        let copy = raw.bindMemory(to: Float.self, capacity: max(input.count, 1))
        if let source = input.baseAddress { copy.update(from: source, count: input.count) }
        var queued = false
        defer { if !queued { free(copy) } }

        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { throw CABIError(status: SX_ERR_WRONG_STATE, message: "the engine is being destroyed") }
        guard queue.count < maxPending else { throw CABIError.busy("\(maxPending) requests are already queued (max_pending)") }
        if worker == nil { worker = try startWorker() }
        let ticket = nextTicket
        nextTicket += 1
        queue.append(Request(ticket: ticket, input: copy, count: input.count, batch: batch, callback: callback, userData: userData))
        queued = true
        condition.broadcast()
        return ticket
    }

    private func startWorker() throws -> pthread_t {
        var thread = pthread_t()
        // Unretained: the handle is released only after drainAndStop has joined this thread.
        let rc = pthread_create(&thread, nil, { arg in
            Unmanaged<EngineHandle>.fromOpaque(arg!).takeUnretainedValue().serve()
            return nil
        }, Unmanaged.passUnretained(self).toOpaque())
        guard rc == 0 else {
            throw CABIError(status: SX_ERR_OUT_OF_MEMORY, message: "could not start the engine's worker thread: pthread_create failed (\(String(cString: strerror(rc))))")
        }
        return thread
    }

    /// Waits until `ticket` has finished; false on timeout. timeoutMilliseconds < 0: forever.
    /// Throws the request's own error if it failed while running, and BUSY (waiting nowhere)
    /// when called on another engine's worker that this engine's worker is waiting for,
    /// directly or through other engines' workers — the wait would never end (`WaitGraph`).
    func wait(ticket: UInt64, timeoutMilliseconds: Int64) throws -> Bool {
        condition.lock()
        guard ticket >= 1, ticket < nextTicket else {
            condition.unlock()
            throw CABIError.invalid("ticket \(ticket) was never issued by this engine")
        }
        let done = finishedThrough >= ticket
        condition.unlock()
        if !done {
            guard timeoutMilliseconds != 0 else { return false }
            let finished = try WaitGraph.blocking(on: self, "sx_wait") { () -> Bool in
                condition.lock()
                defer { condition.unlock() }
                if timeoutMilliseconds < 0 {
                    while finishedThrough < ticket { condition.wait() }
                } else {
                    let deadline = MonotonicClock.deadline(afterMilliseconds: timeoutMilliseconds)
                    while finishedThrough < ticket {
                        if !condition.wait(untilNanoseconds: deadline) { break }
                    }
                }
                return finishedThrough >= ticket
            }
            if !finished { return false }
        }
        condition.lock()
        defer { condition.unlock() }
        if let failure = failures[ticket] { throw failure }
        return true
    }

    private func serve() {
        WaitGraph.enterWorker(self)
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
            free(request.input)
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
            try deliver(input: UnsafeBufferPointer(start: request.input, count: request.count), batch: request.batch,
                        ticket: request.ticket, callback: request.callback, userData: request.userData)
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
    func deliver(input: UnsafeBufferPointer<Float>, batch: Int, ticket: UInt64, labels: [Int]? = nil, callback: sx_result_fn,
                 userData: UnsafeMutableRawPointer?) throws {
        let onResult: (ExitResult) -> Void = { result in
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
            switch result.kind {
            case .answer: break
            case .warning: record.flags |= SX_RESULT_WARNING
            case .confirmation: record.flags |= SX_RESULT_CONFIRMATION
            case .exitPrediction: record.flags |= SX_RESULT_EXIT_PREDICTION
            }
            CallbackScope.enter(self)
            callback(&record, userData)
            CallbackScope.leave(self)
        }
        if let labels {
            try engine.submit(input, batch: batch, labels: labels, onResult: onResult)
        } else {
            try engine.submit(input, batch: batch, onResult: onResult)
        }
    }

    /// Stops the worker after the queue drains and joins it. Throws BUSY, changing nothing,
    /// when the calling thread is another engine's worker that this engine's worker is
    /// (directly or through others) waiting for (`WaitGraph`): the drain would never end.
    func drainAndStop() throws {
        try WaitGraph.blocking(on: self, "sx_engine_destroy") {
            condition.lock()
            stopping = true
            condition.broadcast()
            let last = nextTicket - 1
            while finishedThrough < last { condition.wait() }
            let thread = worker
            worker = nil
            condition.unlock()
            // The queue is empty and stopping is set: the worker is on its way out.
            if let thread { pthread_join(thread, nil) }
        }
    }
}

/// Which engines' callbacks are running on the current thread (a callback may itself
/// submit to another engine, so it is a list), and whose worker the thread is.
enum CallbackScope {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { raw in
            if let raw { Unmanaged<Box>.fromOpaque(raw).release() }
        }
        return key
    }()

    private final class Box {
        var handles: [ObjectIdentifier] = []
        var workerOf: ObjectIdentifier?
    }

    private static var box: Box {
        if let raw = pthread_getspecific(key) { return Unmanaged<Box>.fromOpaque(raw).takeUnretainedValue() }
        let box = Box()
        pthread_setspecific(key, Unmanaged.passRetained(box).toOpaque())
        return box
    }

    /// Makes the thread-local key (see `EngineHandle.init`).
    static func prepare() { _ = key }

    static func enter(_ handle: EngineHandle) { box.handles.append(ObjectIdentifier(handle)) }
    static func leave(_ handle: EngineHandle) { _ = box.handles.popLast() }
    static func contains(_ handle: EngineHandle) -> Bool { box.handles.contains(ObjectIdentifier(handle)) }

    /// The engine whose async worker the current thread is (nil on any other thread).
    static var workerOf: ObjectIdentifier? {
        get { box.workerOf }
        set { box.workerOf = newValue }
    }
}

/// Which engine workers are blocked waiting for which other engine's worker, so that a wait
/// that would close a cycle — and so never end — is refused with SX_ERR_BUSY instead.
///
/// Only worker threads get an edge: a worker runs `sx_submit_async` callbacks, and a callback
/// may call `sx_wait` or `sx_engine_destroy` on another engine, blocking the worker until that
/// engine's worker gets through its queue. If that worker is itself (directly or through
/// others) blocked on the first, neither ever moves on. Any other thread — a host thread,
/// even one inside an `sx_submit` callback — holds nothing a worker waits for, so its waits
/// need no edge and are never refused. The check and the edge are made under one lock, so
/// of two workers that would wait on each other the second is refused and the first waits
/// until the second's callback returns.
enum WaitGraph {
    private static let lock = PosixLock()
    private static var waitingOn: [ObjectIdentifier: ObjectIdentifier] = [:]

    /// Makes the lock and the table (see `EngineHandle.init`).
    static func prepare() { lock.lock(); _ = waitingOn.count; lock.unlock() }

    /// Marks the current thread as `handle`'s worker (called once, when it starts).
    static func enterWorker(_ handle: EngineHandle) { CallbackScope.workerOf = ObjectIdentifier(handle) }

    /// Runs `wait` (which blocks until `target`'s worker makes progress) unless the calling
    /// worker would then wait on itself; `function` names the call in the BUSY message.
    static func blocking<T>(on target: EngineHandle, _ function: String, _ wait: () throws -> T) throws -> T {
        guard let me = CallbackScope.workerOf else { return try wait() }
        let them = ObjectIdentifier(target)
        lock.lock()
        var cursor: ObjectIdentifier? = them
        while let engine = cursor {
            if engine == me {
                lock.unlock()
                throw CABIError.busy("\(function) from inside an sx_submit_async callback would deadlock: the engine waited on "
                    + "is itself waiting (inside its own callback) for the engine whose callback this is")
            }
            cursor = waitingOn[engine]
        }
        waitingOn[me] = them
        lock.unlock()
        defer {
            lock.lock()
            waitingOn[me] = nil
            lock.unlock()
        }
        return try wait()
    }
}

/// Live handles, so a NULL, destroyed or foreign pointer is an error and not a crash (as far
/// as a C library can tell: a pointer is checked against the engines it handed out).
enum HandleRegistry {
    private static let lock = PosixLock()
    private static var live: [UnsafeMutableRawPointer: (handle: EngineHandle, calls: Int)] = [:]
    private static let idle = PosixCondition()

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
            idle.wait(untilNanoseconds: MonotonicClock.deadline(afterMilliseconds: 10))
        }
        idle.unlock()
        Unmanaged<EngineHandle>.fromOpaque(key).release()
    }
}
