#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SelfXitGEMM
import Synchronization

/// A fixed set of persistent worker threads that run `parallelFor` jobs.
///
/// Built on pthreads and atomics (not Swift concurrency), so it may be driven from arbitrary C
/// threads. The calling thread takes part in every job. Concurrent callers from different
/// threads are serialized: one job runs at a time.
///
/// Hand-off is lock-free while workers are awake: a job is published with one atomic store, and
/// workers spin (with a `pause` hint) for `spinMicroseconds` after each job before they sleep on
/// a condition variable, so the back-to-back jobs of one inference never pay a wake-up.
/// `SELFXIT_SPIN_US` overrides the spin time (default 300 µs).
///
/// Precondition: `parallelFor` must not be called from inside a `body` (not reentrant).
package final class ThreadPool: @unchecked Sendable {
    /// Number of threads that execute a job, the caller included.
    package let threadCount: Int
    private let state: PoolState
    private var callerLock = pthread_mutex_t()

    /// The most threads a pool may have (the caller included). Beyond a few per core, threads
    /// only add hand-off cost; the cap keeps a bad option from asking the OS for thousands of
    /// 8 MiB stacks (and keeps the helper count inside the 16 bits `PoolState` gives it).
    package static let maxThreads = 256

    /// Creates a pool of `threads` threads (clamped to at least 1); `threads - 1` workers are
    /// spawned, so a pool of 1 runs every job inline and spawns nothing.
    ///
    /// Throws `SelfXitError.invalidArgument` above `maxThreads`, and `SelfXitError.outOfMemory`
    /// when the OS refuses a thread (`pthread_create` fails: no memory for its stack, or a
    /// process or cgroup thread limit); the workers already started are then stopped and
    /// joined before it throws, so nothing is left running.
    package init(threads: Int) throws {
        guard threads <= Self.maxThreads else {
            throw SelfXitError.invalidArgument("threads must be at most \(Self.maxThreads), got \(threads)")
        }
        threadCount = max(1, threads)
        state = PoolState()
        pthread_mutex_init(&callerLock, nil)
        // Joinable until every worker exists, so a failure can wait for the started ones to go.
        var started: [pthread_t] = []
        started.reserveCapacity(threadCount - 1)
        for worker in 0..<(threadCount - 1) {
            let box = Unmanaged.passRetained(WorkerStart(state: state, id: worker)).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { arg in
                let start = Unmanaged<WorkerStart>.fromOpaque(arg!).takeRetainedValue()
                start.state.workerLoop(id: start.id)
                return nil
            }, box)
            guard rc == 0 else {
                Unmanaged<WorkerStart>.fromOpaque(box).release()
                state.shutDown()
                for thread in started { pthread_join(thread, nil) }
                throw SelfXitError.outOfMemory("could not start kernel thread \(worker + 2) of \(threadCount): "
                    + "pthread_create failed (\(String(cString: strerror(rc)))); \(started.count + 1) threads were running")
            }
            started.append(thread)
        }
        for thread in started { pthread_detach(thread) }
    }

    /// A pool of one thread: runs every job on the calling thread; starts nothing, so it cannot fail.
    package static func serial() -> ThreadPool { ThreadPool(serial: ()) }

    private init(serial: ()) {
        threadCount = 1
        state = PoolState()
        pthread_mutex_init(&callerLock, nil)
    }

    deinit {
        state.shutDown()
        pthread_mutex_destroy(&callerLock)
    }

    /// Calls `body(i)` exactly once for every `i` in `0..<count`, spread over the pool's threads,
    /// and returns when all calls have finished. Indices are handed out dynamically, so callers
    /// that need per-thread scratch should use the index (not the executing thread) to pick it.
    package func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        if threadCount == 1 || count == 1 {
            for i in 0..<count { body(i) }
            return
        }
        pthread_mutex_lock(&callerLock)
        defer { pthread_mutex_unlock(&callerLock) }
        withoutActuallyEscaping(body) { body in
            state.run(count: count, helpers: min(threadCount, count) - 1, pinned: false, body: body)
        }
    }

    /// Calls `body(t)` once for every `t` in `0..<threadCount` and returns when all calls have
    /// finished; `t` is always run by the same thread (0 by the caller, `t` by worker `t − 1`),
    /// where `parallelFor` hands indices to whichever thread comes first. Kernels that split
    /// every layer the same way (by rows of the plane) so keep each part on the core whose cache
    /// holds the previous layer's part. A late worker delays the job (no other thread takes its
    /// index): the body should let threads that finish early take over unfinished work.
    /// Precondition as `parallelFor`: not called from inside a `body`.
    package func parallelForEachThread(_ body: (Int) -> Void) {
        if threadCount == 1 { body(0); return }
        pthread_mutex_lock(&callerLock)
        defer { pthread_mutex_unlock(&callerLock) }
        withoutActuallyEscaping(body) { body in
            state.run(count: threadCount, helpers: threadCount - 1, pinned: true, body: body)
        }
    }
}

