import XCTest
@testable import SelfXit

final class KernelThreadPoolTests: XCTestCase {
    func testEveryIndexExactlyOnce() {
        for threads in [1, 2, 3, 5] {
            let pool = ThreadPool(threadCount: threads)
            for count in [0, 1, 2, 3, 7, 100, 1000] {
                let hits = UnsafeMutablePointer<Int>.allocate(capacity: max(count, 1))
                hits.initialize(repeating: 0, count: max(count, 1))
                let lock = NSLock()
                pool.parallelFor(count) { i in lock.lock(); hits[i] += 1; lock.unlock() }
                for i in 0..<count { XCTAssertEqual(hits[i], 1, "threads \(threads) count \(count) index \(i)") }
                hits.deallocate()
            }
        }
    }

    /// `parallelForEachThread` runs every index once, each on the same thread call after call
    /// (index 0 on the caller), mixed with `parallelFor` jobs that hand indices out dynamically.
    func testEachThreadIndexStaysOnItsThread() {
        for threads in [1, 2, 3, 5] {
            let pool = ThreadPool(threadCount: threads)
            let lock = NSLock()
            var owner = [pthread_t?](repeating: nil, count: threads)
            for round in 0..<200 {
                var hits = [Int](repeating: 0, count: threads)
                pool.parallelForEachThread { t in
                    lock.lock(); defer { lock.unlock() }
                    hits[t] += 1
                    let me = pthread_self()
                    if let o = owner[t] { XCTAssertNotEqual(pthread_equal(o, me), 0, "threads \(threads) index \(t) moved at round \(round)") }
                    else { owner[t] = me }
                }
                XCTAssertEqual(hits, [Int](repeating: 1, count: threads), "threads \(threads) round \(round)")
                if round % 3 == 0 { pool.parallelFor(7) { _ in } }
            }
            XCTAssertNotEqual(pthread_equal(owner[0]!, pthread_self()), 0, "index 0 runs on the caller")
        }
    }

    /// `parallelForSharesOnThreads` calls every (share, item) once, each with the index of the
    /// thread that runs it: two calls on one thread never overlap, so a body may use the index
    /// for that thread's scratch, also on items taken from another thread's share.
    func testSharesOnThreadsGiveTheRunningThread() {
        for threads in [1, 2, 3, 5] {
            let pool = ThreadPool(threadCount: threads)
            let lock = NSLock()
            for itemsPerShare in [1, 4, 33] {
                var hits = [Int](repeating: 0, count: threads * itemsPerShare)
                var busy = [Bool](repeating: false, count: threads)
                var runner = [pthread_t?](repeating: nil, count: threads)
                pool.parallelForSharesOnThreads(itemsPerShare: itemsPerShare) { t, share, item in
                    lock.lock()
                    XCTAssertTrue(t >= 0 && t < threads && share >= 0 && share < threads && item >= 0 && item < itemsPerShare)
                    XCTAssertFalse(busy[t], "thread index \(t) in two calls at once")
                    busy[t] = true
                    hits[share * itemsPerShare + item] += 1
                    let me = pthread_self()
                    if let r = runner[t] { XCTAssertNotEqual(pthread_equal(r, me), 0, "thread index \(t) on two threads") }
                    else { runner[t] = me }
                    lock.unlock()
                    usleep(50)
                    lock.lock(); busy[t] = false; lock.unlock()
                }
                XCTAssertEqual(hits, [Int](repeating: 1, count: threads * itemsPerShare), "threads \(threads) items \(itemsPerShare)")
            }
        }
    }

    func testClampsThreadCount() {
        XCTAssertEqual(ThreadPool(threadCount: 0).threadCount, 1)
        XCTAssertEqual(ThreadPool(threadCount: -3).threadCount, 1)
    }

    func testConcurrentCallersAreSerialized() {
        let pool = ThreadPool(threadCount: 3)
        let lock = NSLock()
        var active = 0, maxActiveJobs = 0, total = 0
        let callers = 4, rounds = 200, count = 17
        DispatchQueue.concurrentPerform(iterations: callers) { _ in
            for _ in 0..<rounds {
                let jobFlag = UnsafeMutablePointer<Int>.allocate(capacity: 1)
                jobFlag.pointee = 0
                pool.parallelFor(count) { _ in
                    lock.lock()
                    if jobFlag.pointee == 0 { active += 1; maxActiveJobs = max(maxActiveJobs, active) }
                    jobFlag.pointee += 1
                    total += 1
                    if jobFlag.pointee == count { active -= 1 }
                    lock.unlock()
                }
                jobFlag.deallocate()
            }
        }
        XCTAssertEqual(total, callers * rounds * count)
        XCTAssertEqual(maxActiveJobs, 1)
    }

    func testManySmallJobsBackToBack() {
        let pool = ThreadPool(threadCount: 2)
        var sums = [Int](repeating: 0, count: 2)
        for _ in 0..<20_000 {
            sums.withUnsafeMutableBufferPointer { s in
                let p = s.baseAddress!
                pool.parallelFor(2) { i in p[i] += i + 1 }
            }
        }
        XCTAssertEqual(sums, [20_000, 40_000])
    }
}

/// Hand-off latency of `parallelFor(2)` (prints; runs only with SELFXIT_POOL_BENCH=1).
final class ThreadPoolHandOffBench: XCTestCase {
    func testHandOffLatency() throws {
        guard ProcessInfo.processInfo.environment["SELFXIT_POOL_BENCH"] != nil else { throw XCTSkip("SELFXIT_POOL_BENCH not set") }
        let pool = ThreadPool(threadCount: 2)
        func spinWork(_ us: Double) {
            let start = DispatchTime.now().uptimeNanoseconds
            while Double(DispatchTime.now().uptimeNanoseconds - start) < us * 1000 {}
        }
        for gapUs in [0.0, 100, 300, 500, 1000] {
            var times: [Double] = []
            for _ in 0..<2000 {
                spinWork(gapUs)
                let start = DispatchTime.now().uptimeNanoseconds
                pool.parallelFor(2) { _ in }
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1000)
            }
            times.sort()
            print(String(format: "gap %5.0f us: empty parallelFor(2) median %.2f us, p90 %.2f us", gapUs, times[times.count / 2], times[times.count * 9 / 10]))
        }
    }
}
