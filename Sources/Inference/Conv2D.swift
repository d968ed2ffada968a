/// One conv block at inference: conv 3×3 (padding 1, batch norm folded in) as im2col + one matrix
/// product, then max-pool 2×2 (floor), bias and ReLU. Pooling runs before bias + ReLU because both are
/// monotonic per channel (`relu(max(x) + b) == max(relu(x + b))`), which saves work on 3/4 of the values.
enum Conv2D {
    /// - Parameters:
    ///   - input: `[cin][f][t]`
    ///   - col: scratch, at least `cin * 9 * f * t`
    ///   - pre: scratch, at least `cout * f * t`
    ///   - output: `[cout][f / 2][t / 2]`
    static func forward(_ conv: CRNNWeights.Conv, input: UnsafePointer<Float>, f: Int, t: Int,
                        col: UnsafeMutablePointer<Float>, pre: UnsafeMutablePointer<Float>,
                        output: UnsafeMutablePointer<Float>, backend: MatMulBackend) {
        let plane = f * t
        im2col(input: input, channels: conv.cin, f: f, t: t, col: col)
        conv.weight.withUnsafeBufferPointer { w in
            MatMul.gemm(backend, transB: false, m: conv.cout, n: plane, k: conv.cin * 9,
                        a: w.baseAddress!, lda: conv.cin * 9, b: col, ldb: plane, c: pre, ldc: plane)
        }
        let fo = f / 2, to = t / 2
        conv.bias.withUnsafeBufferPointer { bias in
            for c in 0..<conv.cout {
                let src = pre + c * plane
                let dst = output + c * fo * to
                let b = bias[c]
                for y in 0..<fo {
                    let r0 = src + 2 * y * t, r1 = r0 + t
                    let d = dst + y * to
                    for x in 0..<to {
                        let m = max(max(r0[2 * x], r0[2 * x + 1]), max(r1[2 * x], r1[2 * x + 1]))
                        d[x] = max(m + b, 0)
                    }
                }
            }
        }
    }

    /// `col[(ci * 9 + ky * 3 + kx)][y * t + x] = input[ci][y + ky - 1][x + kx - 1]`, zero outside.
    static func im2col(input: UnsafePointer<Float>, channels: Int, f: Int, t: Int, col: UnsafeMutablePointer<Float>) {
        let plane = f * t
        for ci in 0..<channels {
            let src = input + ci * plane
            for ky in 0..<3 {
                for kx in 0..<3 {
                    let dst = col + (ci * 9 + ky * 3 + kx) * plane
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
