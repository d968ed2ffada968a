/// Conv 3×3 (padding 1) + max-pool 2×2 + bias + ReLU with Winograd F(2×2, 3×3).
///
/// Why: a 2×2 output tile of a 3×3 conv costs 16 multiplies per input/output channel pair instead
/// of 36, and a 2×2 output tile is exactly one max-pool window, so the pooled output falls out of the
/// output transform directly. The channel mixing becomes 16 independent matrix products
/// `M_ξ[cout × tiles] = U_ξ[cout × cin] · V_ξ[cin × tiles]`, which OpenBLAS runs near its peak.
/// Measured on the 32→64 and 64→128 layers (94 × 64 window, one thread): 0.22 + 0.21 ms of matrix
/// products against 0.55 + 0.52 ms for im2col + GEMM. Only tiles that survive floor pooling are
/// computed. Numerically it differs from direct convolution by float rounding only (the parity tests
/// hold it to PyTorch within 1e-4 in probability).
///
/// Transforms (Lavin & Gray 2015): `U = G g Gᵀ`, `V = Bᵀ d B`, `Y = Aᵀ M A` with
/// `Bᵀ = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]`, `G = [[1,0,0],[½,½,½],[½,-½,½],[0,0,1]]`,
/// `Aᵀ = [[1,1,1,0],[0,1,-1,-1]]`.
enum WinogradConv {
    /// `U[ξ][cout][cin]` (ξ = 4i + j) from folded conv weights `[cout][cin][3][3]`, in double precision.
    static func transformWeights(_ w: [Float], cout: Int, cin: Int) -> [Float] {
        var u = [Float](repeating: 0, count: 16 * cout * cin)
        for co in 0..<cout {
            for ci in 0..<cin {
                let g = (0..<9).map { Double(w[(co * cin + ci) * 9 + $0]) }
                // Gg: 4×3
                var gg = [Double](repeating: 0, count: 12)
                for c in 0..<3 {
                    let g0 = g[c], g1 = g[3 + c], g2 = g[6 + c]
                    gg[c] = g0
                    gg[3 + c] = 0.5 * (g0 + g1 + g2)
                    gg[6 + c] = 0.5 * (g0 - g1 + g2)
                    gg[9 + c] = g2
                }
                // (Gg)Gᵀ: 4×4
                for r in 0..<4 {
                    let a = gg[r * 3], b = gg[r * 3 + 1], c = gg[r * 3 + 2]
                    let row = [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c]
                    for j in 0..<4 { u[((r * 4 + j) * cout + co) * cin + ci] = Float(row[j]) }
                }
            }
        }
        return u
    }

    /// Scratch sizes (floats) for an `f × t` input with `cin → cout` channels: `padded` holds the
    /// zero-padded input plus 16 floats of slack for the transform's over-reads.
    static func scratch(cin: Int, cout: Int, f: Int, t: Int) -> (padded: Int, v: Int, m: Int) {
        let ld = leadingDimension(tiles: (f / 2) * (t / 2))
        return (cin * (f + 2) * (t + 2) + 16, 16 * cin * ld, 16 * cout * ld)
    }

    /// Row stride of V and M (see `MatMul.paddedN`).
    @inline(__always)
    static func leadingDimension(tiles: Int) -> Int { MatMul.paddedN(tiles) }

