import Foundation

/// Parameters of YAMNet's front end (`features.type: "yamnet_logmel"` in a model file): 25 ms periodic Hann
/// frames every 10 ms, FFT 512, magnitude, HTK mel bands, `log(mel + offset)`, cut into fixed patches.
/// Different from `LogMelParameters` on purpose: librosa's power/dB/centred frames and TensorFlow's
/// magnitude/log/uncentred frames give different numbers, and each model must see what it was trained on.
public struct PatchLogMelParameters: Sendable, Equatable, Hashable, Codable {
    public var sampleRate: Int
    public var windowLength: Int
    public var hopLength: Int
    public var nFFT: Int
    public var nMels: Int
    public var fmin: Double
    public var fmax: Double
    public var logOffset: Double
    public var patchFrames: Int
    public var patchHopFrames: Int
    /// The model's input range (YAMNet's graph quantises its input, which clips it there).
    public var clip: ClosedRange<Float>

    public init(sampleRate: Int = 16_000, windowLength: Int = 400, hopLength: Int = 160, nFFT: Int = 512,
                nMels: Int = 64, fmin: Double = 125, fmax: Double = 7500, logOffset: Double = 0.001,
                patchFrames: Int = 96, patchHopFrames: Int = 48, clip: ClosedRange<Float> = -Float.infinity...Float.infinity) {
        self.sampleRate = sampleRate
        self.windowLength = windowLength
        self.hopLength = hopLength
        self.nFFT = nFFT
        self.nMels = nMels
        self.fmin = fmin
        self.fmax = fmax
        self.logOffset = logOffset
        self.patchFrames = patchFrames
        self.patchHopFrames = patchHopFrames
        self.clip = clip
    }

    public var nBins: Int { nFFT / 2 + 1 }
    /// Samples one patch covers (YAMNet: 15,600 = 0.975 s).
    public var patchSamples: Int { (patchFrames - 1) * hopLength + windowLength }
    /// Samples between patch starts (YAMNet: 7,680 = 0.48 s).
    public var patchHopSamples: Int { patchHopFrames * hopLength }

    /// Frames in `n` samples (no centring: every frame lies inside the signal).
    public func frameCount(forSamples n: Int) -> Int { n < windowLength ? 0 : (n - windowLength) / hopLength + 1 }

    /// Patch starts (samples) for an offline recording of `n` samples, as YAMNet's reference code pads it:
    /// at least one patch, and a last zero-padded patch so trailing audio is never ignored.
    public func offlinePatchStarts(forSamples n: Int) -> [Int] {
        let extra = max(0, n - patchSamples)
        let count = 1 + (extra + patchHopSamples - 1) / patchHopSamples
        return (0..<count).map { $0 * patchHopSamples }
    }

    public func validate() throws(FeatureParameterError) {
        func fail(_ key: String, _ why: String) -> FeatureParameterError { .invalid(key: key, reason: why) }
        guard sampleRate == 16_000 else { throw fail("sample_rate", "must be 16000 (the capture rate), got \(sampleRate)") }
        guard nFFT >= 16, nFFT <= 16_384, nFFT & (nFFT - 1) == 0 else { throw fail("n_fft", "must be a power of two in 16...16384, got \(nFFT)") }
        guard windowLength >= 2, windowLength <= nFFT else { throw fail("window_length", "must be in 2...n_fft, got \(windowLength)") }
        guard hopLength >= 1, hopLength <= windowLength else { throw fail("hop_length", "must be in 1...window_length, got \(hopLength)") }
        guard (1...256).contains(nMels), nMels < nBins else { throw fail("n_mels", "must be in 1...256 and below n_fft/2+1, got \(nMels)") }
        guard fmin >= 0, fmin < fmax, fmax <= Double(sampleRate) / 2 else { throw fail("fmin", "need 0 <= fmin < fmax <= sample_rate/2") }
        guard logOffset.isFinite, logOffset > 0 else { throw fail("log_offset", "must be > 0") }
        guard (1...1024).contains(patchFrames) else { throw fail("patch_frames", "must be in 1...1024, got \(patchFrames)") }
        guard (1...patchFrames).contains(patchHopFrames) else { throw fail("patch_hop_frames", "must be in 1...patch_frames, got \(patchHopFrames)") }
    }
}

/// TensorFlow's `linear_to_mel_weight_matrix` (HTK mel, triangles in mel space, DC bin zero), as
/// `[nBins][nMels]` row-major — a pure function, tested against the matrix inside `yamnet.tflite`.
public enum HTKMelFilterbank {
    public static func hzToMel(_ f: Double) -> Double { 1127.0 * log(1.0 + f / 700.0) }

    public static func weights(nMels: Int, nBins: Int, sampleRate: Int, fmin: Double, fmax: Double) -> [Float] {
        let nyquist = Double(sampleRate) / 2
        let lo = hzToMel(fmin), hi = hzToMel(fmax)
        let edges = (0..<(nMels + 2)).map { lo + (hi - lo) * Double($0) / Double(nMels + 1) }
        var w = [Float](repeating: 0, count: nBins * nMels)
        for k in 1..<nBins {
            let m = hzToMel(nyquist * Double(k) / Double(nBins - 1))
            for b in 0..<nMels {
                let l = edges[b], c = edges[b + 1], u = edges[b + 2]
                let v = max(0, min((m - l) / (c - l), (u - m) / (u - c)))
                w[k * nMels + b] = Float(v)
            }
        }
        return w
    }
}
