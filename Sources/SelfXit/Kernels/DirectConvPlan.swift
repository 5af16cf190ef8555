import SelfXitGEMM

/// An ungrouped stride-1 or stride-2 convolution run as an implicit GEMM: the AVX-512
/// micro-kernel reads B straight from the input (1×1, stride 1, unpadded) or from a zero-padded
/// copy of it, instead of packing an im2col matrix. The im2col matrix of a 3×3 convolution is nine
/// times the input, so packing it cost about a third of the convolution; the copy costs a ninth.
///
/// Output pixels are computed over a grid of rows as wide as the copy's rows: grid column `q`
/// reads `x[offset(c, ky, kx) + q]` for every tap, and the columns of a row that are not output
/// pixels are computed and dropped by the micro-kernel's store. With stride 2 the copy is split
/// into phases (even/odd rows × even/odd columns of the padded plane, each a plane of its own),
/// so a tap reads consecutive output pixels' inputs from consecutive floats of one phase; only
/// the phases some tap reads are copied (one for a 1×1 stride-2 convolution).
struct DirectConvPlan {
    let g: Conv2DGeometry
    /// Whether B is a padded copy (else the input itself).
    let padded: Bool
    /// Padded plane (a multiple of the stride each way) and one phase of it.
    let paddedH: Int, paddedW: Int
    let phaseH: Int, phaseW: Int
    /// For each phase `py·stride + px`, its slot in the copy (phases no tap reads have none).
    let phaseSlots: [Int?]
    let slotCount: Int
    /// Grid columns: `(outH − 1)·phaseW + outW`.
    let gridColumns: Int
    /// Per K row (`c, ky, kx`), where its B row starts relative to the grid column.
    let offsets: [Int32]
    /// Widest input (channels) a stride-2 convolution runs direct with.
    static let maxStride2Channels = 16

    /// `nil` when `g` does not suit a direct product: grouped, strides other than 1×1 or 2×2, or
    /// a grid wasting more than an eighth of its columns (small planes, whose im2col is cheap anyway).
    init?(_ g: Conv2DGeometry) {
        let s = g.strideH
        guard g.groups == 1, g.strideW == s, s == 1 || s == 2, g.padTop >= 0, g.padLeft >= 0 else { return nil }
        // Stride 2 only pays where im2col is dear relative to the product (a stem's few input
        // channels): with many channels a 48-column chunk of B spans six phase rows per channel
        // where stride 1 spans three, and falls out of L1.
        guard s == 1 || g.inChannels <= DirectConvPlan.maxStride2Channels else { return nil }
        // Rows and columns the windows reach, rounded up to whole phases.
        let reachH = max(g.inHeight + g.padTop, (g.outHeight - 1) * s + (g.kernelHeight - 1) * g.dilationH + 1)
        let reachW = max(g.inWidth + g.padLeft, (g.outWidth - 1) * s + (g.kernelWidth - 1) * g.dilationW + 1)
        self.g = g
        paddedH = (reachH + s - 1) / s * s
        paddedW = (reachW + s - 1) / s * s
        phaseH = paddedH / s
        phaseW = paddedW / s
        padded = s > 1 || paddedH != g.inHeight || paddedW != g.inWidth
        gridColumns = (g.outHeight - 1) * phaseW + g.outWidth
        let computed = (gridColumns + 15) / 16 * 16
        guard gridColumns >= 64, 8 * g.outPlane >= 7 * computed else { return nil }
        var slots = [Int?](repeating: nil, count: s * s)
        var slotCount = 0
        for ky in 0..<g.kernelHeight {
            for kx in 0..<g.kernelWidth {
                let phase = (ky * g.dilationH % s) * s + kx * g.dilationW % s
                if slots[phase] == nil { slots[phase] = slotCount; slotCount += 1 }
            }
        }
        phaseSlots = slots
        self.slotCount = slotCount
        let phasePlane = phaseH * phaseW
        guard g.inChannels * slotCount * phasePlane < Int(Int32.max) else { return nil }
        var offsets = [Int32]()
        offsets.reserveCapacity(g.inChannels * g.kernelHeight * g.kernelWidth)
        for c in 0..<g.inChannels {
            for ky in 0..<g.kernelHeight {
                for kx in 0..<g.kernelWidth {
                    let (dy, dx) = (ky * g.dilationH, kx * g.dilationW)
                    let slot = slots[(dy % s) * s + dx % s]!
                    offsets.append(Int32((c * slotCount + slot) * phasePlane + dy / s * phaseW + dx / s))
                }
            }
        }
        self.offsets = offsets
    }

