/// One conv block at inference: conv 3×3 (padding 1, batch norm folded in) as im2col + one matrix
/// product, then max-pool 2×2 (floor), bias and ReLU. Pooling runs before bias + ReLU because both are
/// monotonic per channel (`relu(max(x) + b) == max(relu(x + b))`), which saves work on 3/4 of the values.
enum Conv2D {
    /// Row stride of the im2col matrix and of the pre-pool output (see `MatMul.paddedN`).
    @inline(__always)
    static func leadingDimension(plane: Int) -> Int { MatMul.paddedN(plane) }

    /// - Parameters:
    ///   - input: `[cin][f][t]`
    ///   - col: scratch, at least `cin * 9 * leadingDimension(f * t)`
    ///   - pre: scratch, at least `cout * leadingDimension(f * t) + 16`
    ///   - output: `[cout][f / 2][t / 2]`
    static func forward(_ conv: CRNNWeights.Conv, input: UnsafePointer<Float>, f: Int, t: Int,
                        col: UnsafeMutablePointer<Float>, pre: UnsafeMutablePointer<Float>,
                        output: UnsafeMutablePointer<Float>, backend: MatMulBackend) {
        let ld = leadingDimension(plane: f * t)
        im2col(input: input, channels: conv.cin, f: f, t: t, ld: ld, col: col)
        conv.weight.withUnsafeBufferPointer { w in
            MatMul.gemm(backend, transB: false, m: conv.cout, n: ld, k: conv.cin * 9,
                        a: w.baseAddress!, lda: conv.cin * 9, b: col, ldb: ld, c: pre, ldc: ld)
        }
        // Max-pool 4 outputs at a time: 8 columns of two rows, max of the rows, then of even/odd lanes.
        // Loads may run up to 6 floats past a row (next row, or `pre`'s slack); those lanes are not stored.
        let fo = f / 2, to = t / 2
        let zero = SIMD4<Float>()
        conv.bias.withUnsafeBufferPointer { bias in
            for c in 0..<conv.cout {
                let src = UnsafeRawPointer(pre + c &* ld)
                let dst = output + c &* fo &* to
                let bv = SIMD4<Float>(repeating: bias[c])
                for y in 0..<fo {
                    let r0 = src + 8 &* y &* t, r1 = r0 + 4 &* t
                    let d = dst + y &* to
                    var x = 0
                    while x < to {
                        let m = WinogradConv.vmax8(r0.loadUnaligned(fromByteOffset: 8 &* x, as: SIMD8<Float>.self),
                                                   r1.loadUnaligned(fromByteOffset: 8 &* x, as: SIMD8<Float>.self))
                        let p = WinogradConv.vmax(WinogradConv.vmax(m.evenHalf, m.oddHalf) + bv, zero)
                        WinogradConv.store(p, d + x, min(4, to &- x))
                        x &+= 4
                    }
                }
            }
        }
    }

    /// `col[(ci * 9 + ky * 3 + kx)][y * t + x] = input[ci][y + ky - 1][x + kx - 1]`, zero outside;
    /// rows `ld` apart.
    static func im2col(input: UnsafePointer<Float>, channels: Int, f: Int, t: Int, ld: Int, col: UnsafeMutablePointer<Float>) {
        let plane = f * t
        for ci in 0..<channels {
            let src = input + ci * plane
            for ky in 0..<3 {
                for kx in 0..<3 {
                    let dst = col + (ci * 9 + ky * 3 + kx) * ld
                    for y in 0..<f {
                        let d = dst + y * t
                        let sy = y + ky - 1
                        guard sy >= 0, sy < f else { d.update(repeating: 0, count: t); continue }
                        let s = src + sy * t
                        switch kx {
                        case 0:
                            d[0] = 0
                            if t > 1 { (d + 1).update(from: s, count: t - 1) }
                        case 1:
                            d.update(from: s, count: t)
                        default:
                            if t > 1 { d.update(from: s + 1, count: t - 1) }
                            d[t - 1] = 0
                        }
                    }
                }
            }
        }
    }
}
