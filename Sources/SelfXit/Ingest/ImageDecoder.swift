import CPNG
import CTurboJPEG

/// Turns a JPEG or PNG file in memory into one model input sample: decoded with libturbojpeg
/// or libpng, converted to grayscale or RGB, resized (Pillow-compatible antialiased bilinear,
/// see `ImageDecoder.resample`) and normalised into CHW floats.
public struct ImagePreprocess: Sendable {
    /// Pixel p (0–255) of channel c becomes (p · scale − mean[c]) / std[c].
    public var scale: Float
    public var mean: [Float]
    public var std: [Float]
    /// Images whose header claims more pixels than this are refused (`invalidData`) before
    /// anything is allocated or decoded: 1 … `pixelLimit`. A host that knows its cameras' size
    /// sets it near that, which bounds the memory and time one frame can cost (decoding a
    /// crafted 250-byte JPEG that claims 2^26 pixels takes seconds).
    public var maxPixels: Int

    /// The library's own ceiling for `maxPixels`: 2^26 pixels (192 MiB as RGB).
    public static let pixelLimit = ImageDecoder.maxPixels

    public init(scale: Float = 1 / 255, mean: [Float] = [0, 0, 0], std: [Float] = [1, 1, 1],
                maxPixels: Int = ImagePreprocess.pixelLimit) {
        self.scale = scale
        self.mean = mean
        self.std = std
        self.maxPixels = maxPixels
    }
}

enum ImageDecoder {
    /// 8-bit pixels, `channels` (1 or 3) interleaved, row-major.
    struct Pixels {
        var width: Int, height: Int, channels: Int
        var bytes: [UInt8]
        /// The extent, in these pixels, that the original image covers: width/height, except
        /// after a DCT-scaled JPEG decode, whose size libjpeg rounds up (e.g. 1125 px at 1/8 is
        /// 141 pixels covering 140.625) — the resample maps the box [0, extent) to its output.
        var extentX: Float, extentY: Float

        init(width: Int, height: Int, channels: Int, bytes: [UInt8], extentX: Float? = nil, extentY: Float? = nil) {
            (self.width, self.height, self.channels, self.bytes) = (width, height, channels, bytes)
            self.extentX = extentX ?? Float(width)
            self.extentY = extentY ?? Float(height)
        }
    }

    /// When a JPEG may be decoded DCT-scaled (libjpeg-turbo's 1/2, 1/4, 1/8 IDCTs: less decode
    /// work for a large photo and a small model input). The scaled image must stay at least
    /// `minimumRemainingFactor` times the target in both directions, so the antialiased resample
    /// still does the larger part of the reduction and hides how the scaled IDCT differs from
    /// Pillow's full decode + area filter. Measured on Tests/Fixtures/images/photo.jpg (768×576,
    /// with a 3-px checker, the worst case) against Pillow over targets 8×6 … 384×288, largest
    /// difference in grey levels: factor 2 → 7 (48×36 via 1/8), 3 → 6, 4 → 2, 6 → 1. So 6: the
    /// 1/2 scale from 12× the target, 1/4 from 24×, 1/8 from 48×.
    struct DCTScaling: Sendable {
        var minimumRemainingFactor: Double
        static let standard = DCTScaling(minimumRemainingFactor: 6)
        static let off = DCTScaling(minimumRemainingFactor: .infinity)
    }

    /// Refuses images above this many pixels (a decompression bomb must not exhaust memory).
    static let maxPixels = 1 << 26

