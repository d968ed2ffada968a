import Foundation
import JSONLimits

/// JSON coding shared by every payload: timestamps are ISO 8601 UTC with milliseconds
/// (`2026-11-25T12:39:30.123Z`), which Home Assistant templates, Node-RED and `date -d` all parse. Keys are
/// spelled out in each type's `CodingKeys` (snake_case) rather than via `convertToSnakeCase`, because that
/// strategy would also rewrite dictionary keys such as the labels in `probabilities`.
public enum PayloadJSON {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(formatTimestamp(date))
        }
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = parseTimestamp(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not ISO 8601: \(text)")
            }
            return date
        }
        return decoder
    }

    /// Rounded to the nearest millisecond, so that formatting what was parsed gives the same text: a node
    /// that re-publishes a saved event after a restart sends an exact repeat (Foundation's formatter
    /// truncates, and half of all parsed timestamps came back 1 ms early: conflicting duplicates in the soak).
    public static func formatTimestamp(_ date: Date) -> String {
        let ms = (date.timeIntervalSince1970 * 1000).rounded()
        let seconds = (ms / 1000).rounded(.down)
        let whole = Date(timeIntervalSince1970: seconds).formatted(Date.ISO8601FormatStyle())
        return whole.dropLast() + String(format: ".%03dZ", Int(ms - seconds * 1000))
    }

    public static func parseTimestamp(_ text: String) -> Date? {
        (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text))
            ?? (try? Date.ISO8601FormatStyle().parse(text))
    }

    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] { Array(try encoder().encode(value)) }

    /// Payloads come from anyone on the broker (a fleet controller reads every node's `info` and `result`):
    /// nesting is measured before Foundation's scanner sees them.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        guard !JSONNesting.tooDeep(bytes) else { throw JSONNesting.TooDeep() }
        return try decoder().decode(type, from: Data(bytes))
    }
}

/// One cry-episode event on `<prefix>/<node>/event` (QoS 1, not retained, via the durable outbox).
/// `episode_id` + `seq` identify an event uniquely, so a consumer can drop the duplicates that at-least-once
/// delivery may produce.
public struct CryEventPayload: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case start, update, end }

    public var type: Kind
    public var episodeID: String
    /// Increases by one per event within an episode, starting at 0 for `start`.
    public var seq: Int
    public var timestamp: Date
    public var startedAt: Date
    public var endedAt: Date?
    public var durationS: Double?
    public var reason: String
    public var confidence: Double
    public var probabilities: [String: Double]
    public var levelDBFS: Double
    public var modelVersion: String
    /// `reason`, or `unknown` when it is not one of the model's labels: Home Assistant's `event` entity reads
    /// this key and rejects types it was not told about in discovery.
    public var eventType: String
    /// Present when the home's feedback changed the reason: what the global model alone said. `reason`,
    /// `confidence` and `probabilities` are then the adapted ones.
    public var globalReason: String?
    public var globalProbabilities: [String: Double]?
    /// `true` on an `end` the node sent after it started again: it stopped (power cut, crash) in the middle
    /// of the episode. `ended_at` is then the last moment it knew the cry was going on.
    public var interrupted: Bool?

    enum CodingKeys: String, CodingKey {
        case type, seq, timestamp, reason, confidence, probabilities, interrupted
        case episodeID = "episode_id", startedAt = "started_at", endedAt = "ended_at", durationS = "duration_s"
        case levelDBFS = "level_dbfs", modelVersion = "model_version", eventType = "event_type"
        case globalReason = "global_reason", globalProbabilities = "global_probabilities"
    }

    public init(type: Kind, episodeID: String, seq: Int, timestamp: Date, startedAt: Date, endedAt: Date? = nil,
                durationS: Double? = nil, reason: String, confidence: Double, probabilities: [String: Double],
                levelDBFS: Double, modelVersion: String, eventType: String? = nil) {
        self.type = type
        self.episodeID = episodeID
        self.seq = seq
        self.timestamp = timestamp
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.durationS = durationS
        self.reason = reason
        self.confidence = confidence
        self.probabilities = probabilities
        self.levelDBFS = levelDBFS
        self.modelVersion = modelVersion
        self.eventType = eventType ?? reason
    }
}

/// Retained on `<prefix>/<node>/state`: what the node believes right now.
public struct StatePayload: Codable, Sendable, Equatable {
    public var crying: Bool
    public var reason: String?
    public var confidence: Double?
    /// When the current state (crying or quiet) began.
    public var since: Date
    public var episodeID: String?

    enum CodingKeys: String, CodingKey {
        case crying, reason, confidence, since
        case episodeID = "episode_id"
    }

    public init(crying: Bool, reason: String? = nil, confidence: Double? = nil, since: Date,
                episodeID: String? = nil) {
        self.crying = crying
        self.reason = reason
        self.confidence = confidence
        self.since = since
        self.episodeID = episodeID
    }

