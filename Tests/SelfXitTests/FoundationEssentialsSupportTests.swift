import Foundation
import XCTest
@testable import SelfXit

/// The small replacements for full-Foundation APIs (String(format:), NSCondition, DispatchTime)
/// that let the library link only FoundationEssentials.
final class FoundationEssentialsSupportTests: XCTestCase {
    func testFixedFormatsLikePrintf() {
        XCTAssertEqual(3.14159.fixed(3), "3.142")
        XCTAssertEqual(0.05.fixed(1), "0.1")
        XCTAssertEqual((-2.5).fixed(0), "-2")          // round-half-even, as printf
        XCTAssertEqual(6.1.fixed(1), "6.1")
        XCTAssertEqual(Double.nan.fixed(2), "nan")
        XCTAssertEqual(Double.infinity.fixed(2), "inf")
        XCTAssertEqual(1e300.fixed(1).count, 303)      // longer than the first 64-byte buffer
        XCTAssertEqual(1.0.fixed(-3), "1")             // digits clamped, no trap
    }

    func testConditionTimesOutOnTheMonotonicClock() {
        let condition = PosixCondition()
        let start = MonotonicClock.nanoseconds()
        condition.lock()
        let woken = condition.wait(untilNanoseconds: MonotonicClock.deadline(afterMilliseconds: 30))
        condition.unlock()
        let elapsed = MonotonicClock.nanoseconds() - start
        XCTAssertFalse(woken)
        XCTAssertGreaterThanOrEqual(elapsed, 29_000_000)
        XCTAssertLessThan(elapsed, 5_000_000_000)
    }

    func testConditionWakesAWaiter() {
        let condition = PosixCondition()
        var thread = pthread_t()
        let box = Unmanaged.passRetained(condition).toOpaque()
        condition.lock()
        XCTAssertEqual(pthread_create(&thread, nil, { raw in
            let condition = Unmanaged<PosixCondition>.fromOpaque(raw!).takeRetainedValue()
            usleep(10_000)
            condition.lock()
            readyFlag.store(true)
            condition.broadcast()
            condition.unlock()
            return nil
        }, box), 0)
        while !readyFlag.load() {
            XCTAssertTrue(condition.wait(untilNanoseconds: MonotonicClock.deadline(afterMilliseconds: 10_000)), "not woken within 10 s")
        }
        condition.unlock()
        pthread_join(thread, nil)
        XCTAssertTrue(readyFlag.load())
    }

    func testDeadlineSaturates() {
        XCTAssertGreaterThan(MonotonicClock.deadline(afterMilliseconds: .max), MonotonicClock.nanoseconds())
        XCTAssertLessThanOrEqual(MonotonicClock.deadline(afterMilliseconds: -5), MonotonicClock.nanoseconds())
    }

    func testLockExcludes() {
        let lock = PosixLock()
        var total = 0
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<10_000 { lock.withLock { total += 1 } }
        }
        XCTAssertEqual(total, 40_000)
    }
}

/// Set by the waker thread in testConditionWakesAWaiter (a C thread cannot capture context).
private final class Flag: @unchecked Sendable {
    private var value = false
    private let lock = PosixLock()
    func store(_ v: Bool) { lock.withLock { value = v } }
    func load() -> Bool { lock.withLock { value } }
}
private let readyFlag = Flag()
