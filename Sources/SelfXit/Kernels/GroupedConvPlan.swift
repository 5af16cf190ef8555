import SelfXitGEMM

/// A grouped convolution (`1 < groups`, not depthwise) run group by group with the kernel
/// configuration's `grouped_conv` (C, Sources/SelfXitGEMM/grouped_conv.c and its ISA files)
/// instead of im2col + the packed GEMM per group: RegNet's 8-channel groups filled half of
/// AVX-512's 16-row GEMM tile, and packing the columns cost about as much as the product
/// (RegNetY-400MF b1 ran at 1.30× ONNX Runtime, BENCHMARKS §7.9).
///
/// Built only where the configuration has `grouped_conv` and `sx_gconv_supported` takes the
/// shape; `init` returns nil otherwise (the caller keeps im2col).
final class GroupedConvPlan {
    let config: UnsafePointer<sx_kernel_config>
    let geometry: Conv2DGeometry
    /// One group's shape, as the C kernel takes it.
    private var group: sx_gconv_geom
    /// Every group's weights packed by `sx_gconv_pack`, `packedPerGroup` floats apart.
    private let packed: UnsafeMutablePointer<Float>
    private let packedPerGroup: Int
    /// Scratch one call takes (the C kernel's row ring), rounded up to whole cache lines.
    let scratchFloats: Int

    /// Groups whose input channels exceed this take im2col: the kernel walks every input channel of
    /// a group for each 8 output channels, which stops paying once a group is as wide as a plain
    /// convolution (ResNeXt's widest groups are 32 channels, RegNet's 8–16).
    static let maxGroupChannels = 64

    init?(_ g: Conv2DGeometry, weights: UnsafePointer<Float>, config: UnsafePointer<sx_kernel_config>) {
        guard g.groups > 1, !(g.groups == g.inChannels && g.groups == g.outChannels),
              config.pointee.grouped_conv != nil,
              g.inChannels / g.groups <= GroupedConvPlan.maxGroupChannels else { return nil }
        var geom = sx_gconv_geom(cin: Int32(g.inChannels / g.groups), in_h: Int32(g.inHeight), in_w: Int32(g.inWidth),
                                 cout: Int32(g.outChannels / g.groups), out_h: Int32(g.outHeight), out_w: Int32(g.outWidth),
                                 kh: Int32(g.kernelHeight), kw: Int32(g.kernelWidth),
                                 stride_h: Int32(g.strideH), stride_w: Int32(g.strideW),
                                 dil_h: Int32(g.dilationH), dil_w: Int32(g.dilationW),
                                 pad_top: Int32(g.padTop), pad_left: Int32(g.padLeft))
        guard sx_gconv_supported(&geom) != 0 else { return nil }
        self.config = config
        geometry = g
        group = geom
        packedPerGroup = (Int(sx_gconv_packed_floats(&geom)) + 15) / 16 * 16
        scratchFloats = (Int(sx_gconv_scratch_floats(&geom)) + 15) / 16 * 16
        packed = allocateFloats(packedPerGroup * g.groups)
        let wPerGroup = (g.outChannels / g.groups) * (g.inChannels / g.groups) * g.kernelHeight * g.kernelWidth
        for grp in 0..<g.groups {
            sx_gconv_pack(&geom, weights + grp * wPerGroup, packed + grp * packedPerGroup)
        }
    }

    deinit { packed.deallocate() }

    /// Runs `batch` samples. Work items are (sample, group, band of output rows): at batch 1 a
    /// layer with few groups (RegNetY's first stage: 6) still splits into about 8 items a thread.
    /// `residual` may be `output` (each element is read before it is written, by the same call).
    func run(input: UnsafePointer<Float>, bias: UnsafePointer<Float>, residual: UnsafePointer<Float>?,
             output: UnsafeMutablePointer<Float>, batch: Int, activation: Activation,
             scratch: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let g = geometry
        let threads = pool.threadCount
        let groups = g.groups
        let act = PackedGEMM.fused(activation, config: config)
        let inGroup = (g.inChannels / groups) * g.inPlane, outGroup = (g.outChannels / groups) * g.outPlane
        let coutG = g.outChannels / groups
        let units = batch * groups
        let bands = max(1, min(g.outHeight, (8 * threads + units - 1) / units))
        let rowsPerBand = (g.outHeight + bands - 1) / bands
        let bandsPerPlane = (g.outHeight + rowsPerBand - 1) / rowsPerBand
        let kernel = config.pointee.grouped_conv!
        withUnsafePointer(to: group) { geom in
            pool.parallelForItems(units * bandsPerPlane) { t, item in
                let unit = item / bandsPerPlane, band = item % bandsPerPlane
                let s = unit / groups, grp = unit % groups
                let oy0 = band * rowsPerBand, oy1 = min(g.outHeight, oy0 + rowsPerBand)
                let off = s * groups * outGroup + grp * outGroup
                kernel(geom, input + s * groups * inGroup + grp * inGroup, packed + grp * packedPerGroup,
                       bias + grp * coutG, residual.map { $0 + off }, output + off,
                       Int32(oy0), Int32(oy1), act.code, act.lo, act.hi, scratch + t * scratchFloats)
                if act.separate {
                    for c in 0..<coutG {
                        applyActivation(activation, output + off + c * g.outPlane + oy0 * g.outWidth,
                                        count: (oy1 - oy0) * g.outWidth)
                    }
                }
            }
        }
    }
}
