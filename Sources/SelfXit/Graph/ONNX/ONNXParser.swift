#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import FoundationEssentials
import Glibc
#endif

// Field numbers below are those of onnx.proto as shipped with onnx 1.23
// (site-packages/onnx/onnx.proto; identical in onnx-ml.proto):
//   ModelProto:        ir_version=1 (int64), producer_name=2, graph=7, opset_import=8
//   OperatorSetIdProto: domain=1, version=2 (int64)
//   GraphProto:        node=1, name=2, initializer=5, input=11, output=12, value_info=13,
//                      sparse_initializer=15 (refused)
//   NodeProto:         input=1, output=2, name=3, op_type=4, attribute=5, domain=7
//   AttributeProto:    name=1, f=2 (float), i=3 (int64), s=4 (bytes), t=5, g=6, floats=7,
//                      ints=8, strings=9, tensors=10, graphs=11, tp=14, type_protos=15,
//                      type=20 (AttributeType), ref_attr_name=21, sparse_tensor=22, sparse_tensors=23
//   TensorProto:       dims=1, data_type=2, segment=3, float_data=4 [packed], int32_data=5 [packed],
//                      string_data=6, int64_data=7 [packed], name=8, raw_data=9, double_data=10 [packed],
//                      uint64_data=11 [packed], external_data=13, data_location=14 (EXTERNAL=1)
//   ValueInfoProto:    name=1, type=2
//   TypeProto:         tensor_type=1 (other kinds are skipped); TypeProto.Tensor: elem_type=1, shape=2
//   TensorShapeProto:  dim=1; Dimension: dim_value=1, dim_param=2
// Unknown fields are skipped (groups are refused). Nesting is bounded: subgraphs
// (AttributeProto.g/graphs) and non-tensor TypeProtos are skipped, never parsed.

extension ONNXModel {
    /// Parses a serialized ModelProto. Throws `ModelLoadError`; never traps.
    /// The buffer is only borrowed for the duration of the call.
    package init(serializedBytes bytes: UnsafeRawBufferPointer) throws {
        self = try ONNXParser.parseModel(bytes)
    }

    package init(serializedBytes bytes: [UInt8]) throws {
        self = try bytes.withUnsafeBytes { try ONNXParser.parseModel($0) }
    }

    /// Reads and parses a `.onnx` file. Read failures are `ModelLoadError.io`.
    package init(contentsOf url: URL) throws {
        let data: Data
        do {
            // Not memory-mapped: a file truncated while mapped would fault instead of throwing.
            data = try Data(contentsOf: url)
        } catch {
            throw ModelLoadError.io("\(url.path): \(error)")
        }
        self = try data.withUnsafeBytes { try ONNXParser.parseModel($0) }
    }
}

@inline(__always)
private func withContext<T>(_ context: @autoclosure () -> String,
                            _ body: () throws(ModelLoadError) -> T) throws(ModelLoadError) -> T {
    do {
        return try body()
    } catch {
        throw error.inContext(context())
    }
}

enum ONNXParser {
    typealias R = ProtobufReader

    // MARK: ModelProto

    static func parseModel(_ bytes: UnsafeRawBufferPointer) throws(ModelLoadError) -> ONNXModel {
        if bytes.isEmpty { throw .truncated("input is empty (0 bytes)") }
        var r = R(bytes)
        var irVersion: Int64 = 0
        var producer = ""
        var opsets: [String: Int64] = [:]
        var opsetCount = 0
        var graph: ONNXGraph?
        while let tag = try r.readTag() {
            switch tag.field {
            case 1:
                try R.expect(tag.wireType, .varint, "ModelProto.ir_version")
                irVersion = try r.readInt64()
            case 2:
                try R.expect(tag.wireType, .lengthDelimited, "ModelProto.producer_name")
                producer = try r.readString("ModelProto.producer_name")
            case 7:
                try R.expect(tag.wireType, .lengthDelimited, "ModelProto.graph")
                var sub = try r.readSubmessage()
                var g = graph ?? ONNXGraph()  // repeated occurrences merge, as in protobuf
                try withContext("graph") { () throws(ModelLoadError) in try parseGraph(&sub, into: &g) }
                graph = g
            case 8:
                try R.expect(tag.wireType, .lengthDelimited, "ModelProto.opset_import")
                var sub = try r.readSubmessage()
                let index = opsetCount
                let (domain, version) = try withContext("opset_import[\(index)]") { () throws(ModelLoadError) in
                    try parseOpset(&sub)
                }
                if let old = opsets[domain], old != version {
                    throw .malformed("opset_import[\(index)]: domain '\(domain)' imported twice (versions \(old) and \(version))")
                }
                opsets[domain] = version
                opsetCount += 1
            default:
                try r.skip(tag.wireType, field: tag.field)
            }
        }
        guard let graph else {
            throw .malformed("ModelProto has no graph (field 7)")
        }
        if irVersion >= 3 && opsets.isEmpty {
            throw .malformed("ModelProto has no opset_import (field 8), required for ir_version \(irVersion)")
        }
        return ONNXModel(irVersion: irVersion, producerName: producer, opsetImports: opsets, graph: graph)
    }

