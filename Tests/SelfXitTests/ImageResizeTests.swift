import Foundation
import XCTest
@testable import SelfXit

/// The image ingest against Pillow: `Image.open(f).convert(mode).resize((W, H), Image.BILINEAR)`
/// (antialiased triangle filter), references made by tools/make_resize_refs.py into
/// Tests/Fixtures/images. Preprocessing scale 1, mean 0, std 1 gives the raw 0–255 values.
final class ImageResizeTests: XCTestCase {
    struct Case: Decodable { let image: String; let channels: Int; let width: Int; let height: Int; let reference: String }
    struct Cases: Decodable { let cases: [Case] }

    static let directory = Fixtures.directory.appendingPathComponent("images")
    static let raw = ImagePreprocess(scale: 1, mean: [0, 0, 0], std: [1, 1, 1])

    private func bytes(_ file: String) throws -> Data { try Data(contentsOf: Self.directory.appendingPathComponent(file)) }

    private func cases() throws -> [Case] {
        try JSONDecoder().decode(Cases.self, from: bytes("cases.json")).cases
    }

    /// Pillow's output for a case, HWC bytes (the reference PNGs are exact 8-bit images).
    private func reference(_ c: Case) throws -> ImageDecoder.Pixels {
        let data = try bytes(c.reference)
        let pixels = try data.withUnsafeBytes { try ImageDecoder.decode($0, channels: c.channels) }
        XCTAssertEqual([pixels.width, pixels.height], [c.width, c.height], c.reference)
        return pixels
    }

    /// The engine's ingest (decode, resample, normalise) of a case, CHW floats.
    private func ingest(_ c: Case, dctScaling: ImageDecoder.DCTScaling = .standard) throws -> [Float] {
        let data = try bytes(c.image)
        var out = [Float](repeating: .nan, count: c.channels * c.width * c.height)
        try data.withUnsafeBytes { raw in
            let image = try ImageDecoder.decode(raw, channels: c.channels, fitting: (c.width, c.height), dctScaling: dctScaling)
            out.withUnsafeMutableBufferPointer {
                ImageDecoder.normalize(ImageDecoder.resample(image, width: c.width, height: c.height), preprocess: Self.raw,
                                       into: $0.baseAddress!)
            }
        }
        return out
    }

    /// Largest |engine − Pillow| over all pixels and channels, and how many differ at all.
    private func difference(_ chw: [Float], _ ref: ImageDecoder.Pixels) -> (max: Float, count: Int) {
        var worst: Float = 0, count = 0
        let plane = ref.width * ref.height
        for c in 0..<ref.channels {
            for i in 0..<plane {
                let d = abs(chw[c * plane + i] - Float(ref.bytes[i * ref.channels + c]))
                worst = max(worst, d.isNaN ? .infinity : d)
                if d != 0 { count += 1 }
            }
        }
        return (worst, count)
    }

    /// PNG sources (no decoder difference): the resample is Pillow's arithmetic, bit for bit —
    /// downscale ×2, ×3.7, ×40, ×40 in one direction only, upscale and mixed, gray and RGB.
    func testPNGMatchesPillowExactly() throws {
        let pngCases = try cases().filter { $0.image.hasSuffix(".png") }
        XCTAssertGreaterThanOrEqual(pngCases.count, 8)
        for c in pngCases {
            let (worst, count) = difference(try ingest(c), try reference(c))
            XCTAssertEqual(worst, 0, "\(c.reference): \(count) values differ from Pillow, by up to \(worst)")
        }
    }

    /// JPEG sources, with the DCT-scaled decode the engine uses and with a full decode: within
    /// 1 grey level of Pillow's full decode + resize (both libjpeg-turbo, ISLOW IDCT).
    func testJPEGWithinOneGreyLevelOfPillow() throws {
        let jpegCases = try cases().filter { $0.image.hasSuffix(".jpg") }
        XCTAssertGreaterThanOrEqual(jpegCases.count, 8)
        for c in jpegCases {
            let ref = try reference(c)
            for scaling in [ImageDecoder.DCTScaling.standard, .off] {
                let (worst, count) = difference(try ingest(c, dctScaling: scaling), ref)
                let label = scaling.minimumRemainingFactor.isFinite ? "DCT-scaled decode" : "full decode"
                print("resize \(c.reference) (\(label)): max |Δ| \(worst), \(count) of \(c.channels * c.width * c.height) differ")
                XCTAssertLessThanOrEqual(worst, 1, "\(c.reference) with the \(label): \(count) values differ, by up to \(worst)")
            }
        }
    }

