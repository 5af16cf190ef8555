import CSelfXitABI
import FoundationEssentials
import Glibc
import SelfXit

// sx_get_stats, sx_get_stats_json, sx_reset_stats, sx_preprocess_init, sx_decode_image.

@_cdecl("sx_get_stats")
public func sx_get_stats(_ engine: OpaquePointer?, _ stats: UnsafeMutablePointer<sx_stats>?) -> sx_status {
    guarded("sx_get_stats") {
        try HandleRegistry.with(engine) { handle in
            let s = handle.engine.stats()
            var result = sx_stats()
            result.struct_size = UInt32(MemoryLayout<sx_stats>.size)
            result.samples = UInt64(s.samples)
            result.num_exits = UInt32(min(s.exitCounts.count, Int(SX_MAX_EXITS)))
            withUnsafeMutableBytes(of: &result.exit_samples) { raw in
                let counts = raw.bindMemory(to: UInt64.self)
                for (index, count) in s.exitCounts.prefix(counts.count).enumerated() { counts[index] = UInt64(count) }
            }
            result.backbone_samples = UInt64(s.backboneCount)
            result.mean_flops = s.meanFLOPs
            result.backbone_flops = s.backboneFLOPs
            result.latency_p50 = s.latencyP50
            result.latency_p95 = s.latencyP95
            result.latency_p99 = s.latencyP99
            try writeVersioned(result, to: stats, name: "stats")
        }
    }
}

@_cdecl("sx_get_stats_json")
public func sx_get_stats_json(_ engine: OpaquePointer?, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int,
                              _ needed: UnsafeMutablePointer<Int>?) -> sx_status {
    guarded("sx_get_stats_json") {
        try HandleRegistry.with(engine) { handle in
            try writeString(handle.engine.statsJSON(), to: buffer, capacity: capacity, needed: needed)
        }
    }
}

@_cdecl("sx_reset_stats")
public func sx_reset_stats(_ engine: OpaquePointer?) -> sx_status {
    guarded("sx_reset_stats") {
        try HandleRegistry.with(engine) { $0.engine.resetStats() }
    }
}

private let defaultPreprocess: sx_preprocess = {
    var preprocess = sx_preprocess()
    preprocess.struct_size = UInt32(MemoryLayout<sx_preprocess>.size)
    preprocess.scale = 1 / 255
    preprocess.mean = (0, 0, 0)
    preprocess.std = (1, 1, 1)
    preprocess.max_pixels = UInt64(ImagePreprocess.pixelLimit)
    return preprocess
}()

@_cdecl("sx_preprocess_init")
public func sx_preprocess_init(_ preprocess: UnsafeMutablePointer<sx_preprocess>?) {
    preprocess?.pointee = defaultPreprocess
}

@_cdecl("sx_decode_image")
public func sx_decode_image(_ engine: OpaquePointer?, _ bytes: UnsafeRawPointer?, _ size: Int, _ preprocess: UnsafePointer<sx_preprocess>?,
                            _ out: UnsafeMutablePointer<Float>?, _ outLength: Int) -> sx_status {
    guarded("sx_decode_image") {
        try HandleRegistry.with(engine) { handle in
            guard let bytes, size > 0 else { throw CABIError.invalid("image bytes are NULL or empty") }
            guard let out, outLength > 0 else { throw CABIError.invalid("out is NULL or out_len is 0") }
            let raw = try readVersioned(preprocess, defaults: defaultPreprocess, name: "preprocess")
            // 0 (a zeroed struct) is the default; above the ceiling is the caller's error, which
            // decodeImage reports (clamped here only so the conversion to Int cannot trap).
            let maxPixels = raw.max_pixels == 0 ? ImagePreprocess.pixelLimit : Int(min(raw.max_pixels, UInt64(Int.max)))
            let settings = ImagePreprocess(scale: raw.scale, mean: [raw.mean.0, raw.mean.1, raw.mean.2], std: [raw.std.0, raw.std.1, raw.std.2],
                                           maxPixels: maxPixels)
            try handle.engine.decodeImage(UnsafeRawBufferPointer(start: bytes, count: size), preprocess: settings,
                                          into: UnsafeMutableBufferPointer(start: out, count: outLength))
        }
    }
}
