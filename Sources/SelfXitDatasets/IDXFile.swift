import CZlib
import Foundation
import SelfXit

/// Reader for the IDX files Fashion-MNIST ships in (gzip-compressed or plain), as installed
/// by Debian's `dataset-fashion-mnist` under /usr/share/datasets/fashion-mnist.
public struct IDXFile {
    public let dimensions: [Int]
    public let bytes: [UInt8]

    public init(contentsOf path: String) throws {
        let raw = try Self.readDecompressed(path)
        // Header: 0x00 0x00 <type 0x08 = ubyte> <rank>, then rank big-endian UInt32 dims.
        guard raw.count >= 4, raw[0] == 0, raw[1] == 0, raw[2] == 0x08 else {
            throw SelfXitError.invalidArgument("'\(path)' is not an unsigned-byte IDX file")
        }
        let rank = Int(raw[3])
        guard raw.count >= 4 + 4 * rank else { throw SelfXitError.invalidArgument("'\(path)' is truncated") }
        dimensions = (0..<rank).map { axis in
            (0..<4).reduce(0) { $0 << 8 | Int(raw[4 + 4 * axis + $1]) }
        }
        let count = dimensions.reduce(1, *)
        guard raw.count == 4 + 4 * rank + count else { throw SelfXitError.invalidArgument("'\(path)' has the wrong length") }
        bytes = Array(raw[(4 + 4 * rank)...])
    }

    private static func readDecompressed(_ path: String) throws -> [UInt8] {
        guard path.hasSuffix(".gz") else {
            guard let data = FileManager.default.contents(atPath: path) else { throw SelfXitError.io("cannot read '\(path)'") }
            return [UInt8](data)
        }
        guard let file = gzopen(path, "rb") else { throw SelfXitError.io("cannot open '\(path)'") }
        defer { gzclose(file) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let read = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            guard read >= 0 else { throw SelfXitError.io("'\(path)' is not valid gzip") }
            if read == 0 { break }
            result += chunk[0..<Int(read)]
        }
        return result
    }
}

/// Fashion-MNIST images normalised as the bundled models were trained:
/// x = (pixel / 255 − 0.2860) / 0.3530, one 1×28×28 sample after another.
public struct FashionMNIST {
    public static let defaultDirectory = ProcessInfo.processInfo.environment["FASHION_MNIST_DIR"] ?? "/usr/share/datasets/fashion-mnist"
    public static let classNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    public static let mean: Float = 0.2860, std: Float = 0.3530

    public let images: [Float]
    public let labels: [Int]
    public var count: Int { labels.count }
    public static let pixelsPerImage = 28 * 28

    /// Loads the `train` or `t10k` split.
    public init(split: String, directory: String = FashionMNIST.defaultDirectory) throws {
        let imageFile = try IDXFile(contentsOf: "\(directory)/\(split)-images-idx3-ubyte.gz")
        let labelFile = try IDXFile(contentsOf: "\(directory)/\(split)-labels-idx1-ubyte.gz")
        guard imageFile.dimensions.count == 3, imageFile.dimensions[1...] == [28, 28],
              labelFile.dimensions == [imageFile.dimensions[0]] else {
            throw SelfXitError.invalidArgument("unexpected Fashion-MNIST shapes \(imageFile.dimensions) / \(labelFile.dimensions)")
        }
        images = imageFile.bytes.map { (Float($0) / 255 - Self.mean) / Self.std }
        labels = labelFile.bytes.map(Int.init)
    }

    /// The floats of samples `range`.
    public func batch(_ range: Range<Int>) -> ArraySlice<Float> {
        images[(range.lowerBound * Self.pixelsPerImage)..<(range.upperBound * Self.pixelsPerImage)]
    }
}
