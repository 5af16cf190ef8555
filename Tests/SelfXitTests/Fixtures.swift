import Foundation

/// Paths of the committed test fixtures (made by tools/export_test_models.py).
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static let repositoryRoot = directory.deletingLastPathComponent().deletingLastPathComponent()

    static func model(_ file: String) -> URL { directory.appendingPathComponent("models").appendingPathComponent(file) }

    static func floats(_ file: String) throws -> [Float] {
        let data = try Data(contentsOf: directory.appendingPathComponent("reference").appendingPathComponent(file))
        return data.withUnsafeBytes { raw in (0..<(data.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
    }

    struct Reference: Decodable { let input: String; let output: String }
    struct ModelEntry: Decodable {
        let file: String
        let input_shape: [String: [Int]]
        let output_shape: [String: [Int]]
        let max_abs_output: [String: Float]
        let references: [String: Reference]
        let unsupported_node: UnsupportedNode?
    }
    struct UnsupportedNode: Decodable { let name: String; let op_type: String }
    struct Manifest: Decodable { let models: [String: ModelEntry] }

    static func manifest() throws -> Manifest {
        let data = try Data(contentsOf: directory.appendingPathComponent("reference/manifest.json"))
        return try JSONDecoder().decode(Manifest.self, from: data)
    }
}
