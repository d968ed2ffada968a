import Foundation

/// One LSTM layer over a whole sequence (batch 1, zero initial state, PyTorch gate order i, f, g, o).
/// The input projection of all time steps is one matrix product, `W_ih [4H × in] · X [in × steps]`,
/// only the recurrent part `W_hh · h` runs per step. Measured with OpenBLAS on the 512 × 1024 layer-0
/// weights and 11 steps: `X · W_ihᵀ` 0.46 ms, `W_ih · X` 0.26 ms, `W_ih · X` in 32-row blocks with the
/// step count padded to 16 columns 0.15 ms (OpenBLAS then takes its no-packing path, and never
/// allocates; see `Conv2D.leadingDimension`).
enum LSTM {
    /// - Parameters:
    ///   - x: the input sequence, column per step: `[layer.input][ld]`, `ld = leadingDimension(steps)`
    ///   - gates: scratch, at least `4H * ld`
    ///   - recurrent: scratch, at least `4H`
    ///   - cell: scratch, at least `H`
    ///   - out: `[steps][H]`, the hidden state after each step
    ///   - outColumns: `[H][ld]`, the same transposed (the next layer's `x`)
    static func forward(_ layer: CRNNWeights.LSTMLayer, x: UnsafePointer<Float>, steps: Int,
                        gates: UnsafeMutablePointer<Float>, recurrent: UnsafeMutablePointer<Float>,
                        cell: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>,
                        outColumns: UnsafeMutablePointer<Float>, backend: MatMulBackend) {
        let h = layer.hidden, g4 = 4 * h, ld = leadingDimension(steps: steps)
        layer.weightIH.withUnsafeBufferPointer { w in
            var r0 = 0
            while r0 < g4 {
                let rows = min(rowBlock, g4 - r0)
                MatMul.gemm(backend, transB: false, m: rows, n: ld, k: layer.input,
                            a: w.baseAddress! + r0 * layer.input, lda: layer.input, b: x, ldb: ld, c: gates + r0 * ld, ldc: ld)
                r0 += rows
            }
        }
        cell.update(repeating: 0, count: h)
        layer.bias.withUnsafeBufferPointer { bias in
            layer.weightHH.withUnsafeBufferPointer { whh in
                for s in 0..<steps {
                    if s > 0 {
                        MatMul.gemv(backend, m: g4, n: h, a: whh.baseAddress!, lda: h, x: out + (s - 1) * h, y: recurrent, accumulate: false)
                    } else {
                        recurrent.update(repeating: 0, count: g4)
                    }
                    let hs = out + s * h
                    for j in 0..<h {
                        // Gate pre-activations (no nested helper: captured state is heap-boxed in debug builds).
                        let ri = j, rf = h + j, rg = 2 * h + j, ro = 3 * h + j
                        let i = sigmoid(gates[ri * ld + s] + bias[ri] + recurrent[ri])
                        let f = sigmoid(gates[rf * ld + s] + bias[rf] + recurrent[rf])
                        let c̃ = tanhf(gates[rg * ld + s] + bias[rg] + recurrent[rg])
                        let o = sigmoid(gates[ro * ld + s] + bias[ro] + recurrent[ro])
                        let c = f * cell[j] + i * c̃
                        cell[j] = c
                        let hv = o * tanhf(c)
                        hs[j] = hv
                        outColumns[j * ld + s] = hv
                    }
                }
            }
        }
    }

    /// Gate rows per input-projection product (see the type's comment).
    static let rowBlock = 32

    /// Column stride of the per-step matrices (see `MatMul.paddedN`).
    @inline(__always)
    static func leadingDimension(steps: Int) -> Int { MatMul.paddedN(steps) }

    @inline(__always)
    static func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }
}
