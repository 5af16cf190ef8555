// TensorProto parsing and payload decoding (field numbers: see ONNXParser.swift / onnx.proto).

/// IEEE 754 binary16 bits → Float (exact: every half value is representable), including
/// subnormals, ±0, ±inf and NaN (payload kept in the high mantissa bits).
@inline(__always)
func float16BitsToFloat(_ h: UInt16) -> Float {
    let sign: UInt32 = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    let mantissa = UInt32(h & 0x03FF)
    if exponent == 0 {
        // Zero or subnormal: mantissa × 2⁻²⁴ (exact in Float).
        let magnitude = Float(mantissa) * 0x1p-24
        return Float(bitPattern: magnitude.bitPattern | sign)
    }
    if exponent == 0x1F {
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    return Float(bitPattern: sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13))
}

/// bfloat16 bits → Float (bfloat16 is the high half of a binary32).
@inline(__always)
func bfloat16BitsToFloat(_ b: UInt16) -> Float {
    Float(bitPattern: UInt32(b) << 16)
}

extension ONNXDataType {
    /// Bytes per element in raw_data, for the types this reader decodes.
    var rawElementSize: Int? {
        switch self {
        case .float, .int32, .uint32: return 4
        case .double, .int64, .uint64: return 8
        case .float16, .bfloat16, .int16, .uint16: return 2
        case .int8, .uint8, .bool: return 1
        default: return nil
        }
    }

    /// The typed TensorProto field that onnx.proto designates for this type.
    var typedField: UInt32? {
        switch self {
        case .float: return 4
        case .int32, .int16, .int8, .uint16, .uint8, .bool, .float16, .bfloat16: return 5
        case .int64: return 7
        case .double: return 10
        case .uint32, .uint64: return 11
        default: return nil
        }
    }
}

extension ONNXParser {
    private static let typedFieldNames: [UInt32: String] = [
        4: "float_data", 5: "int32_data", 6: "string_data", 7: "int64_data", 10: "double_data", 11: "uint64_data",
    ]

