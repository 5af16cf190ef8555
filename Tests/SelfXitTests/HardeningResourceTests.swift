import Foundation
import XCTest
@testable import SelfXit

/// Resource failures (hardening): the thread cap, failed allocations and the arena limit are
/// thrown `SelfXitError`s naming the sizes, never a trap. Running out of memory for real
/// (under RLIMIT_AS) is tested in a forked child by Tests/CABI/test_resources.c, since a
/// limit on this process would hit every other test.
final class HardeningResourceTests: XCTestCase {
    private func message(of error: Error) -> String { (error as? SelfXitError)?.description ?? "\(error)" }

    func testThreadCountBeyondTheCapIsInvalidArgument() {
        XCTAssertThrowsError(try ThreadPool(threads: ThreadPool.maxThreads + 1)) { error in
            guard case .invalidArgument(let text)? = error as? SelfXitError else { return XCTFail("\(error)") }
            XCTAssertTrue(text.contains("256") && text.contains("257"), text)
        }
    }

    func testPoolAtTheCapRunsEveryIndexOnce() throws {
        let pool = try ThreadPool(threads: ThreadPool.maxThreads)
        XCTAssertEqual(pool.threadCount, 256)
        let count = 4096
        let hits = UnsafeMutablePointer<Int>.allocate(capacity: count)
        hits.initialize(repeating: 0, count: count)
        defer { hits.deallocate() }
        let lock = NSLock()
        pool.parallelFor(count) { i in lock.lock(); hits[i] += 1; lock.unlock() }
        XCTAssertTrue((0..<count).allSatisfy { hits[$0] == 1 })
    }

    func testSerialPoolRunsInline() {
        let pool = ThreadPool.serial()
        XCTAssertEqual(pool.threadCount, 1)
        var order: [Int] = []
        pool.parallelFor(5) { order.append($0) }
        XCTAssertEqual(order, [0, 1, 2, 3, 4])
    }

    func testFailedAllocationThrowsOutOfMemoryWithTheSize() {
        // 4 PiB: more than any x86-64 address space, so posix_memalign fails.
        XCTAssertThrowsError(try tryAllocateFloats(1 << 50, for: "a test buffer")) { error in
            guard case .outOfMemory(let text)? = error as? SelfXitError else { return XCTFail("\(error)") }
            XCTAssertTrue(text.contains("4194304.0 GiB") && text.contains("a test buffer"), text)
        }
        // Bytes overflow Int: refused before asking.
        XCTAssertThrowsError(try tryAllocateFloats(Int.max / 2, for: "a test buffer")) { error in
            guard case .outOfMemory(let text)? = error as? SelfXitError else { return XCTFail("\(error)") }
            XCTAssertTrue(text.contains("more than"), text)
        }
    }

    func testAllocationIsZeroedAndAligned() throws {
        let floats = try tryAllocateFloats(1000, for: "a test buffer")
        defer { free(floats) }
        XCTAssertEqual(Int(bitPattern: floats) % 64, 0)
        XCTAssertTrue((0..<1000).allSatisfy { floats[$0] == 0 })
    }

    func testWorkspaceTooLargeThrowsOutOfMemory() {
        // 2^20 rows × 2^26 floats: 256 TiB.
        XCTAssertThrowsError(try Workspace(capacity: 1 << 20, floatsPerSample: 1 << 26, scratchFloats: 16)) { error in
            guard case .outOfMemory(let text)? = error as? SelfXitError else { return XCTFail("\(error)") }
            XCTAssertTrue(text.contains("activation arena of a batch of 1048576") && text.contains("GiB"), text)
        }
        // rows × floats overflows Int.
        XCTAssertThrowsError(try Workspace(capacity: 1 << 40, floatsPerSample: 1 << 30, scratchFloats: 16)) { error in
            guard case .outOfMemory(let text)? = error as? SelfXitError else { return XCTFail("\(error)") }
            XCTAssertTrue(text.contains("1099511627776 rows"), text)
        }
        // The scratch failing after the arena succeeded frees the arena and throws.
        XCTAssertThrowsError(try Workspace(capacity: 1, floatsPerSample: 16, scratchFloats: 1 << 50))
    }

    func testWorkspacePoolDropsIdleWorkspacesAndRetriesOnOutOfMemory() throws {
        let pool = WorkspacePool()
        pool.give(try Workspace(capacity: 1, floatsPerSample: 16, scratchFloats: 16))
        var calls = 0
        let workspace = try pool.take(capacity: 4) { capacity -> Workspace in
            calls += 1
            if calls == 1 { throw SelfXitError.outOfMemory("first try") }
            return try Workspace(capacity: capacity, floatsPerSample: 16, scratchFloats: 16)
        }
        XCTAssertEqual(calls, 2, "retried once after dropping the idle workspace")
        XCTAssertEqual(workspace.capacity, 4)
        // The idle one was dropped: a request it would have served now makes a new one.
        var made = 0
        _ = try pool.take(capacity: 1) { made += 1; return try Workspace(capacity: $0, floatsPerSample: 16, scratchFloats: 16) }
        XCTAssertEqual(made, 1)

        // With nothing idle to drop, the error is thrown after one try; other errors are not retried.
        calls = 0
        XCTAssertThrowsError(try pool.take(capacity: 8) { _ -> Workspace in calls += 1; throw SelfXitError.outOfMemory("no") })
        XCTAssertEqual(calls, 1)
        pool.give(workspace)
        calls = 0
        XCTAssertThrowsError(try pool.take(capacity: 8) { _ -> Workspace in calls += 1; throw SelfXitError.invalidArgument("no") })
        XCTAssertEqual(calls, 1)
    }

    func testArenaLimitMessageNamesTheSizeAndTheLimit() throws {
        let model = Fixtures.repositoryRoot.appendingPathComponent("models/fmnist-resnet18-w16.onnx")
        XCTAssertThrowsError(try Engine(contentsOf: model, options: EngineOptions(threads: 1, maxBatch: 1 << 20))) { error in
            guard case .invalidArgument(let text)? = error as? SelfXitError else { return XCTFail("\(error)") }
            XCTAssertTrue(text.contains("98.0 GiB") && text.contains("the limit is 16.0 GiB") && text.contains("at most 171196"), text)
            XCTAssertFalse(text.contains(" 0 GiB"), text)
        }
        // The largest batch the message offers is accepted, and runs a batch of 1.
        let engine = try Engine(contentsOf: model, options: EngineOptions(threads: 1, maxBatch: 171196))
        let output = try engine.infer([Float](repeating: 0.5, count: engine.inputCount), batch: 1)
        XCTAssertEqual(output.count, engine.outputCount)
    }

    func testEngineRefusesThreadsBeyondTheCap() {
        let model = Fixtures.repositoryRoot.appendingPathComponent("models/fmnist-resnet18-w16.onnx")
        XCTAssertThrowsError(try Engine(contentsOf: model, options: EngineOptions(threads: 257))) { error in
            guard case .invalidArgument? = error as? SelfXitError else { return XCTFail("\(error)") }
        }
    }

    func testOutOfMemoryDescription() {
        XCTAssertEqual(SelfXitError.outOfMemory("x").description, "out of memory: x")
    }
}
