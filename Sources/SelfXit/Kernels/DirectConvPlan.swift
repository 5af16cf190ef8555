import SelfXitGEMM

/// A stride-1, ungrouped convolution run as an implicit GEMM: the AVX-512 micro-kernel reads B
/// straight from the input (1×1, unpadded) or from a zero-padded copy of it, instead of packing
/// an im2col matrix. The im2col matrix of a 3×3 convolution is nine times the input, so packing
/// it cost about a third of the convolution; the padded copy costs a ninth of that.
///
/// On the padded input, output pixels are computed over a grid of padded-width rows: the grid
/// column `q` reads `x[offset(c, ky, kx) + q]` for every tap, and the `padLeft + padRight` columns
/// per row that are not output pixels are computed and dropped by the micro-kernel's store.
struct DirectConvPlan {
    let g: Conv2DGeometry
    /// Whether B is a padded copy (else the input itself).
    let padded: Bool
    /// Padded plane: rows and row width.
    let paddedH: Int, paddedW: Int
    /// Grid columns: `(outH − 1)·paddedW + outW`.
    let gridColumns: Int
    /// Per K row (`c, ky, kx`), where its B row starts relative to the grid column.
    let offsets: [Int32]

    /// `nil` when `g` does not suit a direct product: strided, grouped, or a grid wasting more
    /// than an eighth of its columns (small planes, whose im2col is cheap anyway).
    init?(_ g: Conv2DGeometry) {
        guard g.groups == 1, g.strideH == 1, g.strideW == 1 else { return nil }
        let padRight = g.outWidth + (g.kernelWidth - 1) * g.dilationW - g.inWidth - g.padLeft
        let padBottom = g.outHeight + (g.kernelHeight - 1) * g.dilationH - g.inHeight - g.padTop
        guard g.padTop >= 0, g.padLeft >= 0, padRight >= 0, padBottom >= 0 else { return nil }
        self.g = g
        padded = g.padTop + g.padLeft + padRight + padBottom > 0
        paddedH = g.inHeight + g.padTop + padBottom
        paddedW = g.inWidth + g.padLeft + padRight
        gridColumns = (g.outHeight - 1) * paddedW + g.outWidth
        let computed = (gridColumns + 15) / 16 * 16
        guard gridColumns >= 64, 8 * g.outPlane >= 7 * computed,
              g.inChannels * paddedH * paddedW < Int(Int32.max) else { return nil }
        let plane = paddedH * paddedW
        var offsets = [Int32]()
        offsets.reserveCapacity(g.inChannels * g.kernelHeight * g.kernelWidth)
        for c in 0..<g.inChannels {
            for ky in 0..<g.kernelHeight {
                for kx in 0..<g.kernelWidth {
                    offsets.append(Int32(c * plane + ky * g.dilationH * paddedW + kx * g.dilationW))
                }
            }
        }
        self.offsets = offsets
    }

    /// Floats of scratch per thread (the padded copy of one sample).
    var scratchFloats: Int { padded ? g.inChannels * paddedH * paddedW : 0 }

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
                                         grid_w: Int32(paddedW), valid_w: Int32(g.outWidth))
                var out = sx_gemm_out(c: output + s * outSample, ldc: g.outPlane, c_sample_stride: 0,
                                      residual: residual.map { $0 + s * outSample }, ldr: g.outPlane, r_sample_stride: 0,
                                      bias: bias, cols_per_sample: Int32(g.outPlane),
                                      act: act.code, lo: act.lo, hi: act.hi)
                sx_gemm_compute_direct(weights.data, Int32(weights.m), Int32(weights.k), Int32(mp.lowerBound), Int32(mp.upperBound),
                                       &b, Int32(q.lowerBound), Int32(q.upperBound), &out)
            }

            if batch >= threads || threads == 1 {
                // Whole samples per thread, each padded into the thread's own scratch.
                let next = TaskCounter()
                pool.parallelFor(threads) { t in
                    let buffer = scratch + t * scratchFloats
                    while true {
                        let s = next.take()
                        if s >= batch { break }
                        let x = input + s * inSample
                        if padded { pad(x, channels: 0..<g.inChannels, into: buffer) }
                        compute(s, padded ? UnsafePointer(buffer) : x, mp: 0..<mPanels, q: 0..<gridColumns)
                        if act.separate { applyActivation(activation, output + s * outSample, count: outSample) }
                    }
                }
                return
            }
            // Small batch: pad a sample together, then share its product out as tiles of
            // column ranges × A panels, about 4 per thread. Columns are split first: a tile streams
            // its columns of B once while all of A (at most a few hundred KB) stays in L2, where
            // a tile of one A panel would stream the whole of B once per panel.
            let chunks = (gridColumns + 31) / 32
            let nTiles = min(max(1, chunks / 4), 4 * threads)
            let mTiles = min(mPanels, max(1, (4 * threads + nTiles - 1) / nTiles))
            for s in 0..<batch {
                let x = input + s * inSample
                if padded {
                    pool.parallelFor(threads) { t in
                        pad(x, channels: (g.inChannels * t / threads)..<(g.inChannels * (t + 1) / threads), into: scratch)
                    }
                }
                let src = padded ? UnsafePointer(scratch) : x
                let tileNext = TaskCounter()
                pool.parallelFor(threads) { _ in
                    while true {
                        let t = tileNext.take()
                        if t >= mTiles * nTiles { break }
                        let mt = t / nTiles, nt = t % nTiles
                        compute(s, src, mp: (mPanels * mt / mTiles)..<(mPanels * (mt + 1) / mTiles),
                                q: min(gridColumns, chunks * nt / nTiles * 32)..<min(gridColumns, chunks * (nt + 1) / nTiles * 32))
                    }
                }
                if act.separate {
                    let y = output + s * outSample
                    pool.parallelFor(threads) { t in
                        let lo = outSample * t / threads, hi = outSample * (t + 1) / threads
                        applyActivation(activation, y + lo, count: hi - lo)
                    }
                }
            }
        }
    }

    /// Copies channels `channels` of one sample `x` into the zero-padded planes of `buffer`.
    private func pad(_ x: UnsafePointer<Float>, channels: Range<Int>, into buffer: UnsafeMutablePointer<Float>) {
        let plane = paddedH * paddedW
        let right = paddedW - g.padLeft - g.inWidth
        for c in channels {
            let d = buffer + c * plane
            let src = x + c * g.inPlane
            d.update(repeating: 0, count: g.padTop * paddedW + g.padLeft)
            var row = d + g.padTop * paddedW + g.padLeft
            for iy in 0..<g.inHeight {
                row.update(from: src + iy * g.inWidth, count: g.inWidth)
                // This row's right padding and the next row's left padding are adjacent.
                let gap = iy + 1 < g.inHeight ? right + g.padLeft : right
                (row + g.inWidth).update(repeating: 0, count: gap)
                row += paddedW
            }
            let written = (g.padTop + g.inHeight) * paddedW
            (d + written).update(repeating: 0, count: plane - written)
        }
    }
}