    /// Decodes JPEG (FF D8) or PNG (89 'PNG') bytes into `channels` (1 = gray, 3 = RGB).
    /// Every refusal is `invalidData`; the pixel count a header claims is checked before any
    /// pixel memory is allocated.
    /// With `fitting` (the size the image will be resampled to), a large JPEG is decoded
    /// DCT-scaled per `dctScaling`.
    static func decode(_ bytes: UnsafeRawBufferPointer, channels: Int, fitting target: (width: Int, height: Int)? = nil,
                       dctScaling: DCTScaling = .standard, maxPixels: Int = ImageDecoder.maxPixels) throws -> Pixels {
        guard let base = bytes.baseAddress, bytes.count >= 8 else {
            throw SelfXitError.invalidData("image data is empty or too short (\(bytes.count) bytes)")
        }
        let b = bytes.bindMemory(to: UInt8.self)
        if b[0] == 0xFF && b[1] == 0xD8 { return try decodeJPEG(base, count: bytes.count, channels: channels, fitting: target, dctScaling: dctScaling, maxPixels: maxPixels) }
        if b[0] == 0x89 && b[1] == 0x50 && b[2] == 0x4E && b[3] == 0x47 { return try decodePNG(base, count: bytes.count, channels: channels, maxPixels: maxPixels) }
        throw SelfXitError.invalidData("image data is neither JPEG nor PNG (it starts with neither FF D8 nor 89 'PNG')")
    }

    /// Refuses a claimed size of zero or above `maxPixels`, before anything is allocated for it.
    private static func checkSize(_ format: String, width: Int, height: Int, maxPixels: Int) throws {
        guard width > 0, height > 0 else {
            throw SelfXitError.invalidData("\(format) header claims \(width)×\(height) pixels: an empty image")
        }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, pixels <= maxPixels else {
            throw SelfXitError.invalidData("\(format) header claims \(width)×\(height) pixels, above the limit of \(maxPixels) pixels; refused before decoding")
        }
    }

    private static func decodeJPEG(_ base: UnsafeRawPointer, count: Int, channels: Int, fitting target: (width: Int, height: Int)?,
                                   dctScaling: DCTScaling, maxPixels: Int) throws -> Pixels {
        guard let handle = tjInitDecompress() else { throw SelfXitError.internalError("libturbojpeg: cannot create a decompressor") }
        defer { tjDestroy(handle) }
        let buffer = base.assumingMemoryBound(to: UInt8.self)
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        guard tjDecompressHeader3(handle, buffer, UInt(count), &width, &height, &subsampling, &colorspace) == 0 else {
            throw SelfXitError.invalidData("undecodable JPEG header: \(String(cString: tjGetErrorStr2(handle)))")
        }
        try checkSize("JPEG", width: Int(width), height: Int(height), maxPixels: maxPixels)
        // The smallest power-of-two DCT scaling that leaves the resample its remaining factor.
        var (scaledWidth, scaledHeight) = (Int(width), Int(height))
        var extent: (x: Float, y: Float)? = nil
        if let target, target.width > 0, target.height > 0, dctScaling.minimumRemainingFactor.isFinite {
            for denominator in [8, 4, 2] where isSupportedScaling(denominator) {
                let w = (Int(width) + denominator - 1) / denominator, h = (Int(height) + denominator - 1) / denominator
                if Double(w) >= dctScaling.minimumRemainingFactor * Double(target.width),
                   Double(h) >= dctScaling.minimumRemainingFactor * Double(target.height) {
                    (scaledWidth, scaledHeight) = (w, h)
                    extent = (Float(width) / Float(denominator), Float(height) / Float(denominator))
                    break
                }
            }
        }
        // Gray from a colour JPEG: decoded RGB, then Pillow's luma — the Y channel libjpeg would
        // hand out directly differs from Pillow's convert("L") by up to 4 levels at colour
        // edges (chroma subsampling), 2 after a 2× shrink (measured on the photo fixture).
        let decoded = channels == 1 && colorspace != Int32(TJCS_GRAY.rawValue) ? 3 : channels
        var pixels = [UInt8](repeating: 0, count: scaledWidth * scaledHeight * decoded)
        let format = decoded == 1 ? Int32(TJPF_GRAY.rawValue) : Int32(TJPF_RGB.rawValue)
        // tjDecompress2 given a smaller width/height decodes with the largest scaling factor
        // that fits — here exactly 1/denominator. ISLOW (accurate) IDCT, as Pillow uses.
        let status = pixels.withUnsafeMutableBufferPointer {
            tjDecompress2(handle, buffer, UInt(count), $0.baseAddress, Int32(scaledWidth), 0, Int32(scaledHeight), format,
                          Int32(TJFLAG_ACCURATEDCT))
        }
        // -1 with TJERR_WARNING: libjpeg-turbo decoded the image but noticed something (e.g. a
        // missing end-of-image marker, extraneous bytes); without TJFLAG_STOPONWARNING it
        // decodes to the end, so the pixels are usable — as in every common viewer.
        guard status == 0 || tjGetErrorCode(handle) == Int32(TJERR_WARNING.rawValue) else {
            throw SelfXitError.invalidData("undecodable JPEG: \(String(cString: tjGetErrorStr2(handle)))")
        }
        if decoded != channels { pixels = luma(rgb: pixels) }
        return Pixels(width: scaledWidth, height: scaledHeight, channels: channels, bytes: pixels, extentX: extent?.x, extentY: extent?.y)
    }

