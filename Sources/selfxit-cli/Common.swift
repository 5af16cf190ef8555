import ArgumentParser
import Foundation
import SelfXit

/// A comma-separated list of finite numbers ("0.485,0.456,0.406"); anything else is refused
/// by the parser with the flag named.
struct FloatList: ExpressibleByArgument, CustomStringConvertible {
    var values: [Float]
    init(_ values: [Float]) { self.values = values }
    init?(argument: String) {
        let parts = argument.split(separator: ",", omittingEmptySubsequences: false)
        var values: [Float] = []
        for part in parts {
            guard let value = Float(part.trimmingCharacters(in: .whitespaces)), value.isFinite else { return nil }
            values.append(value)
        }
        guard !values.isEmpty else { return nil }
        self.values = values
    }
    var description: String { values.map { "\($0)" }.joined(separator: ",") }
    var defaultValueDescription: String { description }
}

/// A comma-separated list of positive integers ("3,224,224").
struct ShapeList: ExpressibleByArgument {
    var values: [Int]
    init?(argument: String) {
        let values = argument.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        self.values = values.map { $0! }
    }
}

/// Flags of every command that loads a model.
struct EngineFlags: ParsableArguments {
    @Option(help: "Worker threads, the calling thread included (default: all cores).")
    var threads: Int?

    @Option(name: .customLong("input-shape"), help: ArgumentHelp("Per-sample input shape, for models whose file leaves dimensions symbolic.", valueName: "C,H,W"))
    var inputShape: ShapeList?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func options(maxBatch: Int = 1024, collectionBudgetBytes: Int = 0, seed: UInt64 = 0) -> EngineOptions {
        EngineOptions(threads: threads ?? ProcessInfo.processInfo.activeProcessorCount, inputShape: inputShape?.values,
                      maxBatch: maxBatch, collectionBudgetBytes: collectionBudgetBytes, seed: seed)
    }
}

/// How image pixels become model inputs: (p · scale − mean[c]) / std[c].
struct PreprocessFlags: ParsableArguments {
    @Option(help: ArgumentHelp("Per-channel mean subtracted after scaling: one value for every channel, or one per channel.", valueName: "m[,m,m]"))
    var mean = FloatList([0])

    @Option(help: ArgumentHelp("Per-channel standard deviation divided by (non-zero).", valueName: "s[,s,s]"))
    var std = FloatList([1])

    @Option(help: "Factor applied to 8-bit pixel values before mean/std (1/255 maps them to [0, 1]).")
    var scale: Float = 1.0 / 255

    func validate() throws {
        guard std.values.allSatisfy({ $0 != 0 }) else { throw ValidationError("--std values must be non-zero, got \(std)") }
        guard scale.isFinite, scale != 0 else { throw ValidationError("--scale must be finite and non-zero, got \(scale)") }
    }

    /// The preprocessing for a model taking `channels` channels: one value is repeated.
    func preprocess(channels: Int) throws -> ImagePreprocess {
        func expand(_ list: FloatList, _ flag: String) throws -> [Float] {
            if list.values.count == 1 { return Array(repeating: list.values[0], count: max(channels, 1)) }
            guard list.values.count == channels else {
                throw ValidationError("--\(flag) has \(list.values.count) values; the model takes \(channels) channel\(channels == 1 ? "" : "s")"
                                      + (channels == 1 ? ": give one value" : ": give one value or \(channels)"))
            }
            return list.values
        }
        return ImagePreprocess(scale: scale, mean: try expand(mean, "mean"), std: try expand(std, "std"))
    }
}

/// Fails with a clear message unless `path` is an existing regular file.
func requireFile(_ path: String, _ what: String) throws {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw ValidationError("\(what) '\(path)' does not exist")
    }
    guard !isDirectory.boolValue else { throw ValidationError("\(what) '\(path)' is a folder, not a file") }
}

/// The JPEG/PNG files of a folder, sorted by name (or the one file given).
func imageFiles(_ path: String) throws -> [String] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw ValidationError("image folder '\(path)' does not exist")
    }
    guard isDirectory.boolValue else { return [path] }
    let names: [String]
    do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
        throw ValidationError("cannot list '\(path)': \(error.localizedDescription)")
    }
    let images = names.filter { name in
        let lower = name.lowercased()
        return lower.hasSuffix(".png") || lower.hasSuffix(".jpg") || lower.hasSuffix(".jpeg")
    }.sorted()
    guard !images.isEmpty else { throw ValidationError("no .png/.jpg/.jpeg files in '\(path)'") }
    return images.map { (path as NSString).appendingPathComponent($0) }
}

/// The label a file name carries as "label<digits>" (tools/write_frames.py writes
/// frame_00042_label7.png), or nil.
func fileLabel(_ path: String) -> Int? {
    let name = (path as NSString).lastPathComponent
    guard let range = name.range(of: "label") else { return nil }
    let digits = name[range.upperBound...].prefix { $0.isNumber }
    return Int(digits)
}

/// Decodes images into model inputs, `batch` at a time. Files that cannot be read or decoded
/// are reported on stderr and skipped (their index is passed to `skipped`).
func forEachBatch(of files: [String], engine: Engine, preprocess: ImagePreprocess, batch: Int,
                  skipped: (Int, String) -> Void = { _, _ in },
                  body: (_ indices: [Int], _ inputs: [Float]) throws -> Void) throws {
    let width = engine.inputCount
    var first = 0
    while first < files.count {
        let range = first..<min(first + batch, files.count)
        var indices: [Int] = []
        var inputs = [Float](repeating: 0, count: range.count * width)
        for index in range {
            guard let data = FileManager.default.contents(atPath: files[index]) else {
                skipped(index, "cannot read the file")
                continue
            }
            do {
                let slot = indices.count
                try data.withUnsafeBytes { bytes in
                    try inputs.withUnsafeMutableBufferPointer { all in
                        try engine.decodeImage(bytes, preprocess: preprocess,
                                               into: UnsafeMutableBufferPointer(rebasing: all[(slot * width)..<((slot + 1) * width)]))
                    }
                }
                indices.append(index)
            } catch {
                skipped(index, "\(error)")
            }
        }
        if !indices.isEmpty { try body(indices, Array(inputs[0..<(indices.count * width)])) }
        first = range.upperBound
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Value at quantile q of sorted values (nearest rank).
func percentile(_ sorted: [Double], _ q: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))]
}

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

/// JSON with +∞ thresholds (exits out of service) spelled "inf", as the bundles do.
func makeEncoder() -> JSONEncoder {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return encoder
}

func makeDecoder() -> JSONDecoder {
    let decoder = JSONDecoder()
    decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return decoder
}

func megaFLOPs(_ flops: Int) -> String { String(format: "%.2f M", Double(flops) / 1e6) }

/// Thrown for failures after the flags parsed (a model that does not load, a write that
/// fails): printed as "selfxit: <message>", exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}

/// `text` padded with spaces to `width` characters (String(format:)'s %-10@ does not pad on Linux).
func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - text.count))
    return left ? fill + text : text + fill
}