    /// Writes `null` for absent values rather than leaving the keys out, so templates and flows can rely on
    /// every key being there.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(crying, forKey: .crying)
        try container.encode(reason, forKey: .reason)
        try container.encode(confidence, forKey: .confidence)
        try container.encode(since, forKey: .since)
        try container.encode(episodeID, forKey: .episodeID)
    }
}

/// Retained on `<prefix>/<node>/info`: what is running where.
public struct InfoPayload: Codable, Sendable, Equatable {
    public struct Model: Codable, Sendable, Equatable {
        public var name: String
        public var version: String
        public var labels: [String]
        /// Newest model version known to be available (for the Home Assistant `update` entity); nil = installed.
        public var latestVersion: String?

        enum CodingKeys: String, CodingKey {
            case name, version, labels
            case latestVersion = "latest_version"
        }

        public init(name: String, version: String, labels: [String], latestVersion: String? = nil) {
            self.name = name
            self.version = version
            self.labels = labels
            self.latestVersion = latestVersion
        }
    }

    /// One model the node runs, per model slot (`reason`, `cry`, `yamnet`): Home Assistant's `update`
    /// entities read these.
    public struct SlotModel: Codable, Sendable, Equatable {
        /// `reason`, `cry` (the cry head, or the CRNN cry detector on a `crnn` node), `yamnet` (the body).
        public var slot: String
        /// The model file's `architecture.type`: `crnn`, `embedding_head`, `yamnet`.
        public var kind: String
        public var name: String
        public var version: String
        /// Newest version announced for this slot in a correctly signed envelope; nil = the installed one.
        public var latestVersion: String?

        enum CodingKeys: String, CodingKey {
            case slot, kind, name, version
            case latestVersion = "latest_version"
        }

        public init(slot: String, kind: String, name: String, version: String, latestVersion: String? = nil) {
            self.slot = slot
            self.kind = kind
            self.name = name
            self.version = version
            self.latestVersion = latestVersion
        }
    }

    public var nodeID: String
    public var softwareVersion: String
    /// The reason model (kept as it was before model slots; `models` has it too, as slot `reason`).
    public var model: Model
    /// Every model slot of the node, `reason` first; nil from nodes older than model slots.
    public var models: [SlotModel]?
    public var audioDevice: String
    public var startedAt: Date
    public var uptimeS: Double
    public var configHash: String
    /// Events waiting in the durable outbox, and events dropped because it was full (filled in by
    /// ``NodePublisher/publishInfo(_:)``).
    public var outboxPending: Int
    public var outboxDropped: Int
    /// Caregiver feedback counts and the adapted model's leave-one-out accuracy; nil when feedback is off.
    public var feedback: FeedbackInfo?

    enum CodingKeys: String, CodingKey {
        case model, models, feedback
        case nodeID = "node_id", softwareVersion = "software_version", audioDevice = "audio_device"
        case startedAt = "started_at", uptimeS = "uptime_s", configHash = "config_hash"
        case outboxPending = "outbox_pending", outboxDropped = "outbox_dropped"
    }

    public init(nodeID: String, softwareVersion: String, model: Model, audioDevice: String, startedAt: Date,
                uptimeS: Double, configHash: String, outboxPending: Int = 0, outboxDropped: Int = 0,
                models: [SlotModel]? = nil, feedback: FeedbackInfo? = nil) {
        self.nodeID = nodeID
        self.feedback = feedback
        self.softwareVersion = softwareVersion
        self.model = model
        self.models = models
        self.audioDevice = audioDevice
        self.startedAt = startedAt
        self.uptimeS = uptimeS
        self.configHash = configHash
        self.outboxPending = outboxPending
        self.outboxDropped = outboxDropped
    }
}

/// `<prefix>/<node>/level`, every N seconds, QoS 0.
public struct LevelPayload: Codable, Sendable, Equatable {
    public var levelDBFS: Double
    public var timestamp: Date

    enum CodingKeys: String, CodingKey {
        case timestamp
        case levelDBFS = "level_dbfs"
    }

    public init(levelDBFS: Double, timestamp: Date) {
        self.levelDBFS = levelDBFS
        self.timestamp = timestamp
    }
}

/// Retained on `<prefix>/<node>/config`: the remotely adjustable settings in force. Home Assistant `number`
/// entities read their state from here and send JSON merge patches of the same shape to `cmd/config`.
public struct ConfigStatePayload: Codable, Sendable, Equatable {
    public struct Gate: Codable, Sendable, Equatable {
        /// Cry-detector probability above which an episode starts (0...1).
        public var threshold: Double
        public init(threshold: Double) { self.threshold = threshold }
    }

