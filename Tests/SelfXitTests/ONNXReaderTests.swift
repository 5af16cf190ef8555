import Foundation
import XCTest
@testable import SelfXit

// MARK: - Test-only protobuf writer

/// Builds protobuf wire-format bytes for hand-made (and deliberately broken) ONNX models.
struct PBWriter {
    var bytes: [UInt8] = []

    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func tag(_ field: Int, _ wireType: Int) { varint(UInt64(field << 3 | wireType)) }
    mutating func int(_ field: Int, _ v: Int64) { tag(field, 0); varint(UInt64(bitPattern: v)) }
    mutating func fixed32(_ field: Int, _ v: UInt32) {
        tag(field, 5)
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }
    mutating func float(_ field: Int, _ v: Float) { fixed32(field, v.bitPattern) }
    mutating func data(_ field: Int, _ d: [UInt8]) { tag(field, 2); varint(UInt64(d.count)); bytes.append(contentsOf: d) }
    mutating func string(_ field: Int, _ s: String) { data(field, Array(s.utf8)) }
    mutating func message(_ field: Int, _ build: (inout PBWriter) -> Void) {
        var w = PBWriter()
        build(&w)
        data(field, w.bytes)
    }
    mutating func packedVarints(_ field: Int, _ vs: [Int64]) {
        var w = PBWriter()
        for v in vs { w.varint(UInt64(bitPattern: v)) }
        data(field, w.bytes)
    }
    mutating func packedFloats(_ field: Int, _ vs: [Float]) {
        data(field, vs.flatMap { f in withUnsafeBytes(of: f.bitPattern.littleEndian) { Array($0) } })
    }
}

func rawBytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

/// TensorProto builder (field numbers from onnx.proto).
func tensorProto(_ name: String, _ type: ONNXDataType, dims: [Int64], _ fill: @escaping (inout PBWriter) -> Void) -> (inout PBWriter) -> Void {
    return { w in
        w.packedVarints(1, dims)
        w.int(2, Int64(type.rawValue))
        w.string(8, name)
        fill(&w)
    }
}

func valueInfo(_ name: String, _ elem: ONNXDataType, _ dims: [Any]) -> (inout PBWriter) -> Void {
    return { w in
        w.string(1, name)
        w.message(2) { t in
            t.message(1) { tt in
                tt.int(1, Int64(elem.rawValue))
                tt.message(2) { s in
                    for d in dims {
                        s.message(1) { dm in
                            if let v = d as? Int { dm.int(1, Int64(v)) } else if let p = d as? String { dm.string(2, p) }
                        }
                    }
                }
            }
        }
    }
}

/// A ModelProto whose graph is written LAST, so that every proper prefix lacks a complete graph.
func makeModel(initializers: [(inout PBWriter) -> Void], extraGraph: ((inout PBWriter) -> Void)? = nil) -> [UInt8] {
    var m = PBWriter()
    m.int(1, 9)
    m.string(2, "writer")
    m.message(8) { o in o.string(1, ""); o.int(2, 18) }
    m.message(8) { o in o.string(1, "ai.onnx.ml"); o.int(2, 3) }
    m.message(7) { g in
        g.message(1) { n in
            n.string(1, "X"); n.string(1, "W"); n.string(1, "")
            n.string(2, "Y")
            n.string(3, "mm")
            n.string(4, "MatMul")
            n.message(5) { a in a.string(1, "alpha"); a.float(2, 0.5); a.int(20, 1) }
            n.message(5) { a in a.string(1, "perm"); a.packedVarints(8, [0, 2, -1]); a.int(20, 7) }   // packed ints
            n.message(5) { a in a.string(1, "scales"); a.packedFloats(7, [1, 2.5]); a.int(20, 6) }    // packed floats
            n.message(5) { a in a.string(1, "mode"); a.string(4, "nearest") }                         // no type: inferred
        }
        g.string(2, "writer-graph")
        for i in initializers { g.message(5, i) }
        g.message(11, valueInfo("X", .float, ["batch", 3]))
        g.message(12, valueInfo("Y", .float, ["batch", 4]))
        extraGraph?(&g)
    }
    return m.bytes
}

