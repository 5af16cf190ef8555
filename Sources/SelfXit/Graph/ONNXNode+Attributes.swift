/// Typed access to a node's attributes, with ONNX defaults and clear errors.
extension ONNXNode {
    var displayName: String { name.isEmpty ? "\(opType)(\(outputs.first ?? "?"))" : name }

    func int(_ key: String, default value: Int) throws -> Int {
        guard let attribute = attributes[key] else { return value }
        guard case .int(let raw) = attribute, let result = Int(exactly: raw) else {
            throw SelfXitError.invalidModel("node '\(displayName)': attribute '\(key)' must be an int")
        }
        return result
    }

    func float(_ key: String, default value: Float) throws -> Float {
        guard let attribute = attributes[key] else { return value }
        switch attribute {
        case .float(let result): return result
        case .int(let raw): return Float(raw)
        default: throw SelfXitError.invalidModel("node '\(displayName)': attribute '\(key)' must be a float")
        }
    }

    func ints(_ key: String) throws -> [Int]? {
        guard let attribute = attributes[key] else { return nil }
        guard case .ints(let raw) = attribute else {
            throw SelfXitError.invalidModel("node '\(displayName)': attribute '\(key)' must be a list of ints")
        }
        return try raw.map {
            // Not `abs(value)`: abs(Int.min) traps, and Int64.min is one varint away in a file.
            guard let value = Int(exactly: $0), value > -(1 << 40), value < 1 << 40 else {
                throw SelfXitError.invalidModel("node '\(displayName)': attribute '\(key)' has an out-of-range value")
            }
            return value
        }
    }

    func string(_ key: String, default value: String) throws -> String {
        guard let attribute = attributes[key] else { return value }
        guard case .string(let result) = attribute else {
            throw SelfXitError.invalidModel("node '\(displayName)': attribute '\(key)' must be a string")
        }
        return result
    }

    func unsupported(_ detail: String) -> SelfXitError {
        .unsupportedOperator(op: opType, node: displayName, detail: detail)
    }

    func invalid(_ detail: String) -> SelfXitError {
        .invalidModel("node '\(displayName)' (\(opType)): \(detail)")
    }
}