    static func parseOpset(_ r: inout R) throws(ModelLoadError) -> (String, Int64) {
        var domain = ""
        var version: Int64 = 0
        while let tag = try r.readTag() {
            switch tag.field {
            case 1:
                try R.expect(tag.wireType, .lengthDelimited, "domain")
                domain = try r.readString("domain")
            case 2:
                try R.expect(tag.wireType, .varint, "version")
                version = try r.readInt64()
            default:
                try r.skip(tag.wireType, field: tag.field)
            }
        }
        return (domain == "ai.onnx" ? "" : domain, version)
    }

    // MARK: GraphProto

    /// Subgraph nesting parsed at most (If/Loop bodies; issue 13): deeper ones are recorded,
    /// not parsed, so a hostile file cannot exhaust the stack.
    static let maxSubgraphDepth = 4

    static func parseGraph(_ r: inout R, into g: inout ONNXGraph, depth: Int = 0) throws(ModelLoadError) {
        while let tag = try r.readTag() {
            switch tag.field {
            case 1:
                try R.expect(tag.wireType, .lengthDelimited, "node")
                var sub = try r.readSubmessage()
                g.nodes.append(try parseNode(&sub, index: g.nodes.count, depth: depth))
            case 2:
                try R.expect(tag.wireType, .lengthDelimited, "name")
                g.name = try r.readString("name")
            case 5:
                try R.expect(tag.wireType, .lengthDelimited, "initializer")
                var sub = try r.readSubmessage()
                let index = g.initializers.count
                g.initializers.append(try withContext("initializer[\(index)]") { () throws(ModelLoadError) in
                    try parseTensor(&sub)
                })
            case 11, 12, 13:
                let what = tag.field == 11 ? "input" : tag.field == 12 ? "output" : "value_info"
                try R.expect(tag.wireType, .lengthDelimited, what)
                var sub = try r.readSubmessage()
                let index = tag.field == 11 ? g.inputs.count : tag.field == 12 ? g.outputs.count : g.valueInfo.count
                let vi = try withContext("\(what)[\(index)]") { () throws(ModelLoadError) in try parseValueInfo(&sub) }
                switch tag.field {
                case 11: g.inputs.append(vi)
                case 12: g.outputs.append(vi)
                default: g.valueInfo.append(vi)
                }
            case 15:
                throw .unsupported("graph '\(g.name)' has a sparse_initializer (field 15); sparse initializers are not supported")
            default:
                try r.skip(tag.wireType, field: tag.field)
            }
        }
    }

    // MARK: NodeProto

    static func parseNode(_ r: inout R, index: Int, depth: Int = 0) throws(ModelLoadError) -> ONNXNode {
        var node = ONNXNode(opType: "", inputs: [], outputs: [])
        var attributeCount = 0
        func label() -> String {
            var s = "node[\(index)]"
            if !node.name.isEmpty { s += " '\(node.name)'" }
            if !node.opType.isEmpty { s += " (\(node.opType))" }
            return s
        }
        do throws(ModelLoadError) {
            while let tag = try r.readTag() {
                switch tag.field {
                case 1:
                    try R.expect(tag.wireType, .lengthDelimited, "input")
                    node.inputs.append(try r.readString("input[\(node.inputs.count)]"))
                case 2:
                    try R.expect(tag.wireType, .lengthDelimited, "output")
                    node.outputs.append(try r.readString("output[\(node.outputs.count)]"))
                case 3:
                    try R.expect(tag.wireType, .lengthDelimited, "name")
                    node.name = try r.readString("name")
                case 4:
                    try R.expect(tag.wireType, .lengthDelimited, "op_type")
                    node.opType = try r.readString("op_type")
                case 7:
                    try R.expect(tag.wireType, .lengthDelimited, "domain")
                    node.domain = try r.readString("domain")
                case 5:
                    try R.expect(tag.wireType, .lengthDelimited, "attribute")
                    var sub = try r.readSubmessage()
                    let i = attributeCount
                    let (name, value, subgraph) = try withContext("attribute[\(i)]") { () throws(ModelLoadError) in
                        try parseAttribute(&sub, depth: depth)
                    }
                    if node.attributes[name] != nil {
                        throw .malformed("attribute '\(name)' appears twice")
                    }
                    node.attributes[name] = value
                    if let subgraph { node.subgraphs[name] = subgraph }
                    attributeCount += 1
                default:
                    try r.skip(tag.wireType, field: tag.field)
                }
            }
            if node.opType.isEmpty { throw .malformed("node has no op_type") }
        } catch {
            throw error.inContext(label())
        }
        return node
    }

