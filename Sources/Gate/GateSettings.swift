/// Tunables of the cry gate. Every field is a config key under `[gate]` (see config.example.toml) and can be
/// changed remotely; defaults are what the evaluation in training/REPORT.md used.
public struct GateSettings: Sendable, Equatable, Codable {
    /// Stage 1 wakes stage 2 when a 32 ms frame is this many dB above the adaptive noise floor…
    public var activityMarginDB: Double = 8
    /// …and above this absolute level (dBFS), so a silent room never wakes it.
    public var activityMinDBFS: Double = -55
    /// Stage 2: a window whose cry probability reaches this is a cry window. Nil: the threshold recommended
    /// in the cry model's metadata (chosen on out-of-fold predictions), else 0.5.
    public var cryThreshold: Double?
    /// Stage 2's detector: "yamnet" (the pretrained AudioSet body + cry head, the default) or "crnn" (the
    /// from-scratch detector, for boards too small for ~10 ms of inference every 0.48 s while active).
    public var detector: String = "yamnet"
    /// Cry windows needed in a row before an episode starts (onset hysteresis), CRNN detector.
    public var minCryWindows: Int = 2
    /// The same for the YAMNet detector, counted in patches (0.975 s every `patch_hop_s`).
    public var minCryPatches: Int = 2
    /// Seconds between YAMNet patches (rounded to its 10 ms frames); the reference code uses 0.48.
    public var patchHopSeconds: Double = 0.48
    /// Seconds without a cry window before an episode ends (hang-over).
    public var hangoverSeconds: Double = 4
    /// Seconds between `update` events during an episode.
    public var updateIntervalSeconds: Double = 5
    /// Below this reason confidence the reason is reported as `unknown` (probabilities still attached).
    public var reasonMinConfidence: Double = 0.45
    /// Seconds between sound-level reports.
    public var levelIntervalSeconds: Double = 10
    /// Analysis hop in seconds (stage 2 runs at most this often while active).
    public var analysisHopSeconds: Double = 0.5

    public init() {}

    /// Range checks; the message names the key as it appears in the config.
    public func validate() throws(GateSettingsError) {
        func check(_ ok: Bool, _ key: String, _ why: String) throws(GateSettingsError) {
            if !ok { throw GateSettingsError(key: "gate.\(key)", reason: why) }
        }
        try check(activityMarginDB.isFinite && activityMarginDB >= 0 && activityMarginDB <= 60, "activity_margin_db", "must be in 0...60")
        try check(activityMinDBFS.isFinite && activityMinDBFS >= -120 && activityMinDBFS <= 0, "activity_min_dbfs", "must be in -120...0")
        if let t = cryThreshold { try check(t.isFinite && t > 0 && t < 1, "cry_threshold", "must be in (0, 1)") }
        try check(detector == "yamnet" || detector == "crnn", "detector", "must be \"yamnet\" or \"crnn\"")
        try check(minCryPatches >= 1 && minCryPatches <= 20, "min_cry_patches", "must be in 1...20")
        try check(patchHopSeconds.isFinite && patchHopSeconds >= 0.1 && patchHopSeconds <= 0.975, "patch_hop_s", "must be in 0.1...0.975")
        try check(minCryWindows >= 1 && minCryWindows <= 20, "min_cry_windows", "must be in 1...20")
        try check(hangoverSeconds.isFinite && hangoverSeconds >= 0 && hangoverSeconds <= 600, "hangover_s", "must be in 0...600")
        try check(updateIntervalSeconds.isFinite && updateIntervalSeconds >= 1 && updateIntervalSeconds <= 3600, "update_interval_s", "must be in 1...3600")
        try check(reasonMinConfidence.isFinite && reasonMinConfidence >= 0 && reasonMinConfidence <= 1, "reason_min_confidence", "must be in 0...1")
        try check(levelIntervalSeconds.isFinite && levelIntervalSeconds >= 1 && levelIntervalSeconds <= 3600, "level_interval_s", "must be in 1...3600")
        try check(analysisHopSeconds.isFinite && analysisHopSeconds >= 0.1 && analysisHopSeconds <= 5, "analysis_hop_s", "must be in 0.1...5")
    }

    enum CodingKeys: String, CodingKey {
        case activityMarginDB = "activity_margin_db", activityMinDBFS = "activity_min_dbfs"
        case detector, minCryPatches = "min_cry_patches", patchHopSeconds = "patch_hop_s"
        case cryThreshold = "cry_threshold", minCryWindows = "min_cry_windows", hangoverSeconds = "hangover_s"
        case updateIntervalSeconds = "update_interval_s", reasonMinConfidence = "reason_min_confidence"
        case levelIntervalSeconds = "level_interval_s", analysisHopSeconds = "analysis_hop_s"
    }
}

public struct GateSettingsError: Error, Equatable, CustomStringConvertible {
    public var key: String
    public var reason: String
    public var description: String { "\(key): \(reason)" }
    public init(key: String, reason: String) {
        self.key = key
        self.reason = reason
    }
}