    public struct Reason: Codable, Sendable, Equatable {
        /// Below this confidence the reason is reported as `unknown` (0...1).
        public var minConfidence: Double
        enum CodingKeys: String, CodingKey { case minConfidence = "min_confidence" }
        public init(minConfidence: Double) { self.minConfidence = minConfidence }
    }

    public var gate: Gate
    public var reason: Reason

    public init(gate: Gate, reason: Reason) {
        self.gate = gate
        self.reason = reason
    }
}

/// `<prefix>/<node>/result`: the outcome of a command.
public struct ResultPayload: Codable, Sendable, Equatable {
    public var command: String
    /// Echo of the request's `request_id`, if it had one, so a caller can match answers to questions.
    public var requestID: String?
    public var ok: Bool
    public var message: String?
    public var timestamp: Date

    enum CodingKeys: String, CodingKey {
        case command, ok, message, timestamp
        case requestID = "request_id"
    }

    public init(command: String, requestID: String? = nil, ok: Bool, message: String? = nil,
                timestamp: Date = Date()) {
        self.command = command
        self.requestID = requestID
        self.ok = ok
        self.message = message
        self.timestamp = timestamp
    }
}

/// A command received on `<prefix>/<node>/cmd/<name>` or `<prefix>/all/cmd/<name>`. The payload is passed on
/// untouched; interpreting it is the command handler's business.
public struct NodeCommand: Sendable, Equatable {
    public var name: String
    public var payload: [UInt8]
    /// True when it came in on the group topic (`<prefix>/all/cmd/...`).
    public var group: Bool
    public var topic: String

    public init(name: String, payload: [UInt8], group: Bool, topic: String) {
        self.name = name
        self.payload = payload
        self.group = group
        self.topic = topic
    }
}

/// `info.feedback`: what the caregivers have taught this node (counts only; no audio, no embeddings).
public struct FeedbackInfo: Codable, Sendable, Equatable {
    /// Leave-one-out over the reason-labelled episodes: how often the adapted model and the global one
    /// alone name the label the caregiver gave.
    public struct LeaveOneOut: Codable, Sendable, Equatable {
        public var episodes: Int
        public var adaptedAccuracy: Double
        public var globalAccuracy: Double
        enum CodingKeys: String, CodingKey {
            case episodes
            case adaptedAccuracy = "adapted_accuracy", globalAccuracy = "global_accuracy"
        }
        public init(episodes: Int, adaptedAccuracy: Double, globalAccuracy: Double) {
            self.episodes = episodes
            self.adaptedAccuracy = adaptedAccuracy
            self.globalAccuracy = globalAccuracy
        }
    }

    /// Episodes stored.
    public var episodes: Int
    /// Labelled episodes per label (`not_cry` included).
    public var labels: [String: Int]
    /// "Not a cry" episodes the veto uses, and patches it silenced since the start.
    public var vetoEpisodes: Int
    public var vetoedPatches: Int
    /// Weight of the home reason layer against the global model (0: none).
    public var reasonWeight: Double
    public var leaveOneOut: LeaveOneOut?

    enum CodingKeys: String, CodingKey {
        case episodes, labels
        case vetoEpisodes = "veto_episodes", vetoedPatches = "vetoed_patches", reasonWeight = "reason_weight", leaveOneOut = "leave_one_out"
    }

    public init(episodes: Int, labels: [String: Int], vetoEpisodes: Int, vetoedPatches: Int, reasonWeight: Double, leaveOneOut: LeaveOneOut?) {
        self.episodes = episodes
        self.labels = labels
        self.vetoEpisodes = vetoEpisodes
        self.vetoedPatches = vetoedPatches
        self.reasonWeight = reasonWeight
        self.leaveOneOut = leaveOneOut
    }
}

/// Retained on `<prefix>/<node>/feedback`: the most recent episode and the answer given for it, for Home
/// Assistant's "Last cry was…" `select` (``option`` is the select's option text, `None` when unanswered).
public struct FeedbackStatePayload: Codable, Sendable, Equatable {
    public var episodeID: String?
    public var startedAt: Date?
    public var label: String?
    public var option: String
    public var timestamp: Date

    enum CodingKeys: String, CodingKey {
        case label, option, timestamp
        case episodeID = "episode_id", startedAt = "started_at"
    }

    public init(episodeID: String?, startedAt: Date?, label: String?, timestamp: Date = Date()) {
        self.episodeID = episodeID
        self.startedAt = startedAt
        self.label = label
        self.option = label.map(Self.option(for:)) ?? "None"
        self.timestamp = timestamp
    }

    /// The select's text for a label: `not_cry` reads "not a cry", reasons as they are.
    public static func option(for label: String) -> String { label == notCry ? notACry : label }
    public static let notCry = "not_cry"
    public static let notACry = "not a cry"
}
