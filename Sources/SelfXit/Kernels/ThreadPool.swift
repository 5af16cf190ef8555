#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A fixed set of persistent worker threads that run `parallelFor` jobs.
///
/// Built on pthreads, mutexes and condition variables (not Swift concurrency), so it may be
/// driven from arbitrary C threads. The calling thread takes part in every job. Concurrent
/// callers from different threads are serialized: one job runs at a time.
///
/// Precondition: `parallelFor` must not be called from inside a `body` (not reentrant).
public final class ThreadPool: @unchecked Sendable {
    /// Number of threads that execute a job, the caller included.
    public let threadCount: Int
    private let state: PoolState
    private var callerLock = pthread_mutex_t()

    /// Creates a pool of `threadCount` threads (clamped to at least 1); `threadCount - 1`
    /// workers are spawned, so a pool of 1 runs every job inline and spawns nothing.
    public init(threadCount: Int) {
        self.threadCount = max(1, threadCount)
        state = PoolState()
        pthread_mutex_init(&callerLock, nil)
        for _ in 1..<self.threadCount {
            let box = Unmanaged.passRetained(state).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { arg in
                let state = Unmanaged<PoolState>.fromOpaque(arg!).takeRetainedValue()
                state.workerLoop()
                return nil
            }, box)
            precondition(rc == 0, "pthread_create failed: \(rc)")
            pthread_detach(thread)
        }
    }

    deinit {
        state.shutDown()
        pthread_mutex_destroy(&callerLock)
    }

    /// Calls `body(i)` exactly once for every `i` in `0..<count`, spread over the pool's threads,
    /// and returns when all calls have finished. Indices are handed out dynamically, so callers
    /// that need per-thread scratch should use the index (not the executing thread) to pick it.
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        if threadCount == 1 || count == 1 {
            for i in 0..<count { body(i) }
            return
        }
        pthread_mutex_lock(&callerLock)
        defer { pthread_mutex_unlock(&callerLock) }
        withoutActuallyEscaping(body) { body in
            state.run(count: count, helpers: min(threadCount, count) - 1, body: body)
        }
    }
}

/// Shared state between a pool and its workers; workers hold it, not the pool, so the pool can deinit.
private final class PoolState: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var wake = pthread_cond_t()
    private var finished = pthread_cond_t()
    /// Bumped under `mutex` for each job; workers spin on it briefly before sleeping.
    private let generation = Atomic<Int>(0)
    private let nextIndex = Atomic<Int>(0)
    /// Workers still inside the current job; the caller waits for it to reach 0.
    private let busyWorkers = Atomic<Int>(0)
    private var body: ((Int) -> Void)?
    private var count = 0
    /// How many workers may join the current job (jobs smaller than the pool leave the rest asleep).
    private var seats = 0
    private var stopping = false

    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&wake, nil)
        pthread_cond_init(&finished, nil)
    }

    deinit {
        pthread_cond_destroy(&wake)
        pthread_cond_destroy(&finished)
        pthread_mutex_destroy(&mutex)
    }

    func run(count: Int, helpers: Int, body: @escaping (Int) -> Void) {
        pthread_mutex_lock(&mutex)
        self.body = body
        self.count = count
        seats = helpers
        nextIndex.store(0, ordering: .relaxed)
        busyWorkers.store(0, ordering: .relaxed)
        generation.add(1, ordering: .releasing)
        pthread_cond_broadcast(&wake)
        pthread_mutex_unlock(&mutex)

        drain(body, count)

        // Every index has been claimed; wait for the workers still running theirs. Spin first
        // (they usually finish about now), then close the remaining seats and sleep.
        var spins = 0
        while busyWorkers.load(ordering: .acquiring) != 0 && spins < 20_000 { spins += 1 }
        pthread_mutex_lock(&mutex)
        seats = 0
        self.body = nil
        while busyWorkers.load(ordering: .acquiring) != 0 { pthread_cond_wait(&finished, &mutex) }
        pthread_mutex_unlock(&mutex)
    }

    private func drain(_ body: (Int) -> Void, _ count: Int) {
        while true {
            let i = nextIndex.wrappingAdd(1, ordering: .relaxed).oldValue
            if i >= count { return }
            body(i)
        }
    }

    func workerLoop() {
        var seen = 0
        while true {
            // Spin a little: per-layer jobs arrive back to back, and a condvar wakeup costs tens of µs.
            var spins = 0
            while generation.load(ordering: .acquiring) == seen && spins < 20_000 { spins += 1 }
            pthread_mutex_lock(&mutex)
            while generation.load(ordering: .acquiring) == seen && !stopping {
                pthread_cond_wait(&wake, &mutex)
            }
            if stopping { pthread_mutex_unlock(&mutex); return }
            seen = generation.load(ordering: .acquiring)
            guard seats > 0 else { pthread_mutex_unlock(&mutex); continue }
            seats -= 1
            busyWorkers.add(1, ordering: .relaxed)
            // Held only until drained: the caller's closure must not outlive its withoutActuallyEscaping.
            var job = body
            let count = self.count
            pthread_mutex_unlock(&mutex)

            drain(job!, count)
            job = nil

            pthread_mutex_lock(&mutex)
            if busyWorkers.subtract(1, ordering: .releasing).newValue == 0 { pthread_cond_signal(&finished) }
            pthread_mutex_unlock(&mutex)
        }
    }

    func shutDown() {
        pthread_mutex_lock(&mutex)
        stopping = true
        pthread_cond_broadcast(&wake)
        pthread_mutex_unlock(&mutex)
    }
}
