import Features

/// The `features` block of a model file: how the log-mel input the model was trained on is computed,
/// plus the input normalisation `(x - norm_mean) / norm_std`. A model is only accepted when the Swift
/// front end (`Features.LogMelExtractor`) produces exactly these features; otherwise it would run
/// silently on the wrong input distribution.
public struct ModelFeatureParameters: Sendable, Equatable, Codable {
    public var sampleRate: Int
    public var nFft: Int
    public var hopLength: Int
    public var nMels: Int
    public var fmin: Double
    public var fmax: Double
    public var power: Double
    public var center: Bool
    public var padMode: String
    public var window: String
    public var melHtk: Bool
    public var melNorm: String
    public var dbRef: Double
    public var dbAmin: Double
    public var dbTopDb: Double?
    public var normMean: Double
    public var normStd: Double

    /// The front end's parameters for these features.
    public var logMelParameters: LogMelParameters {
        LogMelParameters(sampleRate: sampleRate, nFFT: nFft, hopLength: hopLength, nMels: nMels,
                         fmin: fmin, fmax: fmax, dbRef: dbRef, dbAmin: dbAmin)
    }

    /// Refuses parameters the front end cannot produce (kept in step with `_check_features` in
    /// training/export_model.py). `modelMels` is the architecture's `n_mels`.
    public func validate(modelMels: Int) throws(ModelError) {
        func bad(_ key: String, _ why: String) -> ModelError { .unsupportedFeatures(key: key, reason: why) }
        do {
            try logMelParameters.validate()
        } catch {
            switch error {
            case let .invalid(key, reason): throw bad(key, reason)
            }
        }
        guard nMels == modelMels else { throw bad("n_mels", "\(nMels) differs from architecture.n_mels \(modelMels)") }
        guard nMels <= nFft / 2 + 1 else { throw bad("n_mels", "more mel bands (\(nMels)) than STFT bins (\(nFft / 2 + 1))") }
        guard power == 2 else { throw bad("power", "only a power spectrogram (2.0) is computed, got \(power)") }
        guard center else { throw bad("center", "only centred frames are computed") }
        guard padMode == "constant" else { throw bad("pad_mode", "only \"constant\" (zero) padding is computed, got \"\(padMode)\"") }
        guard window == "hann" else { throw bad("window", "only \"hann\" is computed, got \"\(window)\"") }
        guard !melHtk else { throw bad("mel_htk", "only the Slaney mel scale is computed") }
        guard melNorm == "slaney" else { throw bad("mel_norm", "only \"slaney\" filter normalisation is computed, got \"\(melNorm)\"") }
        guard dbRef == 1 else { throw bad("db_ref", "only ref=1.0 is computed, got \(dbRef)") }
        guard dbTopDb == nil else { throw bad("db_top_db", "top_db clipping is not computed (must be null)") }
        guard normMean.isFinite else { throw bad("norm_mean", "must be finite") }
        guard normStd.isFinite, normStd > 0 else { throw bad("norm_std", "must be > 0, got \(normStd)") }
    }
}