private final class WorkerStart {
    let state: PoolState
    let id: Int
    init(state: PoolState, id: Int) { self.state = state; self.id = id }
}

@inline(__always)
private func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Shared state between a pool and its workers; workers hold it, not the pool, so the pool can deinit.
private final class PoolState: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var wake = pthread_cond_t()
    /// `generation << 16 | helpers`: bumped (release) once per job after the job's fields are
    /// written. Workers `0..<helpers` take part in that job; the others only note it.
    private let job = Atomic<Int>(0)
    private let nextIndex = Atomic<Int>(0)
    /// Helpers still inside the current job; the caller waits for it to reach 0 before returning,
    /// so job fields are never rewritten while a helper may read them.
    private let busy = Atomic<Int>(0)
    /// Workers asleep (or about to sleep) on `wake`; the caller only signals when this is nonzero.
    private let sleepers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private var body: ((Int) -> Void)?
    private var count = 0
    /// Index `id + 1` runs on worker `id` and index 0 on the caller (`parallelForEachThread`).
    private var pinned = false
    private let spinNanoseconds: UInt64

    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&wake, nil)
        var us: UInt64 = 300
        if let env = getenv("SELFXIT_SPIN_US"), let v = UInt64(String(cString: env)) { us = v }
        spinNanoseconds = us * 1000
    }

    deinit {
        pthread_cond_destroy(&wake)
        pthread_mutex_destroy(&mutex)
    }

    func run(count: Int, helpers: Int, pinned: Bool, body: @escaping (Int) -> Void) {
        self.body = body
        self.count = count
        self.pinned = pinned
        nextIndex.store(0, ordering: .relaxed)
        busy.store(helpers, ordering: .relaxed)
        let generation = (job.load(ordering: .relaxed) >> 16) &+ 1
        job.store((generation << 16) | helpers, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(&mutex)
            pthread_cond_broadcast(&wake)
            pthread_mutex_unlock(&mutex)
        }

        if pinned { body(0) } else { drain(body, count) }

        // Every index has been claimed; wait for the helpers still running theirs.
        if busy.load(ordering: .acquiring) != 0 {
            var spins = 0
            while busy.load(ordering: .acquiring) != 0 {
                sx_cpu_relax()
                spins += 1
                // A helper that was descheduled or shares this core: let it run.
                if spins & 255 == 0 { sched_yield() }
            }
        }
        self.body = nil
    }

    private func drain(_ body: (Int) -> Void, _ count: Int) {
        while true {
            let i = nextIndex.wrappingAdd(1, ordering: .relaxed).oldValue
            if i >= count { return }
            body(i)
        }
    }

    func workerLoop(id: Int) {
        // Jobs are published only after every worker exists, but a worker may start late: it must
        // still take part in the first job, so it starts from the initial word, not the current one.
        var seen = 0
        while true {
            // Spin: per-layer jobs arrive back to back, and a condvar wake-up costs tens of µs.
            var current = job.load(ordering: .acquiring)
            if current == seen {
                let start = monotonicNanoseconds()
                var spins = 0
                while true {
                    sx_cpu_relax()
                    current = job.load(ordering: .acquiring)
                    if current != seen { break }
                    spins += 1
                    if spins & 255 == 0 {
                        if monotonicNanoseconds() - start > spinNanoseconds { break }
                        // Every ~10 µs let a thread that shares this core (the caller, on a busy
                        // machine) run: a pure spin would hold the core for a whole time slice.
                        sched_yield()
                    }
                }
            }
            if current == seen {
                pthread_mutex_lock(&mutex)
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while true {
                    current = job.load(ordering: .sequentiallyConsistent)
                    if current != seen || stopping.load(ordering: .relaxed) { break }
                    pthread_cond_wait(&wake, &mutex)
                }
                sleepers.subtract(1, ordering: .relaxed)
                pthread_mutex_unlock(&mutex)
            }
            if stopping.load(ordering: .acquiring) { return }
            if current == seen { continue }
            seen = current
            guard id < (current & 0xFFFF) else { continue }
            // Held only until drained: the caller's closure must not outlive its withoutActuallyEscaping.
            var work = body
            if pinned {
                work!(id + 1)
            } else {
                let count = self.count
                drain(work!, count)
            }
            work = nil
            busy.subtract(1, ordering: .releasing)
        }
    }

    func shutDown() {
        pthread_mutex_lock(&mutex)
        stopping.store(true, ordering: .releasing)
        // Wake spinners too: a new generation with no helpers.
        let generation = (job.load(ordering: .relaxed) >> 16) &+ 1
        job.store(generation << 16, ordering: .sequentiallyConsistent)
        pthread_cond_broadcast(&wake)
        pthread_mutex_unlock(&mutex)
    }
}