    /// Parses a TensorProto, validating the payload against dims, and decodes it.
    static func parseTensor(_ r: inout R) throws(ModelLoadError) -> ONNXTensor {
        var name = ""
        var rawDims: [UInt64] = []
        var dataTypeCode: Int32 = 0
        var raw: (UnsafeRawBufferPointer, origin: Int)?
        var chunks: [UInt32: [RepeatedChunk]] = [:]   // typed fields 4, 5, 7, 10, 11
        var stringCount = 0
        var externalCount = 0
        var dataLocation: Int32 = 0
        do throws(ModelLoadError) {
            while let tag = try r.readTag() {
                switch tag.field {
                case 1: try r.readRepeatedVarints(tag.wireType, into: &rawDims, "dims")
                case 2:
                    try R.expect(tag.wireType, .varint, "data_type")
                    dataTypeCode = try r.readInt32("data_type")
                case 3:
                    throw .unsupported("segmented tensors (TensorProto.segment) are not supported")
                case 4:
                    chunks[4, default: []].append(try r.readFixedChunk(tag.wireType, width: 4, "float_data"))
                case 10:
                    chunks[10, default: []].append(try r.readFixedChunk(tag.wireType, width: 8, "double_data"))
                case 5, 7, 11:
                    chunks[tag.field, default: []].append(try r.readVarintChunk(tag.wireType, typedFieldNames[tag.field] ?? ""))
                case 6:
                    try R.expect(tag.wireType, .lengthDelimited, "string_data")
                    _ = try r.readLengthDelimited()
                    stringCount += 1
                case 8:
                    try R.expect(tag.wireType, .lengthDelimited, "name")
                    name = try r.readString("name")
                case 9:
                    try R.expect(tag.wireType, .lengthDelimited, "raw_data")
                    raw = try r.readLengthDelimited()
                case 13:
                    try R.expect(tag.wireType, .lengthDelimited, "external_data")
                    _ = try r.readLengthDelimited()
                    externalCount += 1
                case 14:
                    try R.expect(tag.wireType, .varint, "data_location")
                    dataLocation = try r.readInt32("data_location")
                default:
                    try r.skip(tag.wireType, field: tag.field)
                }
            }
        } catch {
            throw name.isEmpty ? error : error.inContext("tensor '\(name)'")
        }

        let label = "tensor '\(name)'"
        if dataLocation == 1 || externalCount > 0 {
            throw .unsupported("\(label) stores its data in an external file (data_location=EXTERNAL); external data is not supported")
        }
        if dataLocation != 0 {
            throw .malformed("\(label) has invalid data_location \(dataLocation)")
        }
        guard dataTypeCode != 0 else {
            throw .malformed("\(label) has no data_type (UNDEFINED)")
        }
        guard let dataType = ONNXDataType(rawValue: dataTypeCode) else {
            throw .unsupported("\(label) has unknown data_type \(dataTypeCode)")
        }

        // dims: each ≥ 0, product without overflow.
        var dims: [Int] = []
        dims.reserveCapacity(rawDims.count)
        var count = 1
        for d in rawDims {
            let v = Int64(bitPattern: d)
            guard v >= 0, let n = Int(exactly: v) else {
                throw .malformed("\(label) has negative dimension \(v) in dims \(rawDims.map { Int64(bitPattern: $0) })")
            }
            let (p, overflow) = count.multipliedReportingOverflow(by: n)
            if overflow {
                throw .malformed("\(label): element count of dims \(rawDims) overflows")
            }
            count = p
            dims.append(n)
        }
        // A zero-size tensor's other dims must not overflow either ([0, 2^62, 4] has no
        // elements, but its [2^62, 4] part would overflow wherever it is multiplied out).
        if count == 0, checkedElementCount(dims.filter { $0 != 0 }) == nil {
            throw .malformed("\(label): dims \(dims) overflow (the product of the non-zero dims exceeds Int64)")
        }

        guard let elementSize = dataType.rawElementSize, let allowedField = dataType.typedField else {
            throw .unsupported("\(label) has data type \(dataType) (\(dataTypeCode)), which this reader does not decode")
        }
        if stringCount > 0 {
            throw .malformed("\(label) of type \(dataType) has string_data (field 6), which onnx.proto allows only for STRING")
        }
        for (field, list) in chunks where field != allowedField && !list.isEmpty {
            throw .malformed("\(label) of type \(dataType) has \(typedFieldNames[field] ?? "field \(field)") (field \(field)), which onnx.proto does not allow for that type")
        }
        let typed = chunks[allowedField] ?? []

        if let (bytes, origin) = raw {
            if !typed.isEmpty {
                throw .malformed("\(label) has both raw_data and \(typedFieldNames[allowedField] ?? "typed data")")
            }
            let (expected, overflow) = count.multipliedReportingOverflow(by: elementSize)
            guard !overflow, bytes.count == expected else {
                throw .malformed("\(label): raw_data (byte \(origin)) has \(bytes.count) bytes but dims \(dims) of \(dataType) need \(overflow ? "more than Int.max" : String(expected)) (\(count) elements × \(elementSize) bytes)")
            }
            return ONNXTensor(name: name, dims: dims, dataType: dataType, data: try decodeRaw(bytes, count: count, dataType, label))
        }

        // Typed field: count the elements first, allocate only if they match dims.
        let fieldName = typedFieldNames[allowedField] ?? ""
        var n = 0
        for c in typed {
            let k: Int
            switch allowedField {
            case 4: k = c.fixedCount(width: 4)
            case 10: k = c.fixedCount(width: 8)
            default: k = try c.varintCount("\(label).\(fieldName)")
            }
            n += k   // cannot overflow: bounded by the input size
        }
        guard n == count else {
            throw .malformed("\(label): \(fieldName) has \(n) elements but dims \(dims) need \(count)")
        }
        return ONNXTensor(name: name, dims: dims, dataType: dataType, data: try decodeTyped(typed, count: count, dataType, label))
    }

    // MARK: raw_data (little-endian, unaligned)