    /// Whether libturbojpeg offers 1/denominator among its scaling factors (every libjpeg-turbo
    /// since 1.2 offers 1/2, 1/4, 1/8; checked rather than assumed).
    private static func isSupportedScaling(_ denominator: Int) -> Bool {
        var count: Int32 = 0
        guard let factors = tjGetScalingFactors(&count), count > 0 else { return false }
        return (0..<Int(count)).contains { factors[$0].num == 1 && Int(factors[$0].denom) == denominator }
    }

    private static func decodePNG(_ base: UnsafeRawPointer, count: Int, channels: Int, maxPixels: Int) throws -> Pixels {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        // Reads the header only (IHDR and the chunks before the image data).
        guard png_image_begin_read_from_memory(&image, base, count) != 0 else {
            throw SelfXitError.invalidData("undecodable PNG: \(message(of: image))")
        }
        defer { png_image_free(&image) }
        try checkSize("PNG", width: Int(image.width), height: Int(image.height), maxPixels: maxPixels)
        // libpng's simplified API converts in linear light wherever it converts, unlike Pillow
        // (and OpenCV), which work on the stored 8-bit values. So that a PNG gives what Pillow's
        // Image.open(f).convert(mode) gives:
        // - gray from colour: decode RGB, take Pillow's ITU-R 601 luma (libpng's own
        //   conversion is up to 65 levels off);
        // - alpha: decode it and drop it, as convert("RGB"/"L") does (libpng would composite
        //   onto black in linear light: a transparent pixel turns black);
        // - 16-bit samples without a gAMA/sRGB chunk are sRGB-encoded values (PNG_IMAGE_FLAG_16BIT_sRGB),
        //   scaled to 8 bits — not linear light brightened on the way (16-bit value 4096: 16, not 72).
        let colourSource = image.format & 2 != 0 // PNG_FORMAT_FLAG_COLOR
        let alpha = image.format & 1 != 0        // PNG_FORMAT_FLAG_ALPHA
        let colour = channels == 3 || colourSource
        let decoded = (colour ? 3 : 1) + (alpha ? 1 : 0)
        image.format = (colour ? 2 : 0) | (alpha ? 1 : 0) // PNG_FORMAT_{GRAY,GA,RGB,RGBA} (function-like macros do not import)
        image.flags |= 0x04 // PNG_IMAGE_FLAG_16BIT_sRGB
        var pixels = [UInt8](repeating: 0, count: Int(image.width) * Int(image.height) * decoded)
        let status = pixels.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        guard status != 0 else { throw SelfXitError.invalidData("undecodable PNG: \(message(of: image))") }
        if alpha { pixels = dropLast(channel: decoded, of: pixels) }
        if colour && channels == 1 { pixels = luma(rgb: pixels) }
        return Pixels(width: Int(image.width), height: Int(image.height), channels: channels, bytes: pixels)
    }

