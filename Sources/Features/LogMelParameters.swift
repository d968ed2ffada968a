/// Parameters of the log-mel front end. Defaults follow the DeepInfant V2 paper (16 kHz, window 2048,
/// hop 512) and librosa's defaults for everything the paper leaves open (Slaney mel, `power_to_db` with
/// `ref=1.0, amin=1e-10`).
public struct LogMelParameters: Sendable, Equatable, Hashable, Codable {
    public var sampleRate: Int
    public var nFFT: Int
    public var hopLength: Int
    public var nMels: Int
    public var fmin: Double
    public var fmax: Double
    /// `power_to_db` reference and floor.
    public var dbRef: Double
    public var dbAmin: Double

    public init(sampleRate: Int = 16_000, nFFT: Int = 2048, hopLength: Int = 512, nMels: Int = 64,
                fmin: Double = 0, fmax: Double = 8000, dbRef: Double = 1.0, dbAmin: Double = 1e-10) {
        self.sampleRate = sampleRate
        self.nFFT = nFFT
        self.hopLength = hopLength
        self.nMels = nMels
        self.fmin = fmin
        self.fmax = fmax
        self.dbRef = dbRef
        self.dbAmin = dbAmin
    }

    /// Number of STFT bins (`1 + n_fft / 2`).
    public var nBins: Int { nFFT / 2 + 1 }

    /// Frames librosa produces for `sampleCount` samples with `center=True` (`1 + len // hop`).
    public func frameCount(forSamples sampleCount: Int) -> Int { 1 + sampleCount / hopLength }

    /// Checks that the front end can produce these features; the message names the parameter.
    public func validate() throws(FeatureParameterError) {
        func fail(_ key: String, _ why: String) -> FeatureParameterError { .invalid(key: key, reason: why) }
        guard sampleRate == 16_000 else { throw fail("sample_rate", "must be 16000 (the capture rate), got \(sampleRate)") }
        guard nFFT >= 16, nFFT <= 16_384, nFFT & (nFFT - 1) == 0 else {
            throw fail("n_fft", "must be a power of two in 16...16384, got \(nFFT)")
        }
        guard hopLength >= 1, hopLength <= nFFT else { throw fail("hop_length", "must be in 1...n_fft, got \(hopLength)") }
        guard nMels >= 1, nMels <= 512 else { throw fail("n_mels", "must be in 1...512, got \(nMels)") }
        guard fmin.isFinite, fmin >= 0 else { throw fail("fmin", "must be >= 0, got \(fmin)") }
        guard fmax.isFinite, fmax > fmin, fmax <= Double(sampleRate) / 2 else {
            throw fail("fmax", "must be in (fmin, sample_rate/2], got \(fmax)")
        }
        guard dbRef.isFinite, dbRef > 0 else { throw fail("db_ref", "must be > 0, got \(dbRef)") }
        guard dbAmin.isFinite, dbAmin > 0 else { throw fail("db_amin", "must be > 0, got \(dbAmin)") }
    }
}

public enum FeatureParameterError: Error, Equatable, CustomStringConvertible {
    case invalid(key: String, reason: String)

    public var description: String {
        switch self {
        case let .invalid(key, reason): "feature parameter \(key): \(reason)"
        }
    }
}