    /// - Parameters:
    ///   - input: `[cin][f][t]`; output: `[cout][f / 2][t / 2]`
    ///   - padded, v, m: scratch of `scratch(...)` sizes
    static func forward(_ conv: CRNNWeights.Conv, u: UnsafePointer<Float>, input: UnsafePointer<Float>, f: Int, t: Int,
                        padded: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>,
                        output: UnsafeMutablePointer<Float>, backend: MatMulBackend) {
        let cin = conv.cin, cout = conv.cout
        let ty = f / 2, tx = t / 2, tiles = ty * tx, ld = leadingDimension(tiles: tiles)
        let pw = t + 2, ph = f + 2, pplane = ph * pw
        // Zero-padded copy of the input: one border row/column of zeros on every side.
        for ci in 0..<cin {
            let dst = padded + ci * pplane
            dst.update(repeating: 0, count: pw)
            for y in 0..<f {
                let row = dst + (y + 1) * pw
                row[0] = 0
                (row + 1).update(from: input + (ci * f + y) * t, count: t)
                row[t + 1] = 0
            }
            (dst + (f + 1) * pw).update(repeating: 0, count: pw)
        }
        // V = Bᵀ d B. Tile (a, b) covers padded rows 2a...2a+3 and columns 2b...2b+3. Four tiles at a
        // time: combine the 4 rows (Bᵀ d) on 8 columns starting at 2b (S) and at 2b + 2 (S'); their
        // even/odd lanes are E[b...b+3], O[b...b+3] and E[b+1...b+4], O[b+1...b+4], and the column step
        // (E - E', O + E', E' - O, O - O') gives V for the 4 tiles as contiguous SIMD4 stores. The loads
        // may read up to 7 floats past a row (into the next row, or the slack after the buffer); those
        // lanes only feed tiles b >= tx, which are not stored.
        let vStride = cin &* ld
        let rowBytes = 4 &* pw
        for ci in 0..<cin {
            let src = UnsafeRawPointer(padded + ci &* pplane)
            for a in 0..<ty {
                let r0 = src + 2 &* a &* rowBytes, r1 = r0 + rowBytes, r2 = r1 + rowBytes, r3 = r2 + rowBytes
                let tileBase = v + (ci &* ld &+ a &* tx)
                var b = 0
                while b < tx {
                    let o = 8 &* b
                    let a0 = r0.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self), a1 = r1.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                    let a2 = r2.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self), a3 = r3.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                    let c0 = r0.loadUnaligned(fromByteOffset: o &+ 8, as: SIMD8<Float>.self), c1 = r1.loadUnaligned(fromByteOffset: o &+ 8, as: SIMD8<Float>.self)
                    let c2 = r2.loadUnaligned(fromByteOffset: o &+ 8, as: SIMD8<Float>.self), c3 = r3.loadUnaligned(fromByteOffset: o &+ 8, as: SIMD8<Float>.self)
                    let n = min(4, tx &- b)
                    let base = tileBase + b
                    columnStep(a0 - a2, c0 - c2, base, vStride, n)
                    columnStep(a1 + a2, c1 + c2, base + 4 &* vStride, vStride, n)
                    columnStep(a2 - a1, c2 - c1, base + 8 &* vStride, vStride, n)
                    columnStep(a1 - a3, c1 - c3, base + 12 &* vStride, vStride, n)
                    b &+= 4
                }
            }
        }
        // M_ξ = U_ξ · V_ξ
        for xi in 0..<16 {
            MatMul.gemm(backend, transB: false, m: cout, n: ld, k: cin,
                        a: u + xi * cout * cin, lda: cin, b: v + xi * vStride, ldb: ld,
                        c: m + xi * cout * ld, ldc: ld)
        }
        // Y = Aᵀ M A, then max over the 2×2 tile (= the pool window), bias, ReLU; 4 tiles per step.
        let mStride = cout &* ld
        conv.bias.withUnsafeBufferPointer { bias in
            for co in 0..<cout {
                let base = UnsafeRawPointer(m + co &* ld)
                let out = output + co &* tiles
                let bv = SIMD4<Float>(repeating: bias[co])
                let zero = SIMD4<Float>()
                var k = 0
                while k < tiles {
                    // 16 rows of M for these 4 tiles (plain loads: a nested helper capturing `k` would be
                    // heap-boxed in debug builds, and the tests count allocations there too).
                    let at = base + 4 &* k, st = 4 &* mStride
                    let m0 = at.loadUnaligned(as: SIMD4<Float>.self), m1 = at.loadUnaligned(fromByteOffset: st, as: SIMD4<Float>.self)
                    let m2 = at.loadUnaligned(fromByteOffset: 2 &* st, as: SIMD4<Float>.self), m3 = at.loadUnaligned(fromByteOffset: 3 &* st, as: SIMD4<Float>.self)
                    let m4 = at.loadUnaligned(fromByteOffset: 4 &* st, as: SIMD4<Float>.self), m5 = at.loadUnaligned(fromByteOffset: 5 &* st, as: SIMD4<Float>.self)
                    let m6 = at.loadUnaligned(fromByteOffset: 6 &* st, as: SIMD4<Float>.self), m7 = at.loadUnaligned(fromByteOffset: 7 &* st, as: SIMD4<Float>.self)
                    let m8 = at.loadUnaligned(fromByteOffset: 8 &* st, as: SIMD4<Float>.self), m9 = at.loadUnaligned(fromByteOffset: 9 &* st, as: SIMD4<Float>.self)
                    let m10 = at.loadUnaligned(fromByteOffset: 10 &* st, as: SIMD4<Float>.self), m11 = at.loadUnaligned(fromByteOffset: 11 &* st, as: SIMD4<Float>.self)
                    let m12 = at.loadUnaligned(fromByteOffset: 12 &* st, as: SIMD4<Float>.self), m13 = at.loadUnaligned(fromByteOffset: 13 &* st, as: SIMD4<Float>.self)
                    let m14 = at.loadUnaligned(fromByteOffset: 14 &* st, as: SIMD4<Float>.self), m15 = at.loadUnaligned(fromByteOffset: 15 &* st, as: SIMD4<Float>.self)
                    let p0 = m0 + m4 + m8, p1 = m1 + m5 + m9, p2 = m2 + m6 + m10, p3 = m3 + m7 + m11
                    let q0 = m4 - m8 - m12, q1 = m5 - m9 - m13, q2 = m6 - m10 - m14, q3 = m7 - m11 - m15
                    let y00 = p0 + p1 + p2, y01 = p1 - p2 - p3
                    let y10 = q0 + q1 + q2, y11 = q1 - q2 - q3
                    let r = vmax(vmax(vmax(y00, y01), vmax(y10, y11)) + bv, zero)
                    // The last group may run past `tiles` into the padded columns of M (ld is a
                    // multiple of 16 >= tiles + 0...15, so the loads stay inside the row); store only
                    // the real tiles.
                    if k &+ 4 <= tiles {
                        UnsafeMutableRawPointer(out + k).storeBytes(of: r, as: SIMD4<Float>.self)
                    } else {
                        for j in 0..<(tiles &- k) { out[k &+ j] = r[j] }
                    }
                    k &+= 4
                }
            }
        }
    }

    /// Lane-wise max. (The standard library's generic `pointwiseMax` was not specialised here and
    /// took a fifth of the inference time.)
    @inline(__always)
    static func vmax(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> { a.replacing(with: b, where: a .< b) }

    @inline(__always)
    static func vmax8(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: a .< b) }

    /// The column half of the input transform for 4 tiles: `s` = one combined row on columns
    /// 2b...2b+7, `s1` the same from 2b+2; writes V for ξ = 4i...4i+3 (`out`, rows `stride` apart),
    /// `count` (<= 4) tiles.
    @inline(__always)
    static func columnStep(_ s: SIMD8<Float>, _ s1: SIMD8<Float>, _ out: UnsafeMutablePointer<Float>, _ stride: Int, _ count: Int) {
        let e = s.evenHalf, o = s.oddHalf, e1 = s1.evenHalf, o1 = s1.oddHalf
        store(e - e1, out, count)
        store(o + e1, out + stride, count)
        store(e1 - o, out + 2 &* stride, count)
        store(o - o1, out + 3 &* stride, count)
    }

    @inline(__always)
    static func store(_ x: SIMD4<Float>, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
        if count == 4 {
            UnsafeMutableRawPointer(p).storeBytes(of: x, as: SIMD4<Float>.self)
        } else {
            for j in 0..<count { p[j] = x[j] }
        }
    }
}
