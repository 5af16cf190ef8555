// ONNX in-memory model: the subset of onnx.proto (ModelProto, GraphProto, NodeProto,
// AttributeProto, TensorProto, ValueInfoProto, TypeProto, TensorShapeProto,
// OperatorSetIdProto) that the engine needs. Parsed by ONNXParser.swift.

/// `TensorProto.DataType` from onnx.proto (onnx 1.23).
package enum ONNXDataType: Int32, Sendable, CaseIterable {
    case float = 1, uint8 = 2, int8 = 3, uint16 = 4, int16 = 5, int32 = 6, int64 = 7
    case string = 8, bool = 9, float16 = 10, double = 11, uint32 = 12, uint64 = 13
    case complex64 = 14, complex128 = 15, bfloat16 = 16
    case float8e4m3fn = 17, float8e4m3fnuz = 18, float8e5m2 = 19, float8e5m2fnuz = 20
    case uint4 = 21, int4 = 22, float4e2m1 = 23, float8e8m0 = 24
    case uint2 = 25, int2 = 26, float6e2m3 = 27, float6e3m2 = 28
}

/// A decoded tensor payload.
package enum ONNXTensorData: Equatable, Sendable {
    case float([Float])
    case int64([Int64])

    package var count: Int {
        switch self {
        case .float(let v): return v.count
        case .int64(let v): return v.count
        }
    }
}

package struct ONNXTensor: Equatable, Sendable {
    package var name: String
    package var dims: [Int]
    package var dataType: ONNXDataType
    /// Decoded payload: float, float16, bfloat16, double → `.float`;
    /// int64, int32, int16, int8, uint8, uint16, uint32, uint64 (values ≤ Int64.max), bool → `.int64`.
    package var data: ONNXTensorData

    package init(name: String, dims: [Int], dataType: ONNXDataType, data: ONNXTensorData) {
        self.name = name
        self.dims = dims
        self.dataType = dataType
        self.data = data
    }
}

package enum ONNXAttributeValue: Equatable, Sendable {
    case float(Float)
    case int(Int64)
    case string(String)
    case tensor(ONNXTensor)
    case floats([Float])
    case ints([Int64])
    case strings([String])
    case tensors([ONNXTensor])
    /// A subgraph (GRAPH or GRAPHS): subgraphs are not supported, so it is recorded, not parsed.
    case graph
    /// SPARSE_TENSOR(S), TYPE_PROTO(S): recorded (with the AttributeProto.AttributeType code), not parsed.
    case unparsed(attributeType: Int32)
}

package struct ONNXNode: Equatable, Sendable {
    package var name: String
    package var opType: String
    /// "" for the default ai.onnx domain (as written in the file; not normalised or checked here).
    package var domain: String
    /// Input names in order; "" marks an omitted optional input.
    package var inputs: [String]
    package var outputs: [String]
    package var attributes: [String: ONNXAttributeValue]
    /// Parsed GRAPH attributes (If's then/else branches, Loop's body), by attribute name.
    package var subgraphs: [String: ONNXGraph] = [:]

    package init(name: String = "", opType: String, domain: String = "", inputs: [String], outputs: [String],
                attributes: [String: ONNXAttributeValue] = [:]) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }
}

package enum ONNXDimension: Equatable, Sendable {
    case value(Int)
    case symbol(String)
    case unknown
}

package struct ONNXValueInfo: Equatable, Sendable {
    package var name: String
    /// nil when the type is absent, not a tensor type, or UNDEFINED.
    package var elementType: ONNXDataType?
    /// nil when the rank is unknown (no shape); [] for a scalar.
    package var shape: [ONNXDimension]?

    package init(name: String, elementType: ONNXDataType?, shape: [ONNXDimension]?) {
        self.name = name
        self.elementType = elementType
        self.shape = shape
    }
}

package struct ONNXGraph: Equatable, Sendable {
    package var name: String
    package var nodes: [ONNXNode]
    package var initializers: [ONNXTensor]
    package var inputs: [ONNXValueInfo]
    package var outputs: [ONNXValueInfo]
    package var valueInfo: [ONNXValueInfo]

    package init(name: String = "", nodes: [ONNXNode] = [], initializers: [ONNXTensor] = [],
                inputs: [ONNXValueInfo] = [], outputs: [ONNXValueInfo] = [], valueInfo: [ONNXValueInfo] = []) {
        self.name = name
        self.nodes = nodes
        self.initializers = initializers
        self.inputs = inputs
        self.outputs = outputs
        self.valueInfo = valueInfo
    }
}

package struct ONNXModel: Equatable, Sendable {
    package var irVersion: Int64
    package var producerName: String
    /// Operator set per domain; "" is ai.onnx (an explicit "ai.onnx" is stored as "").
    package var opsetImports: [String: Int64]
    package var graph: ONNXGraph

    package init(irVersion: Int64, producerName: String, opsetImports: [String: Int64], graph: ONNXGraph) {
        self.irVersion = irVersion
        self.producerName = producerName
        self.opsetImports = opsetImports
        self.graph = graph
    }
}
