/// Protobuf wire types (https://protobuf.dev/programming-guides/encoding/).
enum WireType: UInt8, Sendable {
    case varint = 0
    case fixed64 = 1
    case lengthDelimited = 2
    case startGroup = 3
    case endGroup = 4
    case fixed32 = 5
}

/// One occurrence of a repeated scalar field: either a packed run (wire type 2) or a
/// single unpacked element (the varint or fixed value itself).
enum RepeatedChunk {
    case packed(UnsafeRawBufferPointer, origin: Int)
    case single(UInt64)
}

/// Bounds-checked reader of protobuf wire format over a borrowed byte buffer.
///
/// No method traps on any input: every read checks the remaining length first, every
/// integer conversion of untrusted data uses `exactly:`/`truncatingIfNeeded:`, and all
/// failures are reported as `ModelLoadError` with the absolute byte offset.
/// The buffer is borrowed: a reader (and any slice it returns) must not outlive it.
struct ProtobufReader {
    /// The bytes of this (sub)message.
    let bytes: UnsafeRawBufferPointer
    /// Position of the next unread byte, relative to `bytes`.
    private(set) var position: Int = 0
    /// Absolute offset of `bytes[0]` in the whole input, for error messages.
    let origin: Int

    init(_ bytes: UnsafeRawBufferPointer, origin: Int = 0) {
        self.bytes = bytes
        self.origin = origin
    }

    var isAtEnd: Bool { position >= bytes.count }
    var remaining: Int { bytes.count - position }
    /// Absolute offset of the next unread byte.
    var absoluteOffset: Int { origin + position }

    // MARK: Scalars

    /// Reads a base-128 varint of at most 10 bytes whose value fits in 64 bits.
    @inline(__always)
    mutating func readVarint() throws(ModelLoadError) -> UInt64 {
        if position < bytes.count {
            let b = bytes[position]
            if b < 0x80 { position += 1; return UInt64(b) }
        }
        return try readVarintSlow()
    }

    @inline(never)
    private mutating func readVarintSlow() throws(ModelLoadError) -> UInt64 {
        let start = position
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var i = 0
        while true {
            guard position < bytes.count else {
                throw .truncated("input ends inside a varint starting at byte \(origin + start)")
            }
            let b = bytes[position]
            position += 1
            if i == 9 && b > 1 {
                // Byte 10 may only contribute bit 63; anything else is > 64 bits or > 10 bytes.
                throw .malformed("varint at byte \(origin + start) is longer than 10 bytes or overflows 64 bits")
            }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
            i += 1
        }
    }