func defaultWriterModel() -> [UInt8] {
    makeModel(initializers: [
        tensorProto("W", .float, dims: [3, 4]) { $0.data(9, rawBytes((0 ..< 12).map { Float($0) - 5.5 })) },
        tensorProto("P", .float, dims: [3]) { $0.packedFloats(4, [1, -1, 0.125]) },
        tensorProto("U", .float, dims: [2]) { $0.float(4, 7); $0.float(4, 8) },                     // unpacked float_data
        tensorProto("I", .int64, dims: [4]) { $0.packedVarints(7, [0, -1, Int64.max, Int64.min]) },
        tensorProto("I2", .int64, dims: [2]) { $0.int(7, 5); $0.int(7, -6) },                        // unpacked int64_data
        tensorProto("BF", .bfloat16, dims: [3]) { $0.data(9, rawBytes([UInt16(0x3F80), 0xC040, 0x7F80])) },
        tensorProto("D", .double, dims: [2]) { $0.data(9, rawBytes([0.5, -1e300])) },
        tensorProto("I8", .int8, dims: [3]) { $0.data(9, [0xFF, 0x7F, 0x80]) },
        tensorProto("U8", .uint8, dims: [2]) { $0.packedVarints(5, [255, 7]) },
        tensorProto("BO", .bool, dims: [3]) { $0.data(9, [1, 0, 1]) },
        tensorProto("I32", .int32, dims: [2]) { $0.packedVarints(5, [-3, 2_000_000_000]) },
        tensorProto("U32", .uint32, dims: [1]) { $0.data(9, rawBytes([UInt32.max])) },
        tensorProto("U64", .uint64, dims: [1]) { $0.packedVarints(11, [42]) },
        tensorProto("SC", .float, dims: []) { $0.data(9, rawBytes([Float(3)])) },                      // scalar
        tensorProto("E", .float, dims: [0, 5]) { _ in },                                               // empty
    ])
}

// Made by onnx 1.23's helper API (script below) — cross-checks the reader against the official serializer.
//   w = numpy_helper.from_array(np.array([[1.5,-2],[0.25,3]], np.float32), "W")          # raw_data
//   b = helper.make_tensor("B", FLOAT, [2], [0.5,-0.5])                                   # float_data
//   shape = helper.make_tensor("S", INT64, [2], [-1, 2])                                  # int64_data
//   hv = np.array([1.0,-2.5,6e-8,np.inf,-np.inf,65504.0], np.float16)                     # 6e-8 → 2^-24 (subnormal)
//   h16 = numpy_helper.from_array(hv, "H"); h16t = helper.make_tensor("HT", FLOAT16, [2], hv[:2].tolist())   # int32_data bits
//   node = make_node("Gemm", ["X","W","B"], ["Y"], name="gemm0", alpha=0.5, transB=1)
//   node2 = make_node("Custom", ["Y"], ["Z"], name="c0", domain="com.example", f=1.25, i=-7, s="hello",
//       t=make_tensor("tv", INT32, [3], [1,-2,3]), floats=[1.0,2.0], ints=[1,-1,3], strings=["a","bé"],
//       g=make_graph([], "sub", [], []))
//   x = make_tensor_value_info("X", FLOAT, ["batch", 2]); z = make_tensor_value_info("Z", FLOAT, ["batch", None])
//   y = make_tensor_value_info("Y", FLOAT16, [])
//   g = make_graph([node, node2], "fixture", [x], [z], [w, b, shape, h16, h16t], value_info=[y])
//   m = make_model(g, producer_name="fixture-maker", opset_imports=[make_opsetid("",17), make_opsetid("com.example",2)])
//   m.ir_version = 8; base64.b64encode(m.SerializeToString())
let pythonFixture: [UInt8] = Array(Data(base64Encoded:
    "CAgSDWZpeHR1cmUtbWFrZXI6uAMKOQoBWAoBVwoBQhIBWRoFZ2VtbTAiBEdlbW0qDwoFYWxwaGEVAAAAP6ABASoNCgZ0cmFuc0IYAaABAgrEAQoBWRIBWhoCYzAiBkN1c3RvbSoLCgFmFQAAoD+gAQEqFQoGZmxvYXRzPQAAgD89AAAAQKABBioNCgFnMgUSA3N1YqABBSoRCgFpGPn//////////wGgAQIqGAoEaW50c0ABQP///////////wFAA6ABByoNCgFzIgVoZWxsb6ABAyoUCgdzdHJpbmdzSgFhSgNiw6mgAQgqHgoBdCoWCAMQBioMAf7//////////wEDQgJ0dqABBDoLY29tLmV4YW1wbGUSB2ZpeHR1cmUqGwgCCAIQAUIBV0oQAADAPwAAAMAAAIA+AABAQCoRCAIQASIIAAAAPwAAAL9CAUIqFAgCEAc6C////////////wECQgFTKhUIBhAKQgFISgwAPADBAQAAfAD8/3sqDwgCEAoqBYB4gIIDQgJIVFoYCgFYEhMKEQgBEg0KBxIFYmF0Y2gKAggCYhYKAVoSEQoPCAESCwoHEgViYXRjaAoAagsKAVkSBgoECAoSAEIECgAQEUIPCgtjb20uZXhhbXBsZRAC")!)