    // MARK: AttributeProto

    static func parseAttribute(_ r: inout R, depth: Int = 0) throws(ModelLoadError) -> (String, ONNXAttributeValue, ONNXGraph?) {
        var name = ""
        var type: Int32 = 0
        var f: Float?
        var i: Int64?
        var s: String?
        var t: ONNXTensor?
        var hasGraph = false
        var subgraph: ONNXGraph?
        var floats: [Float] = []
        var ints: [UInt64] = []
        var strings: [String] = []
        var tensors: [ONNXTensor] = []
        var otherKind: Int32?   // sparse tensor(s) / type proto(s) seen
        var refAttrName = ""
        do throws(ModelLoadError) {
            while let tag = try r.readTag() {
                switch tag.field {
                case 1:
                    try R.expect(tag.wireType, .lengthDelimited, "name")
                    name = try r.readString("name")
                case 2:
                    try R.expect(tag.wireType, .fixed32, "f")
                    f = Float(bitPattern: try r.readFixed32())
                case 3:
                    try R.expect(tag.wireType, .varint, "i")
                    i = try r.readInt64()
                case 4:
                    try R.expect(tag.wireType, .lengthDelimited, "s")
                    s = try r.readString("s")
                case 5:
                    try R.expect(tag.wireType, .lengthDelimited, "t")
                    var sub = try r.readSubmessage()
                    t = try withContext("t") { () throws(ModelLoadError) in try parseTensor(&sub) }
                case 6 where depth < maxSubgraphDepth:
                    // One subgraph (If's branches, Loop's body): parsed, nesting bounded. One that
                    // does not parse is recorded unparsed; the importer then refuses its node.
                    try R.expect(tag.wireType, .lengthDelimited, "g")
                    var sub = try r.readSubmessage()
                    var g = ONNXGraph()
                    do throws(ModelLoadError) {
                        try parseGraph(&sub, into: &g, depth: depth + 1)
                        subgraph = g
                    } catch {
                        subgraph = nil
                    }
                    hasGraph = true
                case 6, 11:
                    // Lists of subgraphs, and subgraphs nested deeper: recorded, not parsed.
                    try R.expect(tag.wireType, .lengthDelimited, tag.field == 6 ? "g" : "graphs")
                    _ = try r.readLengthDelimited()
                    hasGraph = true
                case 7:
                    let chunk = try r.readFixedChunk(tag.wireType, width: 4, "floats")
                    switch chunk {
                    case .single(let v): floats.append(Float(bitPattern: UInt32(truncatingIfNeeded: v)))
                    case .packed(let p, _):
                        let n = p.count / 4
                        floats.reserveCapacity(floats.count + n)
                        for k in 0 ..< n {
                            floats.append(Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * k, as: UInt32.self))))
                        }
                    }
                case 8:
                    try r.readRepeatedVarints(tag.wireType, into: &ints, "ints")
                case 9:
                    try R.expect(tag.wireType, .lengthDelimited, "strings")
                    strings.append(try r.readString("strings[\(strings.count)]"))
                case 10:
                    try R.expect(tag.wireType, .lengthDelimited, "tensors")
                    var sub = try r.readSubmessage()
                    let k = tensors.count
                    tensors.append(try withContext("tensors[\(k)]") { () throws(ModelLoadError) in try parseTensor(&sub) })
                case 14, 15, 22, 23:
                    try R.expect(tag.wireType, .lengthDelimited, "field \(tag.field)")
                    _ = try r.readLengthDelimited()
                    otherKind = tag.field == 14 ? 13 : tag.field == 15 ? 14 : tag.field == 22 ? 11 : 12
                case 20:
                    try R.expect(tag.wireType, .varint, "type")
                    type = try r.readInt32("type")
                case 21:
                    try R.expect(tag.wireType, .lengthDelimited, "ref_attr_name")
                    refAttrName = try r.readString("ref_attr_name")
                default:
                    try r.skip(tag.wireType, field: tag.field)
                }
            }
            if name.isEmpty { throw .malformed("attribute has no name") }
        } catch {
            throw name.isEmpty ? error : error.inContext("'\(name)'")
        }
        let label = "attribute '\(name)'"
        if !refAttrName.isEmpty {
            throw .unsupported("\(label) refers to function attribute '\(refAttrName)' (ref_attr_name); only valid inside functions")
        }
        if type == 0 {
            // Old files may omit `type`: infer it from the field that is set.
            if f != nil { type = 1 }
            else if i != nil { type = 2 }
            else if s != nil { type = 3 }
            else if t != nil { type = 4 }
            else if hasGraph { type = 5 }
            else if !floats.isEmpty { type = 6 }
            else if !ints.isEmpty { type = 7 }
            else if !strings.isEmpty { type = 8 }
            else if !tensors.isEmpty { type = 9 }
            else if let k = otherKind { type = k }
            else { throw .malformed("\(label) has no type and no value") }
        }
        let value: ONNXAttributeValue
        switch type {
        case 1: value = .float(f ?? 0)
        case 2: value = .int(i ?? 0)
        case 3: value = .string(s ?? "")
        case 4:
            guard let t else { throw .malformed("\(label) has type TENSOR but no tensor (field 5)") }
            value = .tensor(t)
        case 5, 10: value = .graph
        case 6: value = .floats(floats)
        case 7: value = .ints(ints.map { Int64(bitPattern: $0) })
        case 8: value = .strings(strings)
        case 9: value = .tensors(tensors)
        case 11, 12, 13, 14: value = .unparsed(attributeType: type)
        default: throw .malformed("\(label) has unknown attribute type \(type)")
        }
        return (name, value, type == 5 ? subgraph : nil)
    }

    // MARK: ValueInfoProto / TypeProto

    static func parseValueInfo(_ r: inout R) throws(ModelLoadError) -> ONNXValueInfo {
        var vi = ONNXValueInfo(name: "", elementType: nil, shape: nil)
        do throws(ModelLoadError) {
            while let tag = try r.readTag() {
                switch tag.field {
                case 1:
                    try R.expect(tag.wireType, .lengthDelimited, "name")
                    vi.name = try r.readString("name")
                case 2:
                    try R.expect(tag.wireType, .lengthDelimited, "type")
                    var sub = try r.readSubmessage()
                    (vi.elementType, vi.shape) = try parseType(&sub)
                default:
                    try r.skip(tag.wireType, field: tag.field)
                }
            }
        } catch {
            throw vi.name.isEmpty ? error : error.inContext("'\(vi.name)'")
        }
        return vi
    }

    /// TypeProto: only `tensor_type` is read; sequence/map/optional/sparse/opaque are skipped.
    static func parseType(_ r: inout R) throws(ModelLoadError) -> (ONNXDataType?, [ONNXDimension]?) {
        var elem: ONNXDataType?
        var shape: [ONNXDimension]?
        while let tag = try r.readTag() {
            guard tag.field == 1 else {
                try r.skip(tag.wireType, field: tag.field)
                continue
            }
            try R.expect(tag.wireType, .lengthDelimited, "type.tensor_type")
            var t = try r.readSubmessage()
            while let tt = try t.readTag() {
                switch tt.field {
                case 1:
                    try R.expect(tt.wireType, .varint, "tensor_type.elem_type")
                    let code = try t.readInt32("tensor_type.elem_type")
                    if code == 0 {
                        elem = nil
                    } else if let dt = ONNXDataType(rawValue: code) {
                        elem = dt
                    } else {
                        throw .unsupported("tensor_type.elem_type: unknown data type \(code)")
                    }
                case 2:
                    try R.expect(tt.wireType, .lengthDelimited, "tensor_type.shape")
                    var s = try t.readSubmessage()
                    var dims = shape ?? []
                    while let st = try s.readTag() {
                        guard st.field == 1 else {
                            try s.skip(st.wireType, field: st.field)
                            continue
                        }
                        try R.expect(st.wireType, .lengthDelimited, "shape.dim[\(dims.count)]")
                        var d = try s.readSubmessage()
                        dims.append(try parseDimension(&d, index: dims.count))
                    }
                    shape = dims
                default:
                    try t.skip(tt.wireType, field: tt.field)
                }
            }
        }
        return (elem, shape)
    }

    static func parseDimension(_ r: inout R, index: Int) throws(ModelLoadError) -> ONNXDimension {
        var dim = ONNXDimension.unknown
        while let tag = try r.readTag() {
            switch tag.field {
            case 1:
                try R.expect(tag.wireType, .varint, "shape.dim[\(index)].dim_value")
                let v = try r.readInt64()
                guard v >= 0, let n = Int(exactly: v) else {
                    throw .malformed("shape.dim[\(index)].dim_value is negative (\(v))")
                }
                dim = .value(n)
            case 2:
                try R.expect(tag.wireType, .lengthDelimited, "shape.dim[\(index)].dim_param")
                let p = try r.readString("shape.dim[\(index)].dim_param")
                dim = p.isEmpty ? .unknown : .symbol(p)
            default:
                try r.skip(tag.wireType, field: tag.field)
            }
        }
        return dim
    }
}