    /// The aliasing case of the issue: 1-px lines every 5 px, 1120 → 28 px. Point-sampling
    /// bilinear gives 0 or 127.5; the area filter gives the lines' average, 255/5 = 51.
    func testThinLinesAverageInsteadOfAliasing() throws {
        let c = Case(image: "lines.png", channels: 1, width: 28, height: 28, reference: "")
        let out = try ingest(c)
        // Rows 1…12 lie fully in the vertical-lines half, away from the image border.
        let values = (1..<13).flatMap { y in (1..<27).map { x in out[y * 28 + x] } }
        XCTAssertEqual(values.min()!, 51, accuracy: 1)
        XCTAssertEqual(values.max()!, 51, accuracy: 1)
    }

    /// Through the public API on real models: the Fashion-MNIST-shaped fixture (1×28×28) and an
    /// RGB one (3×32×32), with a non-trivial normalisation undone here.
    func testEngineDecodeImageMatchesPillow() throws {
        for (model, c) in [("resnet18_w4.onnx", Case(image: "lines.png", channels: 1, width: 28, height: 28, reference: "ref-lines-L-28x28.png")),
                           ("mobilenet_v3ish.onnx", Case(image: "photo.jpg", channels: 3, width: 32, height: 32, reference: "ref-photo-RGB-32x32.png"))] {
            let engine = try Engine(contentsOf: Fixtures.model(model), options: EngineOptions(threads: 1))
            XCTAssertEqual(engine.inputShape, [c.channels, c.height, c.width])
            let preprocess = ImagePreprocess(scale: 1 / 255, mean: [0.5, 0.4, 0.3], std: [0.25, 0.2, 0.5])
            var out = [Float](repeating: .nan, count: engine.inputCount)
            let data = try bytes(c.image)
            try data.withUnsafeBytes { raw in
                try out.withUnsafeMutableBufferPointer { try engine.decodeImage(raw, preprocess: preprocess, into: $0) }
            }
            let plane = c.width * c.height
            let pixels = out.enumerated().map { i, v in (v * preprocess.std[i / plane] + preprocess.mean[i / plane]) * 255 }
            let (worst, _) = difference(pixels, try reference(c))
            XCTAssertLessThanOrEqual(worst, 1.01, "\(model) / \(c.image): up to \(worst) grey levels from Pillow")
        }
    }