func loadError(_ bytes: [UInt8]) -> ModelLoadError? {
    do {
        _ = try ONNXModel(serializedBytes: bytes)
        return nil
    } catch let e as ModelLoadError {
        return e
    } catch {
        XCTFail("non-ModelLoadError thrown: \(error)")
        return nil
    }
}

func isTruncatedOrMalformed(_ e: ModelLoadError?) -> Bool {
    switch e {
    case .truncated?, .malformed?: return true
    default: return false
    }
}

// MARK: - Tests

final class ONNXReaderTests: XCTestCase {

    func testPythonFixture() throws {
        let m = try ONNXModel(serializedBytes: pythonFixture)
        XCTAssertEqual(m.irVersion, 8)
        XCTAssertEqual(m.producerName, "fixture-maker")
        XCTAssertEqual(m.opsetImports, ["": 17, "com.example": 2])
        let g = m.graph
        XCTAssertEqual(g.name, "fixture")
        XCTAssertEqual(g.initializers.map(\.name), ["W", "B", "S", "H", "HT"])
        XCTAssertEqual(g.initializers[0], ONNXTensor(name: "W", dims: [2, 2], dataType: .float, data: .float([1.5, -2, 0.25, 3])))
        XCTAssertEqual(g.initializers[1], ONNXTensor(name: "B", dims: [2], dataType: .float, data: .float([0.5, -0.5])))
        XCTAssertEqual(g.initializers[2], ONNXTensor(name: "S", dims: [2], dataType: .int64, data: .int64([-1, 2])))
        let h = g.initializers[3]
        XCTAssertEqual(h.dataType, .float16)
        XCTAssertEqual(h.dims, [6])
        XCTAssertEqual(h.data, .float([1, -2.5, 0x1p-24, .infinity, -.infinity, 65504]))
        XCTAssertEqual(g.initializers[4], ONNXTensor(name: "HT", dims: [2], dataType: .float16, data: .float([1, -2.5])))

        XCTAssertEqual(g.nodes.count, 2)
        XCTAssertEqual(g.nodes[0], ONNXNode(name: "gemm0", opType: "Gemm", domain: "", inputs: ["X", "W", "B"], outputs: ["Y"],
                                            attributes: ["alpha": .float(0.5), "transB": .int(1)]))
        let c = g.nodes[1]
        XCTAssertEqual(c.domain, "com.example")
        XCTAssertEqual(c.attributes, [
            "f": .float(1.25), "i": .int(-7), "s": .string("hello"),
            "t": .tensor(ONNXTensor(name: "tv", dims: [3], dataType: .int32, data: .int64([1, -2, 3]))),
            "floats": .floats([1, 2]), "ints": .ints([1, -1, 3]), "strings": .strings(["a", "bé"]), "g": .graph,
        ])
        XCTAssertEqual(g.inputs, [ONNXValueInfo(name: "X", elementType: .float, shape: [.symbol("batch"), .value(2)])])
        XCTAssertEqual(g.outputs, [ONNXValueInfo(name: "Z", elementType: .float, shape: [.symbol("batch"), .unknown])])
        XCTAssertEqual(g.valueInfo, [ONNXValueInfo(name: "Y", elementType: .float16, shape: [])])
    }