    /// Interleaved pixels of `stride` bytes without their last byte (the alpha channel).
    static func dropLast(channel stride: Int, of pixels: [UInt8]) -> [UInt8] {
        let count = pixels.count / stride, kept = stride - 1
        return [UInt8](unsafeUninitializedCapacity: count * kept) { out, initialized in
            pixels.withUnsafeBufferPointer { p in
                for i in 0..<count {
                    for c in 0..<kept { out[i * kept + c] = p[i * stride + c] }
                }
            }
            initialized = count * kept
        }
    }

    /// Pillow's RGB → L: (19595 R + 38470 G + 7471 B + 2^15) >> 16 (ITU-R 601-2, 16-bit fixed point).
    static func luma(rgb: [UInt8]) -> [UInt8] {
        let count = rgb.count / 3
        return [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
            rgb.withUnsafeBufferPointer { p in
                for i in 0..<count {
                    let value = 19595 * UInt32(p[3 * i]) + 38470 * UInt32(p[3 * i + 1]) + 7471 * UInt32(p[3 * i + 2]) + 0x8000
                    out[i] = UInt8(truncatingIfNeeded: value >> 16)
                }
            }
            initialized = count
        }
    }

    private static func message(of image: png_image) -> String {
        withUnsafeBytes(of: image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// Pillow-compatible separable resample (Pillow's `Image.resize(size, Image.BILINEAR)`,
    /// Resample.c, 8-bit path): a triangle filter whose support grows with the downscale factor,
    /// so shrinking averages every source pixel (an area filter) instead of sampling two and
    /// aliasing; upscaling is plain centre-aligned bilinear interpolation. Coefficients are
    /// computed per output pixel in double, normalised, rounded to 22-bit fixed point; the
    /// horizontal pass runs first into an 8-bit image (rounded, clamped), then the vertical
    /// pass — exactly Pillow's arithmetic, so results match it bit for bit on the same pixels.
    /// `image.extentX/Y` is the part of the pixel grid the original image covers (smaller than
    /// the grid only after a DCT-scaled JPEG decode whose size was rounded up).
    static func resample(_ image: Pixels, width: Int, height: Int) -> Pixels {
        let needHorizontal = width != image.width || image.extentX != Float(image.width)
        let needVertical = height != image.height || image.extentY != Float(image.height)
        guard needHorizontal || needVertical else { return image }
        let channels = image.channels
        let vertical = Coefficients(inSize: image.height, extent: image.extentY, outSize: height)
        // Source rows the vertical pass reads: the horizontal pass produces only those.
        let firstRow = needVertical ? vertical.bounds[0] : 0
        let lastRow = needVertical ? vertical.bounds[2 * (height - 1)] + vertical.bounds[2 * height - 1] : image.height
        var temp = image
        if needHorizontal {
            let horizontal = Coefficients(inSize: image.width, extent: image.extentX, outSize: width)
            let rows = lastRow - firstRow
            var out = [UInt8](repeating: 0, count: rows * width * channels)
            image.bytes.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    horizontal.weights.withUnsafeBufferPointer { kk in
                        horizontal.bounds.withUnsafeBufferPointer { bounds in
                            for y in 0..<rows {
                                let from = src.baseAddress! + (firstRow + y) * image.width * channels
                                let to = dst.baseAddress! + y * width * channels
                                // Specialised for the two layouts decode produces (the stride a constant; RGB shares each weight load).
                                switch channels {
                                case 1: horizontalRow(from, to, width: width, channels: 1, bounds: bounds.baseAddress!, kk: kk.baseAddress!, ksize: horizontal.ksize)
                                case 3: horizontalRow(from, to, width: width, channels: 3, bounds: bounds.baseAddress!, kk: kk.baseAddress!, ksize: horizontal.ksize)
                                default: horizontalRow(from, to, width: width, channels: channels, bounds: bounds.baseAddress!, kk: kk.baseAddress!, ksize: horizontal.ksize)
                                }
                            }
                        }
                    }
                }
            }
            temp = Pixels(width: width, height: rows, channels: channels, bytes: out)
        }
        guard needVertical else { return temp }
        // Rows of `temp` start at source row `firstRow` after a horizontal pass (Pillow shifts
        // the vertical bounds then), at 0 when the source is used as it is.
        let rowOffset = needHorizontal ? firstRow : 0
        var out = [UInt8](repeating: 0, count: height * width * channels)
        let rowLength = width * channels
        // Each output row: a weighted sum of whole source rows, accumulated row by row in Int32
        // (contiguous, so it vectorises); the same sums, in the same integer arithmetic, as
        // Pillow's per-pixel loop.
        var sums = [Int32](repeating: 0, count: rowLength)
        temp.bytes.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                sums.withUnsafeMutableBufferPointer { acc in
                    vertical.weights.withUnsafeBufferPointer { kk in
                        for y in 0..<height {
                            let ymin = vertical.bounds[2 * y] - rowOffset, count = vertical.bounds[2 * y + 1]
                            let k = y * vertical.ksize
                            for i in 0..<rowLength { acc[i] = Coefficients.half }
                            for j in 0..<count {
                                let w = kk[k + j], row = src.baseAddress! + (ymin + j) * rowLength
                                for i in 0..<rowLength { acc[i] = acc[i] &+ Int32(row[i]) &* w }
                            }
                            let to = dst.baseAddress! + y * rowLength
                            for i in 0..<rowLength { to[i] = Coefficients.clip8(acc[i]) }
                        }
                    }
                }
            }
        }
        return Pixels(width: width, height: height, channels: channels, bytes: out)
    }

    /// One row of the horizontal pass: output pixel x is the weighted sum of `count` source
    /// pixels from `xmin`, per channel, rounded and clamped to 8 bits.
    @inline(__always)
    private static func horizontalRow(_ src: UnsafePointer<UInt8>, _ dst: UnsafeMutablePointer<UInt8>, width: Int, channels: Int,
                                      bounds: UnsafePointer<Int>, kk: UnsafePointer<Int32>, ksize: Int) {
        if channels == 3 {
            // The three channels of a pixel share its weight: one pass, three sums.
            for x in 0..<width {
                let p = src + bounds[2 * x] * 3, count = bounds[2 * x + 1], k = kk + x * ksize
                var r = Coefficients.half, g = Coefficients.half, b = Coefficients.half
                for i in 0..<count {
                    let w = k[i], q = p + 3 * i
                    r = r &+ Int32(q[0]) &* w
                    g = g &+ Int32(q[1]) &* w
                    b = b &+ Int32(q[2]) &* w
                }
                dst[3 * x] = Coefficients.clip8(r)
                dst[3 * x + 1] = Coefficients.clip8(g)
                dst[3 * x + 2] = Coefficients.clip8(b)
            }
            return
        }
        for x in 0..<width {
            let p = src + bounds[2 * x] * channels, count = bounds[2 * x + 1], k = kk + x * ksize
            for c in 0..<channels {
                var sum = Coefficients.half
                for i in 0..<count { sum = sum &+ Int32(p[i * channels + c]) &* k[i] }
                dst[x * channels + c] = Coefficients.clip8(sum)
            }
        }
    }

    /// One axis of the resample: for each output pixel the first source pixel, how many follow
    /// and their fixed-point weights (Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`).
    struct Coefficients {
        // Computed, not stored: no lazy-global check inside the pixel loops.
        @inline(__always) static var precisionBits: Int32 { 32 - 8 - 2 }
        @inline(__always) static var half: Int32 { 1 << (precisionBits - 1) }
        var ksize: Int
        var bounds: [Int]     // (first source pixel, count) per output pixel
        var weights: [Int32]  // ksize per output pixel

        init(inSize: Int, extent: Float, outSize: Int) {
            // Box [0, extent): Pillow computes `in1 - in0` in float, then the scale in double.
            let scale = Double(extent) / Double(outSize)
            let filterScale = max(scale, 1)
            let support = 1.0 * filterScale  // the triangle filter's support is 1
            ksize = Int(support.rounded(.up)) * 2 + 1
            bounds = [Int](repeating: 0, count: 2 * outSize)
            weights = [Int32](repeating: 0, count: outSize * ksize)
            var k = [Double](repeating: 0, count: ksize)
            for xx in 0..<outSize {
                let center = (Double(xx) + 0.5) * scale
                let ss = 1 / filterScale
                // Int() truncates toward zero, as C's (int) cast in Pillow.
                let xmin = max(0, Int(center - support + 0.5))
                let xmax = min(inSize, Int(center + support + 0.5))
                let count = min(ksize, max(0, xmax - xmin))
                var total = 0.0
                for x in 0..<count {
                    let t = abs((Double(x + xmin) - center + 0.5) * ss)
                    let w = t < 1 ? 1 - t : 0
                    k[x] = w
                    total += w
                }
                for x in 0..<count {
                    let w = total != 0 ? k[x] / total : k[x]
                    // Pillow rounds half away from zero; the weights here are never negative.
                    weights[xx * ksize + x] = Int32(w < 0 ? -0.5 + w * Double(1 << Self.precisionBits)
                                                          : 0.5 + w * Double(1 << Self.precisionBits))
                }
                bounds[2 * xx] = xmin
                bounds[2 * xx + 1] = count
            }
        }

        @inline(__always) static func clip8(_ value: Int32) -> UInt8 {
            if value >= (1 << precisionBits) << 8 { return 255 }
            if value <= 0 { return 0 }
            return UInt8(truncatingIfNeeded: value >> precisionBits)
        }
    }

    /// Normalises 8-bit pixels into CHW floats: (p · scale − mean[c]) / std[c].
    /// Precondition: `out` holds channels × height × width floats; `preprocess.mean/std` have at
    /// least `channels` entries (validated by the caller).
    static func normalize(_ image: Pixels, preprocess: ImagePreprocess, into out: UnsafeMutablePointer<Float>) {
        let plane = image.width * image.height, channels = image.channels
        image.bytes.withUnsafeBufferPointer { src in
            for c in 0..<channels {
                let (scale, mean, std) = (preprocess.scale, preprocess.mean[c], preprocess.std[c])
                for i in 0..<plane {
                    out[c * plane + i] = (Float(src[i * channels + c]) * scale - mean) / std
                }
            }
        }
    }

    /// The whole ingest: decode (DCT-scaled for JPEGs much larger than the target), resample to
    /// `height`×`width`, normalise into `out` (CHW).
    static func ingest(_ bytes: UnsafeRawBufferPointer, channels: Int, height: Int, width: Int,
                       preprocess: ImagePreprocess, into out: UnsafeMutablePointer<Float>) throws {
        guard width > 0, height > 0 else {
            throw SelfXitError.shapeMismatch("image input needs a model input of positive height and width, this one is \(height)×\(width)")
        }
        let image = try decode(bytes, channels: channels, fitting: (width: width, height: height),
                               maxPixels: preprocess.maxPixels)
        normalize(resample(image, width: width, height: height), preprocess: preprocess, into: out)
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
        guard (1...ImagePreprocess.pixelLimit).contains(preprocess.maxPixels) else {
            throw SelfXitError.invalidArgument("preprocess.maxPixels is \(preprocess.maxPixels); it must lie in 1…\(ImagePreprocess.pixelLimit)")
        }
        try ImageDecoder.ingest(bytes, channels: shape[0], height: shape[1], width: shape[2], preprocess: preprocess,
                                into: out.baseAddress!)
    }
}