    /// The host's pixel budget: small.png is 61×47 = 2 867 pixels; a budget one below refuses it
    /// as invalid data (before decoding), exactly its size decodes, and budgets outside
    /// 1 … 2^26 are the caller's error. The engine stays usable after each refusal.
    func testMaxPixelsRefusesLargerImagesBeforeDecoding() throws {
        let engine = try Engine(contentsOf: Fixtures.model("resnet18_w4.onnx"), options: EngineOptions(threads: 1))
        let data = try bytes("small.png")
        var out = [Float](repeating: .nan, count: engine.inputCount)
        func decode(_ maxPixels: Int) throws {
            try data.withUnsafeBytes { raw in
                try out.withUnsafeMutableBufferPointer {
                    try engine.decodeImage(raw, preprocess: ImagePreprocess(maxPixels: maxPixels), into: $0)
                }
            }
        }
        XCTAssertThrowsError(try decode(61 * 47 - 1)) { error in
            guard case SelfXitError.invalidData(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("61×47") && message.contains("2866"), message)
        }
        XCTAssertThrowsError(try decode(0)) { error in
            guard case SelfXitError.invalidArgument = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try decode(ImagePreprocess.pixelLimit + 1)) { error in
            guard case SelfXitError.invalidArgument = error else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(ImagePreprocess().maxPixels, 1 << 26)
        try decode(61 * 47)
        XCTAssertTrue(out.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    /// A 16-bit PNG without gAMA holds sRGB-encoded values (as every viewer, Pillow's high
    /// byte and OpenCV assume), not linear light: 4096·i reads as 16·i (±1 rounding), not brightened.
    func testSixteenBitPNGReadAsStoredValues() throws {
        let data = try bytes("gray16.png")
        for channels in [1, 3] {
            let pixels = try data.withUnsafeBytes { try ImageDecoder.decode($0, channels: channels) }
            XCTAssertEqual([pixels.width, pixels.height, pixels.channels], [4, 4, channels])
            for i in 0..<16 {
                for c in 0..<channels {
                    XCTAssertEqual(Double(pixels.bytes[i * channels + c]), Double(16 * i), accuracy: 1, "pixel \(i) channel \(c)")
                }
            }
        }
    }

    /// A DCT-scaled decode covers a box smaller than its rounded-up pixel grid: 1125 px at 1/8
    /// is 141 pixels covering 140.625. The resample maps that box, and a constant image stays
    /// constant (no dark border from the padding pixel's weight).
    func testScaledDecodeExtentAndCoefficientsSumToOne() throws {
        for (inSize, extent, outSize) in [(141, Float(140.625), 28), (1120, 1120, 28), (61, 61, 150), (1120, 1120, 303)] {
            let k = ImageDecoder.Coefficients(inSize: inSize, extent: extent, outSize: outSize)
            for x in 0..<outSize {
                let (first, count) = (k.bounds[2 * x], k.bounds[2 * x + 1])
                XCTAssertTrue(first >= 0 && count > 0 && first + count <= inSize && count <= k.ksize)
                let total = (0..<count).reduce(0) { $0 + Int(k.weights[x * k.ksize + $1]) }
                XCTAssertEqual(Double(total), Double(1 << 22), accuracy: Double(count), "in \(inSize) out \(outSize) pixel \(x)")
            }
        }
        let flat = ImageDecoder.Pixels(width: 141, height: 3, channels: 1, bytes: [UInt8](repeating: 200, count: 423),
                                       extentX: 140.625, extentY: 3)
        XCTAssertEqual(Set(ImageDecoder.resample(flat, width: 28, height: 3).bytes), [200])
    }

    /// Speed of decode + resample of the 768×576 photo to 300×300 and 28×28 (printed, not
    /// asserted): the engine's path (DCT-scaled where it applies), a full decode, and the
    /// point-sampled bilinear the engine used before.
    func testSpeedReport() throws {
        let data = try bytes("photo.jpg")
        for (w, h) in [(300, 300), (28, 28)] {
            var results: [String] = []
            for (label, scaling) in [("engine (DCT-scaled where it applies)", ImageDecoder.DCTScaling.standard), ("full decode", .off)] {
                let ms = try fastest(runs: 15) {
                    var out = [Float](repeating: 0, count: 3 * w * h)
                    try data.withUnsafeBytes { raw in
                        let image = try ImageDecoder.decode(raw, channels: 3, fitting: (w, h), dctScaling: scaling)
                        out.withUnsafeMutableBufferPointer {
                            ImageDecoder.normalize(ImageDecoder.resample(image, width: w, height: h), preprocess: Self.raw, into: $0.baseAddress!)
                        }
                    }
                }
                results.append(label + String(format: " %.2f ms", ms))
            }
            let before = try fastest(runs: 15) {
                var out = [Float](repeating: 0, count: 3 * w * h)
                try data.withUnsafeBytes { raw in
                    let image = try ImageDecoder.decode(raw, channels: 3)
                    out.withUnsafeMutableBufferPointer { pointBilinear(image, height: h, width: w, into: $0.baseAddress!) }
                }
            }
            results.append(String(format: "before (full decode + point bilinear) %.2f ms", before))
            print("ingest 768x576 JPEG -> \(w)x\(h) RGB: " + results.joined(separator: ", "))
        }
    }

    /// Fastest of `runs` runs, in milliseconds of this thread's CPU time (the machine running
    /// the tests is shared: wall-clock medians there swing by 2×).
    private func fastest(runs: Int, _ body: () throws -> Void) rethrows -> Double {
        func cpuMilliseconds() -> Double {
            var t = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
            return Double(t.tv_sec) * 1e3 + Double(t.tv_nsec) / 1e6
        }
        try body()
        var best = Double.infinity
        for _ in 0..<runs {
            let start = cpuMilliseconds()
            try body()
            best = min(best, cpuMilliseconds() - start)
        }
        return best
    }

    /// The resize the engine used before issue 15 (two taps per axis, no antialiasing), kept
    /// here only as the speed baseline of `testSpeedReport`.
    private func pointBilinear(_ image: ImageDecoder.Pixels, height: Int, width: Int, into out: UnsafeMutablePointer<Float>) {
        let scaleY = Float(image.height) / Float(height), scaleX = Float(image.width) / Float(width)
        for c in 0..<image.channels {
            for y in 0..<height {
                let sy = max(0, min(Float(image.height - 1), (Float(y) + 0.5) * scaleY - 0.5))
                let y0 = Int(sy), y1 = min(y0 + 1, image.height - 1), fy = sy - Float(y0)
                for x in 0..<width {
                    let sx = max(0, min(Float(image.width - 1), (Float(x) + 0.5) * scaleX - 0.5))
                    let x0 = Int(sx), x1 = min(x0 + 1, image.width - 1), fx = sx - Float(x0)
                    func pixel(_ yy: Int, _ xx: Int) -> Float { Float(image.bytes[(yy * image.width + xx) * image.channels + c]) }
                    let top = pixel(y0, x0) * (1 - fx) + pixel(y0, x1) * fx
                    let bottom = pixel(y1, x0) * (1 - fx) + pixel(y1, x1) * fx
                    out[(c * height + y) * width + x] = (top * (1 - fy) + bottom * fy) / 255
                }
            }
        }
    }
}
