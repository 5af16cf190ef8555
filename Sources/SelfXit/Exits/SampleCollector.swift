import FoundationEssentials
import Glibc

/// The "medial data set" (paper Eq. 1) recorded from live traffic: per sample, its input
/// and the backbone's output distribution — all exit training needs, without labels.
///
/// We store inputs rather than intermediate activations: one Fashion-MNIST sample is 3 KB
/// as input but ~0.8 MB as the activations of all ResNet-18 candidates, and the activations
/// are recomputed once per build, candidate after candidate (see `ExitBuilder`).
///
/// Bounded: at most `capacity` samples (from a byte budget). When full, reservoir sampling
/// keeps a uniform sample of all traffic seen, so a long stream does not crowd out the
/// early part of it, and memory stays fixed. Thread-safe.
final class SampleCollector: @unchecked Sendable {
    let inputCount: Int
    let classes: Int
    let capacity: Int
    private let lock = PosixLock()
    private var inputs: [Float] = []
    private var teacher: [Float] = []
    private(set) var seen = 0
    private var generator: SeededRandom

    /// Precondition: `inputCount`, `classes` ≥ 1 (validated by the engine).
    init(inputCount: Int, classes: Int, budgetBytes: Int, seed: UInt64) {
        self.inputCount = inputCount
        self.classes = classes
        capacity = max(0, budgetBytes / ((inputCount + classes) * MemoryLayout<Float>.stride))
        generator = SeededRandom(seed: seed)
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return teacher.count / classes
    }

    /// Records `rows` samples: inputs (rows × inputCount) and teacher probabilities (rows × classes).
    func record(inputs newInputs: UnsafePointer<Float>, teacher newTeacher: UnsafePointer<Float>, rows: Int) {
        lock.lock()
        defer { lock.unlock() }
        for row in 0..<rows {
            seen += 1
            let stored = teacher.count / classes
            let input = UnsafeBufferPointer(start: newInputs + row * inputCount, count: inputCount)
            let probabilities = UnsafeBufferPointer(start: newTeacher + row * classes, count: classes)
            if stored < capacity {
                inputs.append(contentsOf: input)
                teacher.append(contentsOf: probabilities)
            } else if capacity > 0 {
                let slot = Int(generator.next() % UInt64(seen))
                guard slot < capacity else { continue }
                inputs.replaceSubrange((slot * inputCount)..<((slot + 1) * inputCount), with: input)
                teacher.replaceSubrange((slot * classes)..<((slot + 1) * classes), with: probabilities)
            }
        }
    }

    /// A copy of what is stored: (inputs, teacher probabilities, count). Copied element by
    /// element under the lock, not shared copy-on-write: `record` appending to a buffer the
    /// snapshot still shares is safe only through the Swift runtime's reference count, which
    /// ThreadSanitizer cannot see (the same as `EngineStatistics.snapshot`). One copy per exit
    /// build, at most the collection budget.
    func snapshot() -> (inputs: [Float], teacher: [Float], count: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (inputs.withUnsafeBufferPointer { Array($0) }, teacher.withUnsafeBufferPointer { Array($0) },
                teacher.count / classes)
    }

    func removeAll() {
        lock.lock()
        defer { lock.unlock() }
        inputs.removeAll()
        teacher.removeAll()
        seen = 0
    }
}