    /// Floats of scratch per thread (the padded copy of one sample).
    var scratchFloats: Int { padded ? g.inChannels * slotCount * phaseH * phaseW : 0 }

    /// Preconditions as `Conv2DKernel.run`; `weights` packed for AVX-512 (`m = outC`, `k = inC·kH·kW`),
    /// `bias` has `outC` entries, and the CPU runs AVX-512.
    func run(input: UnsafePointer<Float>, weights: PackedMatrixA, bias: UnsafePointer<Float>,
             residual: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>, batch: Int,
             activation: Activation, scratch: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let threads = pool.threadCount
        let inSample = g.inChannels * g.inPlane, outSample = g.outChannels * g.outPlane
        let act = PackedGEMM.fused(activation)
        let mPanels = weights.panels

        offsets.withUnsafeBufferPointer { off in
            /// A panels `mp` × grid columns `q` of sample `s`, B read from `src`.
            func compute(_ s: Int, _ src: UnsafePointer<Float>, mp: Range<Int>, q: Range<Int>) {
                guard !mp.isEmpty && !q.isEmpty else { return }
                var b = sx_gemm_direct_b(x: src, offsets: off.baseAddress, n: Int32(gridColumns),
                                         grid_w: Int32(phaseW), valid_w: Int32(g.outWidth))
                var out = sx_gemm_out(c: output + s * outSample, ldc: g.outPlane, c_sample_stride: 0,
                                      residual: residual.map { $0 + s * outSample }, ldr: g.outPlane, r_sample_stride: 0,
                                      bias: bias, cols_per_sample: Int32(g.outPlane),
                                      act: act.code, lo: act.lo, hi: act.hi)
                sx_gemm_compute_direct(weights.data, Int32(weights.m), Int32(weights.k), Int32(mp.lowerBound), Int32(mp.upperBound),
                                       &b, Int32(q.lowerBound), Int32(q.upperBound), &out)
            }

            // Whole samples per thread when there are many samples a thread, or cheap ones: with a
            // few costly samples the last one taken leaves the other threads idle for most of a
            // sample (measured: ResNet-50 at batch 8 faster shared, MobileNetV2 at batch 8 slower).
            // In Double: for a model-supplied geometry the Int product could overflow (and trap).
            let sampleFLOPs = 2 * Double(weights.m) * Double(weights.k) * Double(gridColumns)
            if threads == 1 || batch >= 8 * threads || (batch >= threads && sampleFLOPs < 50e6) {
                // Each sample padded into the thread's own scratch.
                pool.parallelForItems(batch) { t, s in
                    let buffer = scratch + t * scratchFloats
                    let x = input + s * inSample
                    if padded { pad(x, channels: 0..<g.inChannels, into: buffer) }
                    compute(s, padded ? UnsafePointer(buffer) : x, mp: 0..<mPanels, q: 0..<gridColumns)
                    if act.separate { applyActivation(activation, output + s * outSample, count: outSample) }
                }
                return
            }
            // Otherwise pad one sample at a time together, then share its product out as tiles of
            // column ranges × A panels, about 8 per thread (the last tile taken decides when the job
            // ends, so tiles stay small). Columns are split first: a tile streams its columns of B
            // once while all of A (at most a few hundred KB) stays in L2, where a tile of one A
            // panel would stream the whole of B once per panel. Chunks of 48 columns, the
            // micro-kernel's widest pass.
            //
            // Each thread owns a contiguous share of the rows (padding and tiles alike) and takes
            // from the others' shares only when its own is done: consecutive layers then find most
            // of their input in the L2 of the core that wrote it.
            let chunks = (gridColumns + 47) / 48
            let nTiles = min(max(1, chunks / 2), 8 * threads)
            let mTiles = min(mPanels, max(1, (8 * threads + nTiles - 1) / nTiles))
            let tiles = nTiles * mTiles
            for s in 0..<batch {
                let x = input + s * inSample
                if padded {
                    pool.parallelFor(threads) { t in
                        if g.strideH == 1 {
                            pad(x, channels: 0..<g.inChannels, rows: (paddedH * t / threads)..<(paddedH * (t + 1) / threads), into: scratch)
                        } else {
                            pad(x, channels: (g.inChannels * t / threads)..<(g.inChannels * (t + 1) / threads), into: scratch)
                        }
                    }
                }
                let src = padded ? UnsafePointer(scratch) : x
                let tilesPerShare = (tiles + threads - 1) / threads
                pool.parallelForShares(itemsPerShare: tilesPerShare) { share, item in
                    let tile = share * tilesPerShare + item
                    guard tile < tiles else { return }
                    let nt = tile / mTiles, mt = tile % mTiles
                    compute(s, src, mp: (mPanels * mt / mTiles)..<(mPanels * (mt + 1) / mTiles),
                            q: min(gridColumns, chunks * nt / nTiles * 48)..<min(gridColumns, chunks * (nt + 1) / nTiles * 48))
                }
                if act.separate {
                    let y = output + s * outSample
                    runActivation(activation, input: y, output: y, count: outSample, pool: pool)
                }
            }
        }
    }

