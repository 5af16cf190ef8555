import CPNG
import CTurboJPEG

/// Turns a JPEG or PNG file in memory into one model input sample: decoded with libturbojpeg
/// or libpng, converted to grayscale or RGB, resized (bilinear) and normalised into CHW floats.
public struct ImagePreprocess: Sendable {
    /// Pixel p (0–255) of channel c becomes (p · scale − mean[c]) / std[c].
    public var scale: Float
    public var mean: [Float]
    public var std: [Float]

    public init(scale: Float = 1 / 255, mean: [Float] = [0, 0, 0], std: [Float] = [1, 1, 1]) {
        self.scale = scale
        self.mean = mean
        self.std = std
    }
}

enum ImageDecoder {
    /// 8-bit pixels, `channels` (1 or 3) interleaved, row-major.
    struct Pixels {
        var width: Int, height: Int, channels: Int
        var bytes: [UInt8]
    }

    /// Refuses images above this many pixels (a decompression bomb must not exhaust memory).
    static let maxPixels = 1 << 26

    /// Decodes JPEG (FF D8) or PNG (89 'PNG') bytes into `channels` (1 = gray, 3 = RGB).
    /// Every refusal is `invalidData`; the pixel count a header claims is checked before any
    /// pixel memory is allocated.
    static func decode(_ bytes: UnsafeRawBufferPointer, channels: Int) throws -> Pixels {
        guard let base = bytes.baseAddress, bytes.count >= 8 else {
            throw SelfXitError.invalidData("image data is empty or too short (\(bytes.count) bytes)")
        }
        let b = bytes.bindMemory(to: UInt8.self)
        if b[0] == 0xFF && b[1] == 0xD8 { return try decodeJPEG(base, count: bytes.count, channels: channels) }
        if b[0] == 0x89 && b[1] == 0x50 && b[2] == 0x4E && b[3] == 0x47 { return try decodePNG(base, count: bytes.count, channels: channels) }
        throw SelfXitError.invalidData("image data is neither JPEG nor PNG (it starts with neither FF D8 nor 89 'PNG')")
    }

    /// Refuses a claimed size of zero or above `maxPixels`, before anything is allocated for it.
    private static func checkSize(_ format: String, width: Int, height: Int) throws {
        guard width > 0, height > 0 else {
            throw SelfXitError.invalidData("\(format) header claims \(width)×\(height) pixels: an empty image")
        }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, pixels <= maxPixels else {
            throw SelfXitError.invalidData("\(format) header claims \(width)×\(height) pixels, above the limit of \(maxPixels) pixels; refused before decoding")
        }
    }

    private static func decodeJPEG(_ base: UnsafeRawPointer, count: Int, channels: Int) throws -> Pixels {
        guard let handle = tjInitDecompress() else { throw SelfXitError.internalError("libturbojpeg: cannot create a decompressor") }
        defer { tjDestroy(handle) }
        let buffer = base.assumingMemoryBound(to: UInt8.self)
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        guard tjDecompressHeader3(handle, buffer, UInt(count), &width, &height, &subsampling, &colorspace) == 0 else {
            throw SelfXitError.invalidData("undecodable JPEG header: \(String(cString: tjGetErrorStr2(handle)))")
        }
        try checkSize("JPEG", width: Int(width), height: Int(height))
        var pixels = [UInt8](repeating: 0, count: Int(width) * Int(height) * channels)
        let format = channels == 1 ? Int32(TJPF_GRAY.rawValue) : Int32(TJPF_RGB.rawValue)
        let status = pixels.withUnsafeMutableBufferPointer {
            tjDecompress2(handle, buffer, UInt(count), $0.baseAddress, width, 0, height, format, 0)
        }
        // -1 with TJERR_WARNING: libjpeg-turbo decoded the image but noticed something (e.g. a
        // missing end-of-image marker, extraneous bytes); without TJFLAG_STOPONWARNING it
        // decodes to the end, so the pixels are usable — as in every common viewer.
        guard status == 0 || tjGetErrorCode(handle) == Int32(TJERR_WARNING.rawValue) else {
            throw SelfXitError.invalidData("undecodable JPEG: \(String(cString: tjGetErrorStr2(handle)))")
        }
        return Pixels(width: Int(width), height: Int(height), channels: channels, bytes: pixels)
    }

