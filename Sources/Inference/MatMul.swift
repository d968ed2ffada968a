import COpenBLAS

/// Which implementation computes the engine's matrix products. `openBLAS` is the default because it
/// measured about 4x faster: whole 94 × 64 window of the (32, 64, 128) model, one thread, minimum over
/// 500 runs, 1.14 ms against 5.0 ms for `swift` (x86-64 Zen 4; Swift's portable build only emits SSE,
/// OpenBLAS picks AVX-512 kernels at run time). `swift` is a portable SIMD fallback kept for comparison
/// (`bench model --backend swift`) and for debugging; the parity tests run both.
public enum MatMulBackend: String, Sendable, CaseIterable, Codable {
    case openBLAS = "openblas"
    case swift
}

/// Row-major single-precision matrix products on raw pointers (no allocation).
enum MatMul {
    /// A gemm `N` (leading dimension) rounded up to 16: OpenBLAS 0.3.21 mallocs inside sgemm for some small
    /// products whose N is not a multiple of 16 (seen for N = 4, 5, 40, 88), so padded strides keep
    /// inference allocation-free. The extra columns are computed and ignored.
    @inline(__always)
    static func paddedN(_ n: Int) -> Int { (n + 15) & ~15 }

    /// OpenBLAS keeps a process-wide thread count. The engine runs batch 1 next to capture and feature
    /// extraction on a small board, so it uses one thread: pinned once, the first time an engine is built.
    static let pinOpenBLASToOneThread: Void = { openblas_set_num_threads(1) }()

    /// `C[m×n] = A[m×k] · B`, where `B` is `[k×n]`, or `[n×k]` used transposed when `transB`.
    @inline(__always)
    static func gemm(_ backend: MatMulBackend, transB: Bool, m: Int, n: Int, k: Int,
                     a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                     c: UnsafeMutablePointer<Float>, ldc: Int) {
        switch backend {
        case .openBLAS:
            cblas_sgemm(CblasRowMajor, CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), 0, c, Int32(ldc))
        case .swift:
            if transB {
                for i in 0..<m {
                    for j in 0..<n { c[i * ldc + j] = dot(a + i * lda, b + j * ldb, k) }
                }
            } else {
                for i in 0..<m {
                    let crow = c + i * ldc
                    crow.update(repeating: 0, count: n)
                    for p in 0..<k {
                        axpy(a[i * lda + p], b + p * ldb, crow, n)
                    }
                }
            }
        }
    }

    /// `y[m] = A[m×n] · x (+ y when accumulate)`.
    @inline(__always)
    static func gemv(_ backend: MatMulBackend, m: Int, n: Int, a: UnsafePointer<Float>, lda: Int,
                     x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        switch backend {
        case .openBLAS:
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(n), 1, a, Int32(lda), x, 1, accumulate ? 1 : 0, y, 1)
        case .swift:
            for i in 0..<m {
                let d = dot(a + i * lda, x, n)
                y[i] = accumulate ? y[i] + d : d
            }
        }
    }

    @inline(__always)
    static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        var i = 0
        let rx = UnsafeRawPointer(x), ry = UnsafeRawPointer(y)
        while i + 16 <= n {
            a0 += rx.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) * ry.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            a1 += rx.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self) * ry.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self)
            i += 16
        }
        var s = (a0 + a1).sum()
        while i < n { s += x[i] * y[i]; i += 1 }
        return s
    }

    /// `y += alpha * x` over n elements.
    @inline(__always)
    static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        let av = SIMD8<Float>(repeating: alpha)
        let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
        while i + 8 <= n {
            let v = ry.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) + av * rx.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            ry.storeBytes(of: v, toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { y[i] += alpha * x[i]; i += 1 }
    }
}
