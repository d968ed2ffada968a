import Feedback
import Foundation
import Inference
import Messaging

/// The answer to every command, published on `<prefix>/<node>/result` (QoS 1, not retained). A superset of
/// Messaging's `ResultPayload` (`command`, `request_id`, `ok`, `message`, `timestamp`), so a consumer of
/// that shape still reads it; the other keys are present only where they apply.
public struct CommandResult: Codable, Sendable, Equatable {
    public struct ModelSummary: Codable, Sendable, Equatable {
        public var name: String
        public var version: String
        public var sha256: String?
        /// In `ping`'s `models` list: the model slot and the file's `architecture.type`.
        public var slot: String?
        public var kind: String?
        public init(name: String, version: String, sha256: String? = nil, slot: String? = nil, kind: String? = nil) {
            self.name = name
            self.version = version
            self.sha256 = sha256
            self.slot = slot
            self.kind = kind
        }
    }

    public struct SelfTestSummary: Codable, Sendable, Equatable {
        public var model: String
        public var version: String
        public var passed: Bool
        public var maxDelta: Double
        public var tolerance: Double
        /// The model slot (`reason`, `cry`, `yamnet`).
        public var slot: String?
        enum CodingKeys: String, CodingKey {
            case model, version, passed, tolerance, slot
            case maxDelta = "max_delta"
        }
    }

    /// The command name (`config`, `model`, `rollback`, `ping`, `selftest`, or what was sent).
    public var command: String
    /// Echo of the payload's `request_id`, so a fleet controller can match answers to questions.
    public var requestID: String?
    public var nodeID: String
    public var ok: Bool
    /// Machine-readable reason when `ok` is false (`invalid_config`, `invalid_signature`, `downgrade`, …).
    public var error: String?
    /// The config key or envelope field at fault (`gate.cry_threshold`, `signature`, a tensor name, …).
    public var key: String?
    /// Human-readable outcome.
    public var message: String?
    /// Fingerprint of the effective configuration after the command (`ConfigHash`).
    public var configHash: String?
    /// `cmd/config`: keys that changed, and whether (which of) them wait for a restart.
    public var changed: [String]?
    public var restartRequired: Bool?
    public var restartKeys: [String]?
    /// `cmd/config {}`: the effective configuration, secrets redacted.
    public var config: JSONValue?
    /// `cmd/model`, `cmd/rollback`: the model slot the command changed (`reason`, `cry`, `yamnet`), and
    /// the model in force in it after the command, and the one it replaced. (`ping`: `model` is the reason
    /// model.)
    public var slot: String?
    public var model: ModelSummary?
    public var previousModel: ModelSummary?
    /// `cmd/ping`: the model of every slot, with `slot` and `kind`.
    public var models: [ModelSummary]?
    public var selftest: [SelfTestSummary]?
    /// `cmd/ping`.
    public var uptimeS: Double?
    public var softwareVersion: String?
    public var pipelineRunning: Bool?
    /// `cmd/feedback`, `cmd/forget`: the episode concerned, the label now in force (nil: none), and for a
    /// forget-all how many episodes were erased.
    public var episodeID: String?
    public var label: String?
    public var forgotten: Int?
    /// `cmd/export_feedback`: one page of labelled episodes.
    public var export: FeedbackExportPage?
    public var timestamp: Date

    enum CodingKeys: String, CodingKey {
        case command, ok, error, key, message, changed, config, model, models, slot, selftest, timestamp
        case requestID = "request_id", nodeID = "node_id", configHash = "config_hash"
        case restartRequired = "restart_required", restartKeys = "restart_keys", previousModel = "previous_model"
        case uptimeS = "uptime_s", softwareVersion = "software_version", pipelineRunning = "pipeline_running"
        case episodeID = "episode_id", label, forgotten, export
    }

    public init(command: String, requestID: String?, nodeID: String, ok: Bool, error: String? = nil, key: String? = nil,
                message: String? = nil, configHash: String? = nil, timestamp: Date = Date()) {
        self.command = command
        self.requestID = requestID
        self.nodeID = nodeID
        self.ok = ok
        self.error = error
        self.key = key
        self.message = message
        self.configHash = configHash
        self.timestamp = timestamp
    }

    public func encoded() throws -> [UInt8] { try PayloadJSON.encode(self) }

    public static func decode(_ bytes: [UInt8]) throws -> CommandResult { try PayloadJSON.decode(CommandResult.self, from: bytes) }
}