    private static func decodePNG(_ base: UnsafeRawPointer, count: Int, channels: Int) throws -> Pixels {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        // Reads the header only (IHDR and the chunks before the image data).
        guard png_image_begin_read_from_memory(&image, base, count) != 0 else {
            throw SelfXitError.invalidData("undecodable PNG: \(message(of: image))")
        }
        defer { png_image_free(&image) }
        try checkSize("PNG", width: Int(image.width), height: Int(image.height))
        image.format = channels == 1 ? 0 : 2 // PNG_FORMAT_GRAY, PNG_FORMAT_RGB (function-like macros do not import)
        var pixels = [UInt8](repeating: 0, count: Int(image.width) * Int(image.height) * channels)
        let status = pixels.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        guard status != 0 else { throw SelfXitError.invalidData("undecodable PNG: \(message(of: image))") }
        return Pixels(width: Int(image.width), height: Int(image.height), channels: channels, bytes: pixels)
    }

    private static func message(of image: png_image) -> String {
        withUnsafeBytes(of: image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// Bilinear resize to `height`×`width`, normalised, written CHW into `out`.
    /// Precondition: `out` holds channels × height × width floats; `preprocess.mean/std`
    /// have at least `channels` entries (validated by the caller).
    static func resizeNormalize(_ image: Pixels, height: Int, width: Int, preprocess: ImagePreprocess, into out: UnsafeMutablePointer<Float>) {
        let scaleY = Float(image.height) / Float(height), scaleX = Float(image.width) / Float(width)
        for c in 0..<image.channels {
            let (mean, std) = (preprocess.mean[c], preprocess.std[c])
            for y in 0..<height {
                // Pixel centres aligned (as OpenCV / PIL bilinear do).
                let sy = max(0, min(Float(image.height - 1), (Float(y) + 0.5) * scaleY - 0.5))
                let y0 = Int(sy), y1 = min(y0 + 1, image.height - 1), fy = sy - Float(y0)
                for x in 0..<width {
                    let sx = max(0, min(Float(image.width - 1), (Float(x) + 0.5) * scaleX - 0.5))
                    let x0 = Int(sx), x1 = min(x0 + 1, image.width - 1), fx = sx - Float(x0)
                    func pixel(_ yy: Int, _ xx: Int) -> Float { Float(image.bytes[(yy * image.width + xx) * image.channels + c]) }
                    let top = pixel(y0, x0) * (1 - fx) + pixel(y0, x1) * fx
                    let bottom = pixel(y1, x0) * (1 - fx) + pixel(y1, x1) * fx
                    let value = top * (1 - fy) + bottom * fy
                    out[(c * height + y) * width + x] = (value * preprocess.scale - mean) / std
                }
            }
        }
    }
}

extension Engine {
    /// Decodes a JPEG or PNG image into one input sample of this model (which must take
    /// [1 or 3, H, W]) and writes it into `out` (inputCount floats).
    public func decodeImage(_ bytes: UnsafeRawBufferPointer, preprocess: ImagePreprocess = ImagePreprocess(),
                            into out: UnsafeMutableBufferPointer<Float>) throws {
        let shape = inputShape
        guard shape.count == 3, shape[0] == 1 || shape[0] == 3 else {
            throw SelfXitError.shapeMismatch("image input needs a model input of [1 or 3, H, W], this model takes \(shape)")
        }
        guard out.baseAddress != nil, out.count == inputCount else {
            throw SelfXitError.shapeMismatch("output buffer has \(out.count) floats, one sample needs \(inputCount)")
        }
        guard preprocess.mean.count >= shape[0], preprocess.std.count >= shape[0],
              preprocess.std.prefix(shape[0]).allSatisfy({ $0 != 0 && $0.isFinite }), preprocess.scale.isFinite,
              preprocess.mean.allSatisfy(\.isFinite) else {
            throw SelfXitError.invalidArgument("preprocess needs finite scale/mean and finite non-zero std for \(shape[0]) channels")
        }
        let image = try ImageDecoder.decode(bytes, channels: shape[0])
        ImageDecoder.resizeNormalize(image, height: shape[1], width: shape[2], preprocess: preprocess, into: out.baseAddress!)
    }
}
