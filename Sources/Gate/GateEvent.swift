import Foundation

/// A reason estimate: the label (or `unknown` when no class reaches the confidence threshold), its
/// probability, and every class's probability.
public struct ReasonEstimate: Sendable, Equatable, Codable {
    public static let unknown = "unknown"
    public var reason: String
    public var confidence: Double
    public var probabilities: [String: Double]

    public init(reason: String, confidence: Double, probabilities: [String: Double]) {
        self.reason = reason
        self.confidence = confidence
        self.probabilities = probabilities
    }
}

/// What the gate tells the rest of the pipeline. Times are stream times (seconds since the source's
/// first sample) plus wall-clock dates derived from the capture timestamps.
public enum GateEvent: Sendable, Equatable {
    /// An episode began at `at` (onset: the start of its first cry window) and was confirmed at
    /// `detectedAt`. `cryConfidence` is the cry detector's probability for the confirming window.
    case cryStarted(episode: UUID, at: Date, streamTime: Double, cryConfidence: Double, estimate: ReasonEstimate, detectedAt: Date)
    /// The reason, re-estimated over all cry windows of the episode so far.
    case cryUpdated(episode: UUID, at: Date, streamTime: Double, estimate: ReasonEstimate)
    /// The episode ended (hang-over elapsed, or the input ended). `duration` runs from onset to the end of
    /// the last cry window; `cryConfidence` is the mean cry probability of its cry windows.
    case cryEnded(episode: UUID, at: Date, streamTime: Double, duration: Double, cryWindows: Int, cryConfidence: Double,
                  estimate: ReasonEstimate)
    /// Sound level over the last level interval.
    case level(dbfs: Double, at: Date, streamTime: Double)
}