    mutating func readFixed32() throws(ModelLoadError) -> UInt32 {
        guard remaining >= 4 else {
            throw .truncated("input ends inside a 4-byte fixed field at byte \(absoluteOffset)")
        }
        let v = bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self)
        position += 4
        return UInt32(littleEndian: v)
    }

    mutating func readFixed64() throws(ModelLoadError) -> UInt64 {
        guard remaining >= 8 else {
            throw .truncated("input ends inside an 8-byte fixed field at byte \(absoluteOffset)")
        }
        let v = bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self)
        position += 8
        return UInt64(littleEndian: v)
    }

    /// Reads a varint and reinterprets it as a two's-complement int64 (protobuf `int64`).
    mutating func readInt64() throws(ModelLoadError) -> Int64 {
        Int64(bitPattern: try readVarint())
    }

    /// Reads a protobuf `int32`/enum: a sign-extended varint that must fit in Int32.
    mutating func readInt32(_ what: @autoclosure () -> String) throws(ModelLoadError) -> Int32 {
        let start = absoluteOffset
        let v = Int64(bitPattern: try readVarint())
        guard let r = Int32(exactly: v) else {
            throw .malformed("\(what()): value \(v) at byte \(start) does not fit in int32")
        }
        return r
    }

    // MARK: Length-delimited

    /// Reads a length prefix and returns the following bytes (borrowed) and their absolute offset.
    mutating func readLengthDelimited() throws(ModelLoadError) -> (UnsafeRawBufferPointer, origin: Int) {
        let start = absoluteOffset
        let raw = try readVarint()
        guard let length = Int(exactly: raw), length <= remaining else {
            throw .truncated("length \(raw) declared at byte \(start) runs past the end of the enclosing message (\(remaining) bytes left)")
        }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[position ..< position + length])
        let o = absoluteOffset
        position += length
        return (slice, o)
    }

    mutating func readSubmessage() throws(ModelLoadError) -> ProtobufReader {
        let (slice, o) = try readLengthDelimited()
        return ProtobufReader(slice, origin: o)
    }

    /// Reads a length-delimited field as UTF-8 text; invalid UTF-8 is `malformed`.
    mutating func readString(_ what: @autoclosure () -> String) throws(ModelLoadError) -> String {
        let (slice, o) = try readLengthDelimited()
        if slice.isEmpty { return "" }
        let units = slice.bindMemory(to: UInt8.self)
        if #available(macOS 15, iOS 18, tvOS 18, watchOS 11, visionOS 2, *) {
            if let s = String(validating: units, as: UTF8.self) { return s }
        } else {
            // Older Apple runtimes: decoding repairs invalid input, so compare the bytes back.
            let s = String(decoding: units, as: UTF8.self)
            if s.utf8.elementsEqual(units) { return s }
        }
        throw .malformed("\(what()): invalid UTF-8 in string at byte \(o)")
    }

    // MARK: Tags and skipping

    /// Reads the next field key, or returns nil at the end of the message.
    mutating func readTag() throws(ModelLoadError) -> (field: UInt32, wireType: WireType)? {
        if isAtEnd { return nil }
        let start = absoluteOffset
        let key = try readVarint()
        guard key <= UInt64(UInt32.max) else {
            throw .malformed("field key \(key) at byte \(start) is out of range")
        }
        let field = UInt32(key >> 3)
        guard field != 0 else {
            throw .malformed("field number 0 at byte \(start)")
        }
        guard let wt = WireType(rawValue: UInt8(key & 7)) else {
            throw .malformed("invalid wire type \(key & 7) for field \(field) at byte \(start)")
        }
        return (field, wt)
    }

    /// Skips the value of an unknown field. Groups (deprecated, never used by ONNX) are refused.
    mutating func skip(_ wireType: WireType, field: UInt32) throws(ModelLoadError) {
        switch wireType {
        case .varint: _ = try readVarint()
        case .fixed64: _ = try readFixed64()
        case .fixed32: _ = try readFixed32()
        case .lengthDelimited: _ = try readLengthDelimited()
        case .startGroup, .endGroup:
            throw .malformed("field \(field) uses the deprecated group wire type (byte \(absoluteOffset))")
        }
    }

    /// Throws `malformed` naming the field when a known field arrives with the wrong wire type.
    static func expect(_ wireType: WireType, _ expected: WireType, _ what: @autoclosure () -> String) throws(ModelLoadError) {
        if wireType != expected {
            throw .malformed("\(what()): wire type \(wireType.rawValue), expected \(expected.rawValue)")
        }
    }

    // MARK: Repeated scalars

    /// Reads one occurrence of a repeated varint field (packed or not) without decoding it.
    mutating func readVarintChunk(_ wireType: WireType, _ what: @autoclosure () -> String) throws(ModelLoadError) -> RepeatedChunk {
        switch wireType {
        case .varint: return .single(try readVarint())
        case .lengthDelimited:
            let (s, o) = try readLengthDelimited()
            return .packed(s, origin: o)
        default:
            throw .malformed("\(what()): wire type \(wireType.rawValue), expected varint or packed")
        }
    }

    /// Reads one occurrence of a repeated fixed-width field (packed or not) without decoding it.
    mutating func readFixedChunk(_ wireType: WireType, width: Int, _ what: @autoclosure () -> String) throws(ModelLoadError) -> RepeatedChunk {
        switch (wireType, width) {
        case (.fixed32, 4): return .single(UInt64(try readFixed32()))
        case (.fixed64, 8): return .single(try readFixed64())
        case (.lengthDelimited, _):
            let (s, o) = try readLengthDelimited()
            guard s.count % width == 0 else {
                throw .malformed("\(what()): packed length \(s.count) at byte \(o) is not a multiple of \(width)")
            }
            return .packed(s, origin: o)
        default:
            throw .malformed("\(what()): wire type \(wireType.rawValue), expected fixed\(width * 8) or packed")
        }
    }

    /// Reads a repeated varint field (packed or unpacked occurrence) and appends it to `values`.
    mutating func readRepeatedVarints(_ wireType: WireType, into values: inout [UInt64], _ what: @autoclosure () -> String) throws(ModelLoadError) {
        let chunk = try readVarintChunk(wireType, what())
        try RepeatedChunk.appendVarints(chunk, to: &values, what())
    }
}

extension RepeatedChunk {
    /// Number of elements in a varint chunk (number of terminating bytes); a packed run must end
    /// on a terminating byte.
    func varintCount(_ what: @autoclosure () -> String) throws(ModelLoadError) -> Int {
        switch self {
        case .single: return 1
        case .packed(let s, let origin):
            var n = 0
            for b in s where b < 0x80 { n += 1 }
            if let last = s.last, last >= 0x80 {
                throw .truncated("\(what()): packed varints at byte \(origin) end inside a varint")
            }
            return n
        }
    }

    func fixedCount(width: Int) -> Int {
        switch self {
        case .single: return 1
        case .packed(let s, _): return s.count / width
        }
    }

    /// Decodes a varint chunk, calling `body` for each value.
    @inline(__always)
    func forEachVarint(_ body: (UInt64) -> Void) throws(ModelLoadError) {
        switch self {
        case .single(let v): body(v)
        case .packed(let s, let origin):
            var r = ProtobufReader(s, origin: origin)
            while !r.isAtEnd { body(try r.readVarint()) }
        }
    }

    static func appendVarints(_ chunk: RepeatedChunk, to values: inout [UInt64], _ what: @autoclosure () -> String) throws(ModelLoadError) {
        values.reserveCapacity(values.count + (try chunk.varintCount(what())))
        try chunk.forEachVarint { values.append($0) }
    }
}
