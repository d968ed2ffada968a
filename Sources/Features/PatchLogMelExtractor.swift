import CFFTW
import Foundation

/// YAMNet's log-mel front end over a block of samples: frames every `hopLength` samples from the block's
/// start, no centring. Single-precision FFTW (TensorFlow's graph transforms in float32 too); one plan and
/// one set of buffers, made once. Not thread-safe: one owner at a time.
public final class PatchLogMelExtractor {
    public let parameters: PatchLogMelParameters
    private let window: [Float]
    /// Per mel band: first bin and its weights (the filterbank is sparse: a few bins per band).
    private let bands: [(first: Int, weights: [Float])]
    private let input: UnsafeMutablePointer<Float>
    private let output: UnsafeMutablePointer<fftwf_complex>
    private let magnitude: UnsafeMutablePointer<Float>
    private let plan: fftwf_plan

    private static let plannerLock = NSLock()

    public init(parameters p: PatchLogMelParameters) throws(FeatureParameterError) {
        try p.validate()
        parameters = p
        window = (0..<p.windowLength).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(p.windowLength))) }
        let dense = HTKMelFilterbank.weights(nMels: p.nMels, nBins: p.nBins, sampleRate: p.sampleRate, fmin: p.fmin, fmax: p.fmax)
        bands = (0..<p.nMels).map { b in
            let nz = (0..<p.nBins).filter { dense[$0 * p.nMels + b] != 0 }
            guard let first = nz.first, let last = nz.last else { return (0, []) }
            return (first, (first...last).map { dense[$0 * p.nMels + b] })
        }
        input = fftwf_alloc_real(p.nFFT)!
        output = fftwf_alloc_complex(p.nBins)!
        magnitude = .allocate(capacity: p.nBins)
        Self.plannerLock.lock()
        // ESTIMATE: a 512-point plan is fast either way, and MEASURE costs start-up time on every command.
        plan = fftwf_plan_dft_r2c_1d(Int32(p.nFFT), input, output, UInt32(FFTW_ESTIMATE))!
        Self.plannerLock.unlock()
        input.initialize(repeating: 0, count: p.nFFT)
    }

    deinit {
        Self.plannerLock.lock()
        fftwf_destroy_plan(plan)
        Self.plannerLock.unlock()
        fftwf_free(input)
        fftwf_free(output)
        magnitude.deallocate()
    }

    /// Computes `frames` frames from `samples` (which must hold `(frames - 1) * hop + window` samples) into
    /// `out` as `[frames][nMels]`, clipped to the model's input range.
    public func compute(samples: UnsafePointer<Float>, frames: Int, into out: UnsafeMutablePointer<Float>) {
        let p = parameters
        let offset = Float(p.logOffset)
        for f in 0..<frames {
            let frame = samples + f * p.hopLength
            for n in 0..<p.windowLength { input[n] = frame[n] * window[n] }
            // input[windowLength..<nFFT] stays zero (FFTW's r2c does not write its input).
            fftwf_execute(plan)
            output.withMemoryRebound(to: Float.self, capacity: 2 * p.nBins) { c in
                for k in 0..<p.nBins {
                    let re = c[2 * k], im = c[2 * k + 1]
                    magnitude[k] = (re * re + im * im).squareRoot()
                }
            }
            let row = out + f * p.nMels
            for (b, band) in bands.enumerated() {
                var s: Float = 0
                for (j, w) in band.weights.enumerated() { s += w * magnitude[band.first + j] }
                row[b] = min(max(log(s + offset), p.clip.lowerBound), p.clip.upperBound)
            }
        }
    }

    /// All frames of a block of samples, `[frames][nMels]`.
    public func frames(of samples: [Float]) -> FeatureMatrix {
        let n = parameters.frameCount(forSamples: samples.count)
        var m = FeatureMatrix(nMels: parameters.nMels)
        guard n > 0 else { return m }
        m.values = [Float](repeating: 0, count: n * parameters.nMels)
        samples.withUnsafeBufferPointer { s in
            m.values.withUnsafeMutableBufferPointer { o in compute(samples: s.baseAddress!, frames: n, into: o.baseAddress!) }
        }
        return m
    }
}