    func testWriterModel() throws {
        let m = try ONNXModel(serializedBytes: defaultWriterModel())
        XCTAssertEqual(m.irVersion, 9)
        XCTAssertEqual(m.producerName, "writer")
        XCTAssertEqual(m.opsetImports, ["": 18, "ai.onnx.ml": 3])
        let g = m.graph
        XCTAssertEqual(g.name, "writer-graph")
        let t = Dictionary(uniqueKeysWithValues: g.initializers.map { ($0.name, $0) })
        XCTAssertEqual(t["W"]?.dims, [3, 4])
        XCTAssertEqual(t["W"]?.data, .float((0 ..< 12).map { Float($0) - 5.5 }))
        XCTAssertEqual(t["P"]?.data, .float([1, -1, 0.125]))
        XCTAssertEqual(t["U"]?.data, .float([7, 8]))
        XCTAssertEqual(t["I"]?.data, .int64([0, -1, Int64.max, Int64.min]))
        XCTAssertEqual(t["I2"]?.data, .int64([5, -6]))
        XCTAssertEqual(t["BF"]?.data, .float([1, -3, .infinity]))
        XCTAssertEqual(t["D"]?.data, .float([0.5, -.infinity]))
        XCTAssertEqual(t["I8"]?.data, .int64([-1, 127, -128]))
        XCTAssertEqual(t["U8"]?.data, .int64([255, 7]))
        XCTAssertEqual(t["BO"]?.data, .int64([1, 0, 1]))
        XCTAssertEqual(t["I32"]?.data, .int64([-3, 2_000_000_000]))
        XCTAssertEqual(t["U32"]?.data, .int64([4_294_967_295]))
        XCTAssertEqual(t["U64"]?.data, .int64([42]))
        XCTAssertEqual(t["SC"], ONNXTensor(name: "SC", dims: [], dataType: .float, data: .float([3])))
        XCTAssertEqual(t["E"], ONNXTensor(name: "E", dims: [0, 5], dataType: .float, data: .float([])))
        XCTAssertEqual(g.nodes, [ONNXNode(name: "mm", opType: "MatMul", inputs: ["X", "W", ""], outputs: ["Y"], attributes: [
            "alpha": .float(0.5), "perm": .ints([0, 2, -1]), "scales": .floats([1, 2.5]), "mode": .string("nearest"),
        ])])
        XCTAssertEqual(g.inputs, [ONNXValueInfo(name: "X", elementType: .float, shape: [.symbol("batch"), .value(3)])])
        XCTAssertEqual(g.outputs, [ONNXValueInfo(name: "Y", elementType: .float, shape: [.symbol("batch"), .value(4)])])
    }

    func testFloat16ConversionExhaustive() {
        XCTAssertEqual(float16BitsToFloat(0x0001), 0x1p-24)            // smallest subnormal
        XCTAssertEqual(float16BitsToFloat(0x03FF), 0x1.FF8p-15)        // largest subnormal
        XCTAssertEqual(float16BitsToFloat(0x0400), 0x1p-14)            // smallest normal
        XCTAssertEqual(float16BitsToFloat(0x8000).bitPattern, (-0.0 as Float).bitPattern)
        XCTAssertEqual(float16BitsToFloat(0x7C00), .infinity)
        XCTAssertEqual(float16BitsToFloat(0xFC00), -.infinity)
        XCTAssertTrue(float16BitsToFloat(0x7E00).isNaN)
        XCTAssertTrue(float16BitsToFloat(0x7C01).isNaN)                // signalling NaN stays NaN
        XCTAssertEqual(float16BitsToFloat(0x7BFF), 65504)
        #if !(os(macOS) && arch(x86_64))
        for bits in 0 ... UInt16.max {
            let expected = Float(Float16(bitPattern: bits))
            let got = float16BitsToFloat(bits)
            if expected.isNaN {
                XCTAssertTrue(got.isNaN, "bits \(bits)")
            } else if got.bitPattern != expected.bitPattern {
                XCTFail("float16 \(String(bits, radix: 16)): got \(got), expected \(expected)")
                return
            }
        }
        #endif
        XCTAssertEqual(bfloat16BitsToFloat(0x3F80), 1)
        XCTAssertEqual(bfloat16BitsToFloat(0x0001), Float(bitPattern: 0x0001_0000))   // bfloat16 subnormal
        XCTAssertEqual(bfloat16BitsToFloat(0xFF80), -.infinity)
        XCTAssertTrue(bfloat16BitsToFloat(0x7FC0).isNaN)
    }

    func testTruncatedAtEveryOffset() {
        let model = defaultWriterModel()
        XCTAssertNoThrow(try ONNXModel(serializedBytes: model))
        for n in 0 ..< model.count {
            let e = loadError(Array(model[0 ..< n]))
            XCTAssertTrue(isTruncatedOrMalformed(e), "prefix of \(n)/\(model.count) bytes: \(String(describing: e))")
        }
        // The onnx-written fixture stores the graph before the opset imports; every prefix that
        // ends before the first opset import is complete must fail, the rest must at least not crash.
        let full = try! ONNXModel(serializedBytes: pythonFixture)
        for n in 0 ..< pythonFixture.count {
            let prefix = Array(pythonFixture[0 ..< n])
            if let m = try? ONNXModel(serializedBytes: prefix) {
                XCTAssertEqual(m.graph, full.graph, "prefix \(n) parsed with a different graph")
                XCTAssertEqual(m.opsetImports.count, 1, "prefix \(n)")
            }
        }
    }