    private static func decodeRaw(_ raw: UnsafeRawBufferPointer, count: Int, _ dt: ONNXDataType, _ label: String) throws(ModelLoadError) -> ONNXTensorData {
        @inline(__always)
        func floats(_ body: (Int) -> Float) -> [Float] {
            [Float](unsafeUninitializedCapacity: count) { buf, initialized in
                for i in 0 ..< count { buf[i] = body(i) }
                initialized = count
            }
        }
        @inline(__always)
        func ints(_ body: (Int) -> Int64) -> [Int64] {
            [Int64](unsafeUninitializedCapacity: count) { buf, initialized in
                for i in 0 ..< count { buf[i] = body(i) }
                initialized = count
            }
        }
        @inline(__always)
        func u16(_ i: Int) -> UInt16 { UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        @inline(__always)
        func u32(_ i: Int) -> UInt32 { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
        @inline(__always)
        func u64(_ i: Int) -> UInt64 { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) }

        switch dt {
        case .float:
            #if _endian(little)
            return .float([Float](unsafeUninitializedCapacity: count) { buf, initialized in
                UnsafeMutableRawBufferPointer(buf).copyMemory(from: raw)
                initialized = count
            })
            #else
            return .float(floats { Float(bitPattern: u32($0)) })
            #endif
        case .float16: return .float(floats { float16BitsToFloat(u16($0)) })
        case .bfloat16: return .float(floats { bfloat16BitsToFloat(u16($0)) })
        case .double: return .float(floats { Float(Double(bitPattern: u64($0))) })
        case .int64:
            #if _endian(little)
            return .int64([Int64](unsafeUninitializedCapacity: count) { buf, initialized in
                UnsafeMutableRawBufferPointer(buf).copyMemory(from: raw)
                initialized = count
            })
            #else
            return .int64(ints { Int64(bitPattern: u64($0)) })
            #endif
        case .uint64:
            let v = ints { Int64(bitPattern: u64($0)) }
            try checkUInt64(v, label)
            return .int64(v)
        case .int32: return .int64(ints { Int64(Int32(bitPattern: u32($0))) })
        case .uint32: return .int64(ints { Int64(u32($0)) })
        case .int16: return .int64(ints { Int64(Int16(bitPattern: u16($0))) })
        case .uint16: return .int64(ints { Int64(u16($0)) })
        case .int8: return .int64(ints { Int64(Int8(bitPattern: raw[$0])) })
        case .uint8: return .int64(ints { Int64(raw[$0]) })
        case .bool: return .int64(ints { raw[$0] != 0 ? 1 : 0 })
        default:
            throw .unsupported("\(label) has data type \(dt), which this reader does not decode")
        }
    }

    private static func checkUInt64(_ v: [Int64], _ label: String) throws(ModelLoadError) {
        if let bad = v.first(where: { $0 < 0 }) {
            throw .unsupported("\(label): uint64 value \(UInt64(bitPattern: bad)) does not fit in Int64")
        }
    }

    // MARK: typed fields (float_data, double_data, int32_data, int64_data, uint64_data)

    private static func decodeTyped(_ chunks: [RepeatedChunk], count: Int, _ dt: ONNXDataType, _ label: String) throws(ModelLoadError) -> ONNXTensorData {
        switch dt {
        case .float:
            // float_data: fixed32, packed runs copied wholesale.
            var out = [Float](repeating: 0, count: count)
            var at = 0
            out.withUnsafeMutableBytes { dst in
                for c in chunks {
                    switch c {
                    case .single(let v):
                        if at < count { dst.storeBytes(of: Float(bitPattern: UInt32(truncatingIfNeeded: v)), toByteOffset: 4 * at, as: Float.self) }
                        at += 1
                    case .packed(let p, _):
                        let k = p.count / 4
                        guard at + k <= count else { at += k; continue }
                        #if _endian(little)
                        UnsafeMutableRawBufferPointer(rebasing: dst[4 * at ..< 4 * (at + k)]).copyMemory(from: UnsafeRawBufferPointer(rebasing: p[0 ..< 4 * k]))
                        #else
                        for j in 0 ..< k {
                            let b = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * j, as: UInt32.self))
                            dst.storeBytes(of: Float(bitPattern: b), toByteOffset: 4 * (at + j), as: Float.self)
                        }
                        #endif
                        at += k
                    }
                }
            }
            return .float(out)
        case .double:
            var out: [Float] = []
            out.reserveCapacity(count)
            for c in chunks {
                switch c {
                case .single(let v): out.append(Float(Double(bitPattern: v)))
                case .packed(let p, _):
                    for j in 0 ..< p.count / 8 {
                        out.append(Float(Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * j, as: UInt64.self)))))
                    }
                }
            }
            return .float(out)
        case .float16, .bfloat16:
            // int32_data holds the 16-bit patterns in its low bits.
            var out: [Float] = []
            out.reserveCapacity(count)
            let isHalf = dt == .float16
            for c in chunks {
                try c.forEachVarint { v in
                    let bits = UInt16(truncatingIfNeeded: v)
                    out.append(isHalf ? float16BitsToFloat(bits) : bfloat16BitsToFloat(bits))
                }
            }
            return .float(out)
        default:
            var out: [Int64] = []
            out.reserveCapacity(count)
            let convert: (UInt64) -> Int64
            switch dt {
            // int32_data: int32 varints (sign-extended), narrowed as onnx.numpy_helper does.
            case .int32: convert = { Int64(Int32(truncatingIfNeeded: $0)) }
            case .int16: convert = { Int64(Int16(truncatingIfNeeded: $0)) }
            case .uint16: convert = { Int64(UInt16(truncatingIfNeeded: $0)) }
            case .int8: convert = { Int64(Int8(truncatingIfNeeded: $0)) }
            case .uint8: convert = { Int64(UInt8(truncatingIfNeeded: $0)) }
            case .bool: convert = { UInt32(truncatingIfNeeded: $0) != 0 ? 1 : 0 }
            // int64_data / uint64_data
            case .int64, .uint64: convert = { Int64(bitPattern: $0) }
            case .uint32: convert = { Int64(UInt32(truncatingIfNeeded: $0)) }
            default:
                throw .unsupported("\(label) has data type \(dt), which this reader does not decode")
            }
            for c in chunks {
                try c.forEachVarint { out.append(convert($0)) }
            }
            if dt == .uint64 { try checkUInt64(out, label) }
            return .int64(out)
        }
    }
}
