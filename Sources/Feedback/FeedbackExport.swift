import Foundation

/// One page of `cmd/export_feedback`: labelled episodes after a cursor, with their embeddings (and audio,
/// where the owner keeps it) as base64 of little-endian arrays. The controller asks again with `next`
/// until `done`: each page is acknowledged by asking for the next one, so a lost message costs one page.
public struct FeedbackExportPage: Codable, Sendable, Equatable {
    public struct Episode: Codable, Sendable, Equatable {
        public var episodeID: String
        public var label: String
        public var labelledAt: Date?
        public var startedAt: Date
        public var endedAt: Date?
        public var durationS: Double?
        public var cryConfidence: Double
        public var reason: String
        public var probabilities: [String: Double]
        public var models: [String: String]
        public var patches: Int
        public var embeddingDim: Int
        /// float32 little-endian `[patches, embedding_dim]`, base64.
        public var embeddingsF32: String?
        /// int16 little-endian mono 16 kHz PCM, base64; only where `feedback.keep_audio` kept it.
        public var audioS16: String?

        enum CodingKeys: String, CodingKey {
            case label, reason, probabilities, models, patches
            case episodeID = "episode_id", labelledAt = "labelled_at", startedAt = "started_at", endedAt = "ended_at"
            case durationS = "duration_s", cryConfidence = "cry_confidence", embeddingDim = "embedding_dim"
            case embeddingsF32 = "embeddings_f32", audioS16 = "audio_s16"
        }

        public init(_ e: FeedbackEpisode, audio: [Int16]?) {
            episodeID = e.id
            label = e.label ?? ""
            labelledAt = e.labelledAt
            startedAt = e.startedAt
            endedAt = e.endedAt
            durationS = e.durationS
            cryConfidence = e.cryConfidence
            reason = e.reason
            probabilities = e.probabilities
            models = e.models
            patches = e.patches
            embeddingDim = e.dimension
            embeddingsF32 = e.embeddings.isEmpty ? nil : Data(FeedbackStore.bytes(e.embeddings)).base64EncodedString()
            audioS16 = audio.map { Data(FeedbackStore.bytes($0)).base64EncodedString() }
        }

        /// The embeddings back as floats (row-major `[patches, embedding_dim]`).
        public var embeddings: [Float] { embeddingsF32.flatMap { Data(base64Encoded: $0) }.map { FeedbackStore.floats([UInt8]($0)) } ?? [] }
        public var audio: [Int16]? { audioS16.flatMap { Data(base64Encoded: $0) }.map { FeedbackStore.int16s([UInt8]($0)) } }
    }

    public var episodes: [Episode]
    /// The cursor to ask for next.
    public var next: Int64
    public var done: Bool
    /// Labelled episodes on the node.
    public var total: Int

    public init(episodes: [Episode], next: Int64, done: Bool, total: Int) {
        self.episodes = episodes
        self.next = next
        self.done = done
        self.total = total
    }
}