    func testRandomByteStringsNeverCrash() {
        var rng = SeededRandom(seed: 0x5E1F_0000)
        var parsed = 0
        for _ in 0 ..< 10_000 {
            let n = Int.random(in: 0 ... 256, using: &rng)
            var bytes = (0 ..< n).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
            // Half of them start like a ModelProto to get past the first field more often.
            if Bool.random(using: &rng) { bytes = [0x08, 0x08, 0x3A] + bytes }
            do { _ = try ONNXModel(serializedBytes: bytes); parsed += 1 } catch is ModelLoadError {} catch {
                XCTFail("unexpected error \(error)")
            }
        }
        XCTAssertLessThan(parsed, 10_000)
    }

    func testSingleByteCorruptionsNeverCrash() {
        // Every offset × every byte value for the onnx-written fixture (~124k parses),
        // every offset × 16 seeded random values for the writer model.
        var outcomes = [0, 0]
        for i in 0 ..< pythonFixture.count {
            var b = pythonFixture
            for v in 0 ... 255 {
                b[i] = UInt8(v)
                if (try? ONNXModel(serializedBytes: b)) != nil { outcomes[0] += 1 } else { outcomes[1] += 1 }
            }
        }
        var rng = SeededRandom(seed: 42)
        let model = defaultWriterModel()
        for i in 0 ..< model.count {
            var b = model
            for _ in 0 ..< 16 {
                b[i] = UInt8.random(in: 0 ... 255, using: &rng)
                if (try? ONNXModel(serializedBytes: b)) != nil { outcomes[0] += 1 } else { outcomes[1] += 1 }
            }
        }
        XCTAssertGreaterThan(outcomes[0], 0)
        XCTAssertGreaterThan(outcomes[1], 0)
    }

    func testElementCountMismatch() {
        let raw = makeModel(initializers: [tensorProto("W", .float, dims: [3, 4]) { $0.data(9, rawBytes([Float](repeating: 1, count: 11))) }])
        guard case .malformed(let m1)? = loadError(raw) else { return XCTFail("\(String(describing: loadError(raw)))") }
        XCTAssertTrue(m1.contains("tensor 'W'") && m1.contains("44 bytes") && m1.contains("48"), m1)

        let typed = makeModel(initializers: [tensorProto("B", .float, dims: [4]) { $0.packedFloats(4, [1, 2, 3]) }])
        guard case .malformed(let m2)? = loadError(typed) else { return XCTFail() }
        XCTAssertTrue(m2.contains("tensor 'B'") && m2.contains("float_data has 3 elements"), m2)

        let ints = makeModel(initializers: [tensorProto("S", .int64, dims: [1]) { $0.packedVarints(7, [1, 2]) }])
        guard case .malformed(let m3)? = loadError(ints) else { return XCTFail() }
        XCTAssertTrue(m3.contains("tensor 'S'"), m3)

        let none = makeModel(initializers: [tensorProto("N", .float, dims: [2]) { _ in }])
        XCTAssertTrue(isTruncatedOrMalformed(loadError(none)))

        let both = makeModel(initializers: [tensorProto("X2", .float, dims: [1]) { $0.data(9, rawBytes([Float(1)])); $0.packedFloats(4, [1]) }])
        guard case .malformed(let m4)? = loadError(both) else { return XCTFail() }
        XCTAssertTrue(m4.contains("both raw_data"), m4)

        let wrongField = makeModel(initializers: [tensorProto("WF", .float, dims: [1]) { $0.packedVarints(7, [1]) }])
        guard case .malformed(let m5)? = loadError(wrongField) else { return XCTFail() }
        XCTAssertTrue(m5.contains("int64_data"), m5)
    }

