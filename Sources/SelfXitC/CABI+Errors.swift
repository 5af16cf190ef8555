import CSelfXitABI
import FoundationEssentials
import Glibc
import SelfXit

// Status codes, the per-thread error message, and the guard every exported function runs
// its body in. Nothing here may trap: this is the boundary a host process trusts.

/// A failure at the C boundary: a status and a message.
struct CABIError: Error {
    let status: sx_status
    let message: String

    static func invalid(_ message: String) -> CABIError { CABIError(status: SX_ERR_INVALID_ARGUMENT, message: message) }
    static func busy(_ message: String) -> CABIError { CABIError(status: SX_ERR_BUSY, message: message) }
}

extension SelfXitError {
    var status: sx_status {
        switch self {
        case .invalidArgument: return SX_ERR_INVALID_ARGUMENT
        case .io: return SX_ERR_IO
        case .invalidModel: return SX_ERR_BAD_MODEL
        case .unsupportedOperator: return SX_ERR_UNSUPPORTED_OP
        case .shapeMismatch: return SX_ERR_SHAPE_MISMATCH
        case .wrongState: return SX_ERR_WRONG_STATE
        case .internalError: return SX_ERR_INTERNAL
        case .invalidData: return SX_ERR_INVALID_DATA
        case .unsupportedModel: return SX_ERR_UNSUPPORTED_OP
        case .outOfMemory: return SX_ERR_OUT_OF_MEMORY
        case .cancelled: return SX_ERR_CANCELLED
        case .busy: return SX_ERR_BUSY
        }
    }
}

/// The calling thread's last error message, as a C string the thread owns until its next
/// failing call.
private let errorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { free($0) }
    return key
}()

func setLastError(_ message: String) {
    let previous = pthread_getspecific(errorKey)
    pthread_setspecific(errorKey, strdup(message))
    free(previous)
}

func lastErrorPointer() -> UnsafePointer<CChar> {
    if let message = pthread_getspecific(errorKey) { return UnsafePointer(message.assumingMemoryBound(to: CChar.self)) }
    return emptyCString
}

private let emptyCString: UnsafePointer<CChar> = UnsafePointer(strdup("")!)

/// Runs `body`, turning every thrown error into a status code and a per-thread message.
func guarded(_ function: StaticString, _ body: () throws -> Void) -> sx_status {
    do {
        try body()
        return SX_OK
    } catch let error as CABIError {
        setLastError("\(function): \(error.message)")
        return error.status
    } catch let error as SelfXitError {
        setLastError("\(function): \(error.description)")
        return error.status
    } catch {
        setLastError("\(function): \(error)")
        return SX_ERR_INTERNAL
    }
}

/// Reads a caller's options struct: starts from `defaults` and copies only the first
/// `struct_size` bytes the caller declared (an older, shorter struct keeps the defaults for
/// the fields it lacks; a newer, longer one is read up to the fields this library knows).
/// Precondition: T begins with `uint32_t struct_size`.
func readVersioned<T>(_ pointer: UnsafePointer<T>?, defaults: T, name: String) throws -> T {
    var value = defaults
    guard let pointer else { return value }
    let declared = Int(UnsafeRawPointer(pointer).loadUnaligned(as: UInt32.self))
    guard declared >= MemoryLayout<UInt32>.size else { throw CABIError.invalid("\(name).struct_size is \(declared); fill it with its _init function") }
    withUnsafeMutableBytes(of: &value) { target in
        let count = min(declared, target.count)
        target.baseAddress!.copyMemory(from: UnsafeRawPointer(pointer), byteCount: count)
        target.storeBytes(of: UInt32(MemoryLayout<T>.size), as: UInt32.self)
    }
    return value
}

/// Copies `text` NUL-terminated into a caller's buffer of `capacity` bytes; *needed (if not
/// NULL) gets the bytes required, NUL included, even when the buffer is too small (NULL or
/// short: INVALID_ARGUMENT, nothing written) — the sx_get_*_json contract.
func writeString(_ text: String, to buffer: UnsafeMutablePointer<CChar>?, capacity: Int, needed: UnsafeMutablePointer<Int>?) throws {
    let bytes = Array(text.utf8CString)
    needed?.pointee = bytes.count
    guard let buffer, capacity >= bytes.count else {
        throw CABIError.invalid("buffer of \(capacity) bytes is too small: \(bytes.count) needed (see *needed)")
    }
    bytes.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: bytes.count) }
}

/// Writes `value` into a caller's struct, no more than the `struct_size` bytes it declared.
func writeVersioned<T>(_ value: T, to pointer: UnsafeMutablePointer<T>?, name: String) throws {
    guard let pointer else { throw CABIError.invalid("\(name) is NULL") }
    let declared = Int(UnsafeRawPointer(pointer).loadUnaligned(as: UInt32.self))
    guard declared >= MemoryLayout<UInt32>.size else { throw CABIError.invalid("\(name)->struct_size is \(declared); set it to sizeof(\(name))") }
    withUnsafeBytes(of: value) { source in
        UnsafeMutableRawPointer(pointer).copyMemory(from: source.baseAddress!, byteCount: min(declared, source.count))
    }
    UnsafeMutableRawPointer(pointer).storeBytes(of: UInt32(min(declared, MemoryLayout<T>.size)), as: UInt32.self)
}

@_cdecl("sx_abi_version")
public func sx_abi_version() -> UInt32 { UInt32(SX_ABI_VERSION) }

private let versionCString: UnsafePointer<CChar> = UnsafePointer(strdup(SelfXit.version)!)

@_cdecl("sx_version")
public func sx_version() -> UnsafePointer<CChar> { versionCString }

private let statusNames: [UnsafePointer<CChar>] = ([
    "ok", "invalid argument", "I/O error", "bad model", "unsupported operator", "shape mismatch", "wrong state",
    "busy", "out of memory", "timeout", "internal error", "invalid data", "cancelled", "unknown status",
] as [String]).map { UnsafePointer(strdup($0)!) }

@_cdecl("sx_status_string")
public func sx_status_string(_ status: sx_status) -> UnsafePointer<CChar> {
    let index = Int(status.rawValue)
    return index < statusNames.count - 1 ? statusNames[index] : statusNames[statusNames.count - 1]
}

@_cdecl("sx_last_error")
public func sx_last_error() -> UnsafePointer<CChar> { lastErrorPointer() }

@_cdecl("sx_struct_size")
public func sx_struct_size(_ name: UnsafePointer<CChar>?) -> Int {
    guard let name else { return 0 }
    switch String(cString: name) {
    case "sx_result": return MemoryLayout<sx_result>.size
    case "sx_stats": return MemoryLayout<sx_stats>.size
    case "sx_engine_options": return MemoryLayout<sx_engine_options>.size
    case "sx_update_options": return MemoryLayout<sx_update_options>.size
    case "sx_info": return MemoryLayout<sx_info>.size
    case "sx_preprocess": return MemoryLayout<sx_preprocess>.size
    case "sx_progress": return MemoryLayout<sx_progress>.size
    case "sx_output_info": return MemoryLayout<sx_output_info>.size
    case "sx_event": return MemoryLayout<sx_event>.size
    case "sx_serving_options": return MemoryLayout<sx_serving_options>.size
    default: return 0
    }
}
