/// The `[feedback]` section: what the node keeps about its episodes for caregiver feedback and how much
/// the home's answers may change what it reports. config.example.toml explains each key to the owner.
public struct FeedbackSettings: Sendable, Equatable {
    /// Keep episodes and accept `cmd/feedback`. Off: nothing is stored and feedback is refused.
    public var enabled = true
    /// Episodes kept (the oldest unlabelled ones go first; labelled ones are the home's knowledge).
    public var maxEpisodes = 2000
    /// Labelled episodes kept; a new label beyond this is refused (`storage_full`) until some are forgotten.
    public var maxLabelled = 1000
    /// Feedback on an episode older than this is refused (`too_old`): nobody remembers last month's cry.
    public var maxAgeDays = 30.0
    /// Keep each episode's audio (16 kHz, 16-bit, up to `audio_max_s`) — off unless the owner opts in.
    public var keepAudio = false
    /// Total audio kept, in MB; the oldest recordings are dropped first.
    public var audioMaxMB = 50.0
    /// Longest recording kept per episode, in seconds (from 1 s before the onset).
    public var audioMaxSeconds = 30.0
    /// Let "not a cry" answers silence sounds like them (``HomeVeto``).
    public var veto = true
    /// Cosine similarity (in the cry head's standardised space) at which a patch counts as "that sound again".
    public var vetoSimilarity = 0.80
    /// …and by how much it must be closer to a "not a cry" sound than to any confirmed cry.
    public var vetoMargin = 0.05
    /// The most recent "not a cry" episodes the veto uses (a cap: old taps fade, a flood cannot deafen).
    public var vetoMaxEpisodes = 50
    /// Blend the home's reason answers into the reported reason (``HomeReasonLayer``).
    public var adaptReasons = true
    /// Sharpness of the nearest-centroid part of the home reason layer.
    public var reasonBeta = 10.0
    /// Labelled episodes at which the home layer weighs as much as the global model.
    public var reasonKappa = 8.0

    public init() {}

    /// Throws naming the key (`feedback.<key>`) of the first bad value.
    public func validate() throws(FeedbackSettingsError) {
        func check(_ ok: Bool, _ key: String, _ why: String) throws(FeedbackSettingsError) {
            if !ok { throw FeedbackSettingsError(key: "feedback.\(key)", reason: why) }
        }
        try check((10...1_000_000).contains(maxEpisodes), "max_episodes", "must be in 10...1000000, got \(maxEpisodes)")
        try check((1...maxEpisodes).contains(maxLabelled), "max_labelled", "must be in 1...max_episodes (\(maxEpisodes)), got \(maxLabelled)")
        try check(maxAgeDays.isFinite && maxAgeDays > 0 && maxAgeDays <= 3650, "max_age_days", "must be in (0, 3650], got \(maxAgeDays)")
        try check(audioMaxMB.isFinite && audioMaxMB >= 0 && audioMaxMB <= 100_000, "audio_max_mb", "must be in 0...100000, got \(audioMaxMB)")
        try check(audioMaxSeconds.isFinite && audioMaxSeconds >= 1 && audioMaxSeconds <= 600, "audio_max_s", "must be in 1...600, got \(audioMaxSeconds)")
        try check(vetoSimilarity.isFinite && vetoSimilarity > 0 && vetoSimilarity <= 1, "veto_similarity", "must be in (0, 1], got \(vetoSimilarity)")
        try check(vetoMargin.isFinite && vetoMargin >= 0 && vetoMargin <= 1, "veto_margin", "must be in 0...1, got \(vetoMargin)")
        try check((1...1000).contains(vetoMaxEpisodes), "veto_max_episodes", "must be in 1...1000, got \(vetoMaxEpisodes)")
        try check(reasonBeta.isFinite && reasonBeta > 0 && reasonBeta <= 100, "reason_beta", "must be in (0, 100], got \(reasonBeta)")
        try check(reasonKappa.isFinite && reasonKappa > 0 && reasonKappa <= 10_000, "reason_kappa", "must be in (0, 10000], got \(reasonKappa)")
    }
}

public struct FeedbackSettingsError: Error, Equatable {
    public var key: String
    public var reason: String
}
