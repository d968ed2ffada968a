import Foundation

/// One LSTM layer over a whole sequence (batch 1, zero initial state, PyTorch gate order i, f, g, o).
/// The input projection of all time steps is one matrix product; only the recurrent part is per step.
enum LSTM {
    /// - Parameters:
    ///   - x: `[steps][layer.input]`
    ///   - gates: scratch, at least `steps * 4H`
    ///   - cell: scratch, at least `H`
    ///   - out: `[steps][H]`, the hidden state after each step
    static func forward(_ layer: CRNNWeights.LSTMLayer, x: UnsafePointer<Float>, steps: Int,
                        gates: UnsafeMutablePointer<Float>, cell: UnsafeMutablePointer<Float>,
                        out: UnsafeMutablePointer<Float>, backend: MatMulBackend) {
        let h = layer.hidden, g4 = 4 * h
        layer.weightIH.withUnsafeBufferPointer { w in
            MatMul.gemm(backend, transB: true, m: steps, n: g4, k: layer.input,
                        a: x, lda: layer.input, b: w.baseAddress!, ldb: layer.input, c: gates, ldc: g4)
        }
        cell.update(repeating: 0, count: h)
        layer.bias.withUnsafeBufferPointer { bias in
            layer.weightHH.withUnsafeBufferPointer { whh in
                for s in 0..<steps {
                    let g = gates + s * g4
                    for j in 0..<g4 { g[j] += bias[j] }
                    if s > 0 {
                        MatMul.gemv(backend, m: g4, n: h, a: whh.baseAddress!, lda: h, x: out + (s - 1) * h, y: g, accumulate: true)
                    }
                    let hs = out + s * h
                    for j in 0..<h {
                        let i = sigmoid(g[j]), f = sigmoid(g[h + j]), c̃ = tanhf(g[2 * h + j]), o = sigmoid(g[3 * h + j])
                        let c = f * cell[j] + i * c̃
                        cell[j] = c
                        hs[j] = o * tanhf(c)
                    }
                }
            }
        }
    }

    @inline(__always)
    static func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }
}