    /// Copies channels `channels` of one sample `x` into the zero-padded planes (phases) of `buffer`.
    private func pad(_ x: UnsafePointer<Float>, channels: Range<Int>, into buffer: UnsafeMutablePointer<Float>) {
        let s = g.strideH
        if s == 1 { return pad(x, channels: channels, rows: 0..<paddedH, into: buffer) }
        let phasePlane = phaseH * phaseW
        for c in channels {
            let src = x + c * g.inPlane
            for py in 0..<s {
                for px in 0..<s {
                    guard let slot = phaseSlots[py * s + px] else { continue }
                    let d = buffer + (c * slotCount + slot) * phasePlane
                    // Phase columns j read input column j·s + px − padLeft; those inside the row: lo..<hi.
                    let off = px - g.padLeft
                    let lo = min(phaseW, off >= 0 ? 0 : (-off + s - 1) / s)
                    let hi = max(lo, min(phaseW, g.inWidth - 1 - off < 0 ? 0 : (g.inWidth - 1 - off) / s + 1))
                    for r in 0..<phaseH {
                        let row = d + r * phaseW
                        let iy = r * s + py - g.padTop
                        guard iy >= 0 && iy < g.inHeight else { row.update(repeating: 0, count: phaseW); continue }
                        row.update(repeating: 0, count: lo)
                        sx_deinterleave2(src + iy * g.inWidth + off, row, Int32(lo), Int32(hi))
                        (row + hi).update(repeating: 0, count: phaseW - hi)
                    }
                }
            }
        }
    }

    /// Stride 1: rows `rows` of padded planes `channels` (input rows at `padTop, padLeft`, zeros around).
    private func pad(_ x: UnsafePointer<Float>, channels: Range<Int>, rows: Range<Int>, into buffer: UnsafeMutablePointer<Float>) {
        let plane = paddedH * paddedW
        for c in channels {
            let src = x + c * g.inPlane
            for r in rows {
                let d = buffer + c * plane + r * paddedW
                let iy = r - g.padTop
                guard iy >= 0 && iy < g.inHeight else { d.update(repeating: 0, count: paddedW); continue }
                d.update(repeating: 0, count: g.padLeft)
                (d + g.padLeft).update(from: src + iy * g.inWidth, count: g.inWidth)
                (d + g.padLeft + g.inWidth).update(repeating: 0, count: paddedW - g.padLeft - g.inWidth)
            }
        }
    }
}
