import FoundationEssentials
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private let systemRead = Glibc.read, systemWrite = Glibc.write
#elseif canImport(Darwin)
private let systemRead = Darwin.read, systemWrite = Darwin.write
#endif

/// Reading and writing the files the library is handed a path to (models, exit bundles).
///
/// The rule: only regular files. A FIFO, a device, a socket or a directory is refused with
/// `SelfXitError.io` naming what the path is — never opened in a way that could block (a FIFO
/// with no writer blocks a plain `open`), never read without bound (/dev/zero). Writing
/// refuses a symbolic link and every non-regular file instead of replacing it, and replaces a
/// regular file atomically (temporary file in the same directory, then `rename`).
enum RegularFile {
    /// What a `st_mode` is, for messages.
    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFREG: return "a regular file"
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        case S_IFLNK: return "a symbolic link"
        default: return "not a regular file"
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }

    /// The bytes of the regular file at `path` (symbolic links followed), at most `limit`
    /// bytes. `what` names the file in messages ("model", "exit bundle").
    static func read(_ path: String, limit: Int, what: String) throws -> [UInt8] {
        // stat first: a FIFO, device or directory is refused without being opened at all.
        var info = stat()
        guard stat(path, &info) == 0 else { throw SelfXitError.io("cannot read \(what) '\(path)': \(errnoText())") }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw SelfXitError.io("cannot read \(what) '\(path)': it is \(kind(info.st_mode)), not a regular file")
        }
        // O_NONBLOCK: should the path have been swapped for a FIFO since the stat, open does
        // not wait for a writer; fstat below sees what was really opened.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw SelfXitError.io("cannot read \(what) '\(path)': \(errnoText())") }
        defer { close(fd) }
        guard fstat(fd, &info) == 0 else { throw SelfXitError.io("cannot read \(what) '\(path)': \(errnoText())") }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw SelfXitError.io("cannot read \(what) '\(path)': it is \(kind(info.st_mode)), not a regular file")
        }
        let size = Int(info.st_size)
        guard size >= 0, size <= limit else {
            throw SelfXitError.io("cannot read \(what) '\(path)': \(size) bytes exceed the limit of \(limit) bytes")
        }
        var failure: String?
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = 0
            while count < size {
                let n = systemRead(fd, buffer.baseAddress! + count, size - count)
                if n > 0 { count += n; continue }
                if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                failure = n == 0 ? "the file shrank while it was read (\(count) of \(size) bytes)" : errnoText()
                return
            }
        }
        if let failure { throw SelfXitError.io("cannot read \(what) '\(path)': \(failure)") }
        return bytes
    }

    /// Writes `bytes` to `path`, replacing a regular file there atomically. Refuses (without
    /// touching anything) a symbolic link, a directory, a FIFO, a device or a socket at `path`.
    static func write(_ bytes: [UInt8], to path: String, what: String) throws {
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFREG else {
                throw SelfXitError.io("cannot write \(what) '\(path)': it is \(kind(info.st_mode)); only a regular file is replaced"
                                      + (info.st_mode & S_IFMT == S_IFLNK ? " (pass the link's target to write through it)" : ""))
            }
        } else if errno != ENOENT {
            throw SelfXitError.io("cannot write \(what) '\(path)': \(errnoText())")
        }
        // The temporary file sits beside the target so that rename is atomic (same file system);
        // O_EXCL with a name of our own: never follows or reuses someone else's file.
        var temporary = ""
        var fd: Int32 = -1
        for attempt in 0..<16 {
            temporary = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(attempt)"
            fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o666)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw SelfXitError.io("cannot write \(what) '\(path)': \(errnoText())") }
        var failure: String?
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = systemWrite(fd, raw.baseAddress! + done, raw.count - done)
                if n > 0 { done += n; continue }
                if n < 0 && errno == EINTR { continue }
                failure = errnoText()
                return
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = errnoText() }
        if close(fd) != 0, failure == nil { failure = errnoText() }
        if failure == nil, rename(temporary, path) != 0 { failure = errnoText() }
        if let failure {
            unlink(temporary)
            throw SelfXitError.io("cannot write \(what) '\(path)': \(failure)")
        }
    }
}