    func testBadDims() {
        let negative = makeModel(initializers: [tensorProto("NEG", .float, dims: [-1]) { _ in }])
        guard case .malformed(let m1)? = loadError(negative) else { return XCTFail() }
        XCTAssertTrue(m1.contains("tensor 'NEG'") && m1.contains("negative"), m1)

        let overflow = makeModel(initializers: [tensorProto("BIG", .float, dims: [1 << 32, 1 << 32, 4]) { _ in }])
        guard case .malformed(let m2)? = loadError(overflow) else { return XCTFail() }
        XCTAssertTrue(m2.contains("tensor 'BIG'") && m2.contains("overflow"), m2)

        // Huge but non-overflowing dims with a tiny payload: refused before allocating anything.
        let huge = makeModel(initializers: [tensorProto("HUGE", .float, dims: [1 << 40]) { $0.data(9, [0, 0, 0, 0]) }])
        guard case .malformed(let m3)? = loadError(huge) else { return XCTFail() }
        XCTAssertTrue(m3.contains("tensor 'HUGE'"), m3)
        let hugeRaw = makeModel(initializers: [tensorProto("HR", .float, dims: [1 << 62]) { $0.data(9, [0, 0, 0, 0]) }])
        guard case .malformed? = loadError(hugeRaw) else { return XCTFail() }

        let negDim = makeModel(initializers: [], extraGraph: { g in g.message(13, valueInfo("V", .float, [-2])) })
        guard case .malformed(let m4)? = loadError(negDim) else { return XCTFail() }
        XCTAssertTrue(m4.contains("'V'"), m4)
    }

    func testExternalDataRefused() {
        let ext = makeModel(initializers: [tensorProto("EXT", .float, dims: [2]) { w in
            w.message(13) { kv in kv.string(1, "location"); kv.string(2, "weights.bin") }
            w.int(14, 1)
        }])
        guard case .unsupported(let m)? = loadError(ext) else { return XCTFail("\(String(describing: loadError(ext)))") }
        XCTAssertTrue(m.contains("tensor 'EXT'") && m.contains("external"), m)
    }

    func testUnsupportedTypesRefused() {
        let str = makeModel(initializers: [tensorProto("STR", .string, dims: [1]) { $0.data(6, [0x61]) }])
        guard case .unsupported(let m1)? = loadError(str) else { return XCTFail() }
        XCTAssertTrue(m1.contains("tensor 'STR'"), m1)
        let f8 = makeModel(initializers: [tensorProto("F8", .float8e4m3fn, dims: [1]) { $0.data(9, [0]) }])
        guard case .unsupported? = loadError(f8) else { return XCTFail() }
        let unknown = makeModel(initializers: [{ w in w.int(2, 99); w.string(8, "Q") }])
        guard case .unsupported? = loadError(unknown) else { return XCTFail() }
        let bigU64 = makeModel(initializers: [tensorProto("U", .uint64, dims: [1]) { $0.packedVarints(11, [-1]) }])
        guard case .unsupported? = loadError(bigU64) else { return XCTFail() }
        let sparse = makeModel(initializers: [], extraGraph: { g in g.message(15) { _ in } })
        guard case .unsupported(let m2)? = loadError(sparse) else { return XCTFail() }
        XCTAssertTrue(m2.contains("sparse_initializer"), m2)
    }

    func testEmptyInput() {
        XCTAssertEqual(loadError([]), .truncated("input is empty (0 bytes)"))
        XCTAssertThrowsError(try ONNXModel(serializedBytes: UnsafeRawBufferPointer(start: nil, count: 0)))
    }

    func testHugeDeclaredLength() {
        // graph (field 7) claiming 2^62 bytes, and 2^64-1 bytes (does not fit in Int).
        var w = PBWriter()
        w.tag(7, 2); w.varint(1 << 62); w.bytes += [1, 2, 3]
        guard case .truncated(let m)? = loadError(w.bytes) else { return XCTFail() }
        XCTAssertTrue(m.contains("runs past the end"), m)
        var w2 = PBWriter()
        w2.tag(7, 2); w2.varint(UInt64.max)
        guard case .truncated? = loadError(w2.bytes) else { return XCTFail() }
        // A raw_data length past the end of its enclosing tensor message.
        let inner = makeModel(initializers: [{ t in t.tag(9, 2); t.varint(1000); t.bytes += [0, 0] }])
        guard case .truncated(let m3)? = loadError(inner) else { return XCTFail() }
        XCTAssertTrue(m3.contains("initializer[0]"), m3)
    }

