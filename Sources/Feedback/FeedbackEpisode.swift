import Foundation

/// One episode as the feedback store keeps it: what the models saw and said, and the caregivers' answer.
public struct FeedbackEpisode: Sendable, Equatable {
    public var id: String
    public var startedAt: Date
    public var endedAt: Date?
    public var durationS: Double?
    /// Mean cry probability of the episode's cry windows (0 while it is open).
    public var cryConfidence: Double
    /// What the node reported: reason (or `unknown`) and the global model's probabilities.
    public var reason: String
    public var probabilities: [String: Double]
    /// Model versions in force: `reason`, `cry`, `yamnet`.
    public var models: [String: String]
    /// Row-major `[patches, dimension]` raw YAMNet embeddings of the firing patches (empty on a crnn node).
    public var embeddings: [Float]
    public var dimension: Int
    public var patchProbabilities: [Double]
    /// A reason label, `not_cry`, or nil (no answer yet, or withdrawn).
    public var label: String?
    public var labelledAt: Date?
    /// Bytes of kept audio (16-bit PCM at 16 kHz), 0 when none.
    public var audioBytes: Int

    public init(id: String, startedAt: Date, endedAt: Date? = nil, durationS: Double? = nil, cryConfidence: Double = 0, reason: String,
                probabilities: [String: Double], models: [String: String], embeddings: [Float] = [], dimension: Int = 0,
                patchProbabilities: [Double] = [], label: String? = nil, labelledAt: Date? = nil, audioBytes: Int = 0) {
        self.id = id
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.durationS = durationS
        self.cryConfidence = cryConfidence
        self.reason = reason
        self.probabilities = probabilities
        self.models = models
        self.embeddings = embeddings
        self.dimension = dimension
        self.patchProbabilities = patchProbabilities
        self.label = label
        self.labelledAt = labelledAt
        self.audioBytes = audioBytes
    }

    public var patches: Int { patchProbabilities.count }
}

/// Why a feedback operation was refused, with the code the `result` topic carries.
public enum FeedbackError: Error, Equatable, CustomStringConvertible {
    case disabled
    case unknownEpisode(String)
    case unknownLabel(String, allowed: [String])
    case tooOld(String, days: Double)
    case storageFull(String)
    case storeFailed(String)

    public var code: String {
        switch self {
        case .disabled: "feedback_disabled"
        case .unknownEpisode: "unknown_episode"
        case .unknownLabel: "unknown_label"
        case .tooOld: "too_old"
        case .storageFull: "storage_full"
        case .storeFailed: "store_failed"
        }
    }

    public var description: String {
        switch self {
        case .disabled: "feedback is off on this node (feedback.enabled = false)"
        case let .unknownEpisode(id): "no episode \"\(id)\" is stored on this node (never seen, forgotten, or dropped as the oldest)"
        case let .unknownLabel(label, allowed): "\"\(label)\" is not a label of this node; one of \(allowed.joined(separator: ", ")), or null to withdraw"
        case let .tooOld(id, days): "episode \(id) is older than \(days) days (feedback.max_age_days)"
        case let .storageFull(why): "feedback storage is full: \(why)"
        case let .storeFailed(why): "the feedback store failed: \(why)"
        }
    }
}
