@testable import SelfXit

extension ThreadPool {
    /// For kernel tests: a pool of `threadCount` threads, trapping if the OS refuses a thread
    /// (the library itself uses the throwing `init(threads:)`).
    convenience init(threadCount: Int) {
        // swiftlint:disable:next force_try
        try! self.init(threads: threadCount)
    }
}