    func testWireFormatErrors() {
        // varint of 11 bytes
        var w = PBWriter()
        w.tag(1, 0); w.bytes += [UInt8](repeating: 0xFF, count: 10) + [0x01]
        guard case .malformed(let m1)? = loadError(w.bytes) else { return XCTFail() }
        XCTAssertTrue(m1.contains("10 bytes"), m1)
        // 10-byte varint overflowing 64 bits
        var w1 = PBWriter()
        w1.tag(1, 0); w1.bytes += [UInt8](repeating: 0xFF, count: 9) + [0x02]
        guard case .malformed? = loadError(w1.bytes) else { return XCTFail() }
        // max 10-byte varint is fine (ir_version -1), then missing graph
        var w1b = PBWriter()
        w1b.int(1, -1)
        XCTAssertEqual(w1b.bytes.count, 11)
        XCTAssertEqual(loadError(w1b.bytes), .malformed("ModelProto has no graph (field 7)"))
        // group wire type, unknown field
        var w2 = PBWriter()
        w2.tag(5, 3); w2.tag(5, 4)
        guard case .malformed(let m2)? = loadError(w2.bytes) else { return XCTFail() }
        XCTAssertTrue(m2.contains("group"), m2)
        // invalid wire types 6, 7 and field number 0
        for bad: [UInt8] in [[0x0E, 0], [0x0F, 0], [0x00, 0], [0x02, 0]] {
            guard case .malformed? = loadError(bad) else { return XCTFail("\(bad)") }
        }
        // wrong wire type for a known field
        var w3 = PBWriter()
        w3.fixed32(1, 0)
        guard case .malformed(let m3)? = loadError(w3.bytes) else { return XCTFail() }
        XCTAssertTrue(m3.contains("ir_version"), m3)
        // invalid UTF-8 in a node name
        let badName = makeModel(initializers: [], extraGraph: { g in g.message(1) { n in n.string(4, "Relu"); n.data(3, [0x66, 0xC3, 0x28]) } })
        guard case .malformed(let m4)? = loadError(badName) else { return XCTFail() }
        XCTAssertTrue(m4.contains("UTF-8") && m4.contains("node[1]"), m4)
        // unknown fields of every wire type are skipped
        var ok = PBWriter(bytes: defaultWriterModel())
        ok.int(100, 5); ok.fixed32(101, 1); ok.tag(102, 1); ok.bytes += [UInt8](repeating: 0, count: 8); ok.string(103, "x")
        XCTAssertNoThrow(try ONNXModel(serializedBytes: ok.bytes))
        // packed varints ending inside a varint
        let badPacked = makeModel(initializers: [tensorProto("PV", .int64, dims: [1]) { $0.data(7, [0x80]) }])
        guard case .truncated(let m5)? = loadError(badPacked) else { return XCTFail() }
        XCTAssertTrue(m5.contains("tensor 'PV'"), m5)
        // packed float length not a multiple of 4
        let badFloats = makeModel(initializers: [tensorProto("PF", .float, dims: [1]) { $0.data(4, [0, 0, 0, 0, 0]) }])
        guard case .malformed? = loadError(badFloats) else { return XCTFail() }
    }

    func testModelLevelValidation() {
        // No graph, no opset_import, duplicate attribute, node without op_type.
        var w = PBWriter()
        w.int(1, 8); w.message(8) { o in o.int(2, 17) }
        XCTAssertEqual(loadError(w.bytes), .malformed("ModelProto has no graph (field 7)"))
        var w2 = PBWriter()
        w2.int(1, 8); w2.message(7) { g in g.string(2, "g") }
        guard case .malformed(let m)? = loadError(w2.bytes) else { return XCTFail() }
        XCTAssertTrue(m.contains("opset_import"), m)
        let dup = makeModel(initializers: [], extraGraph: { g in g.message(1) { n in
            n.string(4, "Relu"); n.string(3, "r")
            n.message(5) { a in a.string(1, "k"); a.int(3, 1); a.int(20, 2) }
            n.message(5) { a in a.string(1, "k"); a.int(3, 2); a.int(20, 2) }
        } })
        guard case .malformed(let m2)? = loadError(dup) else { return XCTFail() }
        XCTAssertTrue(m2.contains("node[1] 'r' (Relu)") && m2.contains("'k'"), m2)
        let noOp = makeModel(initializers: [], extraGraph: { g in g.message(1) { n in n.string(3, "anon") } })
        guard case .malformed(let m3)? = loadError(noOp) else { return XCTFail() }
        XCTAssertTrue(m3.contains("op_type"), m3)
    }

