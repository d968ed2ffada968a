import Foundation

/// Slaney-style mel filterbank (librosa `filters.mel(htk=False, norm="slaney")`), stored sparsely: each
/// triangle touches a few dozen of the 1 + n_fft/2 bins, so a dense matrix would waste ~95 % of the work.
public struct MelFilterbank: Sendable {
    /// First STFT bin of each filter.
    public let start: [Int]
    /// Weights of each filter, from `start[m]` on, as float32 like librosa's.
    public let weights: [[Float]]
    /// The same weights back to back (filter m at `offset[m]..<offset[m + 1]`), for the per-frame loop.
    let flatWeights: [Double]
    let offset: [Int]

    public init(parameters p: LogMelParameters) {
        let nBins = p.nBins
        let melF = MelScale.frequencies(count: p.nMels + 2, fmin: p.fmin, fmax: p.fmax)
        let fftFreqs = (0..<nBins).map { Double($0) * Double(p.sampleRate) / Double(p.nFFT) }
        var start = [Int](), weights = [[Float]]()
        for m in 0..<p.nMels {
            let lowerDiff = melF[m + 1] - melF[m], upperDiff = melF[m + 2] - melF[m + 1]
            let enorm = 2.0 / (melF[m + 2] - melF[m])
            var row = [Float](repeating: 0, count: nBins)
            for k in 0..<nBins {
                let lower = -(melF[m] - fftFreqs[k]) / lowerDiff
                let upper = (melF[m + 2] - fftFreqs[k]) / upperDiff
                // librosa stores the triangle as float32, then scales it in place by enorm.
                let tri = Float(max(0, min(lower, upper)))
                row[k] = Float(Double(tri) * enorm)
            }
            let first = row.firstIndex { $0 != 0 } ?? 0
            let last = row.lastIndex { $0 != 0 } ?? -1
            start.append(first)
            weights.append(last >= first ? Array(row[first...last]) : [])
        }
        self.start = start
        self.weights = weights
        flatWeights = weights.flatMap { $0.map(Double.init) }
        offset = weights.reduce(into: [0]) { $0.append($0.last! + $1.count) }
    }

    /// Projects a power spectrum onto the filters: `out[m] = Σ w[m][j] · power[start[m] + j]`.
    @inline(__always)
    func apply(_ power: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        flatWeights.withUnsafeBufferPointer { w in
            start.withUnsafeBufferPointer { st in
                offset.withUnsafeBufferPointer { off in
                    for m in 0..<st.count {
                        let p = power + st[m]
                        // Four partial sums: one long dependency chain of adds was the loop's bottleneck.
                        var a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0
                        let wm = w.baseAddress! + off[m]
                        let count = off[m + 1] - off[m]
                        var k = 0
                        while k + 4 <= count {
                            a0 += wm[k] * p[k]; a1 += wm[k + 1] * p[k + 1]
                            a2 += wm[k + 2] * p[k + 2]; a3 += wm[k + 3] * p[k + 3]
                            k += 4
                        }
                        while k < count { a0 += wm[k] * p[k]; k += 1 }
                        out[m] = (a0 + a1) + (a2 + a3)
                    }
                }
            }
        }
    }

    /// Total non-zero weights (the cost of one frame's projection).
    public var nonZeroCount: Int { weights.reduce(0) { $0 + $1.count } }
}

/// Slaney mel scale: linear below 1 kHz, logarithmic above (librosa `hz_to_mel`/`mel_to_hz`, htk=False).
public enum MelScale {
    static let fSp = 200.0 / 3
    static let minLogHz = 1000.0
    static let minLogMel = minLogHz / fSp
    static let logStep = log(6.4) / 27.0

    public static func hzToMel(_ hz: Double) -> Double {
        hz >= minLogHz ? minLogMel + log(hz / minLogHz) / logStep : hz / fSp
    }

    public static func melToHz(_ mel: Double) -> Double {
        mel >= minLogMel ? minLogHz * exp(logStep * (mel - minLogMel)) : fSp * mel
    }

    /// `count` frequencies evenly spaced on the mel scale from fmin to fmax (librosa `mel_frequencies`).
    public static func frequencies(count: Int, fmin: Double, fmax: Double) -> [Double] {
        let lo = hzToMel(fmin), hi = hzToMel(fmax)
        // Same arithmetic as numpy.linspace: i * step + start, and the last point exactly `hi`.
        let step = count > 1 ? (hi - lo) / Double(count - 1) : 0
        return (0..<count).map { i in
            melToHz(i == count - 1 && count > 1 ? hi : Double(i) * step + lo)
        }
    }
}
