#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Small replacements for what full Foundation offered (NSLock, NSCondition, DispatchTime,
// String(format:)), so the library links only FoundationEssentials and the Swift runtime can
// be linked statically into libselfxit.so without ICU (issue 15).

/// A non-recursive mutex (pthread). `package`: used by SelfXitC too, not public API.
package final class PosixLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    package init() {
        // Heap-allocated: a pthread mutex must not move, and a Swift stored struct may.
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    package func lock() { pthread_mutex_lock(mutex) }
    package func unlock() { pthread_mutex_unlock(mutex) }

    /// Runs `body` with the lock held.
    package func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A mutex with a condition variable on the monotonic clock (what NSCondition was used for):
/// `lock`, `wait`, `wait(untilNanoseconds:)`, `broadcast`, `unlock`.
package final class PosixCondition: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>

    package init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        cond = .allocate(capacity: 1)
        cond.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        // Deadlines are monotonic: a wall-clock jump must not stretch or cut a timeout.
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(cond)
        cond.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    package func lock() { pthread_mutex_lock(mutex) }
    package func unlock() { pthread_mutex_unlock(mutex) }
    package func broadcast() { pthread_cond_broadcast(cond) }
    package func signal() { pthread_cond_signal(cond) }

    /// Waits for a broadcast/signal (or a spurious wake-up); the lock must be held.
    package func wait() { pthread_cond_wait(cond, mutex) }

    /// Waits until woken or until `MonotonicClock.nanoseconds()` reaches `deadline`; false once
    /// the deadline has passed. The lock must be held.
    @discardableResult
    package func wait(untilNanoseconds deadline: UInt64) -> Bool {
        var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        return pthread_cond_timedwait(cond, mutex, &time) != ETIMEDOUT
    }
}

/// CLOCK_MONOTONIC in nanoseconds (what DispatchTime.now().uptimeNanoseconds gave).
package enum MonotonicClock {
    package static func nanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    /// `milliseconds` from now, saturating (a huge timeout is "practically forever", no trap).
    package static func deadline(afterMilliseconds milliseconds: Int64) -> UInt64 {
        let (delta, overflow) = UInt64(max(milliseconds, 0)).multipliedReportingOverflow(by: 1_000_000)
        let (sum, overflow2) = nanoseconds().addingReportingOverflow(delta)
        return overflow || overflow2 ? UInt64.max / 2 : sum
    }
}

extension Double {
    /// Fixed-point text with `digits` decimals, like `String(format: "%.<digits>f", self)`
    /// (which needs full Foundation): formatted by the C library's snprintf.
    package func fixed(_ digits: Int) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let written = buffer.withUnsafeMutableBufferPointer { pointer -> Int32 in
            withVaList([Int32(max(0, min(digits, 17))), self]) { vsnprintf(pointer.baseAddress, pointer.count, "%.*f", $0) }
        }
        guard written >= 0 else { return "\(self)" }
        if Int(written) < buffer.count { return String(cString: buffer) }
        // Huge magnitudes (up to ~1e308) need more room than 64 bytes.
        var large = [CChar](repeating: 0, count: Int(written) + 1)
        _ = large.withUnsafeMutableBufferPointer { pointer in
            withVaList([Int32(max(0, min(digits, 17))), self]) { vsnprintf(pointer.baseAddress, pointer.count, "%.*f", $0) }
        }
        return String(cString: large)
    }
}