    func testAttributeKinds() throws {
        let bytes = makeModel(initializers: [], extraGraph: { g in g.message(1) { n in
            n.string(4, "If"); n.string(7, "ai.onnx")
            n.message(5) { a in a.string(1, "then_branch"); a.message(6) { sg in sg.string(2, "sub") }; a.int(20, 5) }
            n.message(5) { a in a.string(1, "ts"); a.message(10, tensorProto("a", .int64, dims: [1]) { $0.packedVarints(7, [4]) }); a.int(20, 9) }
            n.message(5) { a in a.string(1, "tp"); a.message(14) { _ in }; a.int(20, 13) }
            n.message(5) { a in a.string(1, "inferred_ints"); a.int(8, 3); a.int(8, 4) }   // unpacked, no type
            n.message(5) { a in a.string(1, "empty_floats"); a.int(20, 6) }
        } })
        let m = try ONNXModel(serializedBytes: bytes)
        XCTAssertEqual(m.graph.nodes[1].domain, "ai.onnx")
        XCTAssertEqual(m.graph.nodes[1].attributes, [
            "then_branch": .graph,
            "ts": .tensors([ONNXTensor(name: "a", dims: [1], dataType: .int64, data: .int64([4]))]),
            "tp": .unparsed(attributeType: 13),
            "inferred_ints": .ints([3, 4]),
            "empty_floats": .floats([]),
        ])
        let ref = makeModel(initializers: [], extraGraph: { g in g.message(1) { n in
            n.string(4, "Relu"); n.message(5) { a in a.string(1, "alpha"); a.string(21, "outer"); a.int(20, 1) }
        } })
        guard case .unsupported? = loadError(ref) else { return XCTFail() }
        let noValue = makeModel(initializers: [], extraGraph: { g in g.message(1) { n in
            n.string(4, "Relu"); n.message(5) { a in a.string(1, "alpha") }
        } })
        guard case .malformed? = loadError(noValue) else { return XCTFail() }
    }

    func testFileLoading() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("selfxit-reader-\(UUID().uuidString).onnx")
        try Data(pythonFixture).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        XCTAssertEqual(try ONNXModel(contentsOf: url), try ONNXModel(serializedBytes: pythonFixture))
        let missing = url.appendingPathExtension("missing")
        XCTAssertThrowsError(try ONNXModel(contentsOf: missing)) { e in
            guard case .io(let m)? = e as? ModelLoadError else { return XCTFail("\(e)") }
            XCTAssertTrue(m.contains(missing.lastPathComponent), m)
        }
    }

    /// ~45 MB of weights (raw_data float, packed float_data, raw float16); prints the parse time.
    func testLargeModelParseTime() throws {
        let rawCount = 9_000_000, packedCount = 2_000_000, halfCount = 1_000_000
        let model = makeModel(initializers: [
            tensorProto("big_raw", .float, dims: [3000, 3000]) { $0.data(9, [UInt8](repeating: 0x3F, count: rawCount * 4)) },
            tensorProto("big_packed", .float, dims: [Int64(packedCount)]) { $0.data(4, [UInt8](repeating: 0x40, count: packedCount * 4)) },
            tensorProto("big_half", .float16, dims: [Int64(halfCount)]) { $0.data(9, [UInt8](repeating: 0x3C, count: halfCount * 2)) },
        ])
        XCTAssertGreaterThan(model.count, 45_000_000)
        var best = Double.infinity
        for _ in 0 ..< 3 {
            let start = DispatchTime.now().uptimeNanoseconds
            let m = try ONNXModel(serializedBytes: model)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            best = min(best, seconds)
            XCTAssertEqual(m.graph.initializers.map { $0.data.count }, [rawCount, packedCount, halfCount])
        }
        print("ONNX reader: parsed \(model.count) bytes in \(String(format: "%.1f", best * 1000)) ms")
        XCTAssertLessThan(best, 1.0)
    }

    /// Set SELFXIT_ONNX_BENCH_MODEL=/path/model.onnx to time the reader on a real file.
    func testBenchmarkExternalFile() throws {
        guard let path = ProcessInfo.processInfo.environment["SELFXIT_ONNX_BENCH_MODEL"] else {
            throw XCTSkip("SELFXIT_ONNX_BENCH_MODEL not set")
        }
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        var best = Double.infinity
        var m: ONNXModel?
        for _ in 0 ..< 3 {
            let start = DispatchTime.now().uptimeNanoseconds
            m = try ONNXModel(serializedBytes: bytes)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        if let t = m?.graph.initializers.first, case .float(let v) = t.data {
            print("ONNX reader: first initializer '\(t.name)' \(t.dims) sum \(v.reduce(0.0) { $0 + Double($1) })")
        }
        print("ONNX reader: \(path): \(bytes.count) bytes, \(m?.graph.nodes.count ?? 0) nodes, \(m?.graph.initializers.count ?? 0) initializers in \(String(format: "%.1f", best * 1000)) ms")
    }
}
