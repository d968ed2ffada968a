import Feedback
import Foundation
import Gate

/// The node's whole configuration: `config.example.toml` documents every key. Loaded from TOML, then
/// environment overrides (secrets), then command-line overrides; validated completely before anything
/// starts, with errors that name the key.
public struct AgentConfig: Sendable, Equatable {
    public struct Node: Sendable, Equatable {
        /// MQTT client id and topic segment; default: the host name, sanitised to [a-z0-9_-].
        public var id: String?
        public var stateDir = "/var/lib/deepinfant-edge"
    }

    public struct Audio: Sendable, Equatable {
        /// ALSA PCM name.
        public var device = "default"
        /// An audio file to analyse instead of a live device (ends the agent at end of file).
        public var input: String?
        /// Deliver a file/`file`-plugin source no faster than real time.
        public var realTime = false
        /// Chunk size handed downstream, in samples at 16 kHz (also the ALSA period). 512 is one feature hop:
        /// every log-mel frame is complete at a chunk's end, so no analysis window waits for the rest of a
        /// chunk (event latency ~5 ms instead of up to 100 ms with 1600), for ~0.4 % of a core more wake-ups.
        public var chunkSamples = 512
        /// Chunks buffered between capture and the gate before new audio is dropped (counted, logged): 10 s.
        public var queueChunks = 320
    }

    public struct MQTT: Sendable, Equatable {
        public var broker = "mqtt://127.0.0.1:1883"
        public var username: String?
        public var password: String?
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
        public var prefix = "deepinfant"
        public var discoveryPrefix = "homeassistant"
        public var discovery = true
        public var keepalive = 30
        public var outboxMaxEvents = 10_000
        /// Seconds between retained diagnostics messages (deepinfant/<node>/diagnostics).
        public var diagnosticsIntervalSeconds = 60.0
    }

    public struct Model: Sendable, Equatable {
        /// Reason model file; empty: the embedded default.
        public var path: String?
        /// CRNN cry detector file (`gate.detector = "crnn"`); empty: the embedded one.
        public var cryPath: String?
        /// Cry head on YAMNet embeddings (`gate.detector = "yamnet"`); empty: the embedded one.
        public var cryHeadPath: String?
        /// YAMNet body; empty: the embedded one.
        public var yamnetPath: String?
    }

    public struct Logging: Sendable, Equatable {
        public var level = "info"
    }

    /// Remote control (`cmd/*` topics).
    public struct Control: Sendable, Equatable {
        /// Ed25519 public key files (`model keygen`'s `signing.pub`) whose signatures `cmd/model` accepts;
        /// `run --trusted-key FILE` adds more. Empty: remote model updates are refused.
        public var trustedKeys: [String] = []
    }

    public var node = Node()
    public var audio = Audio()
    public var mqtt = MQTT()
    public var gate = GateSettings()
    public var model = Model()
    public var log = Logging()
    public var control = Control()
    public var feedback = FeedbackSettings()

    public init() {}

    public var nodeID: String { node.id ?? NodeIdentity.defaultNodeID() }

    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// Checks everything that can be checked without touching devices or the network.
    public func validate() throws(ConfigError) {
        if let id = node.id {
            guard !id.isEmpty, id.count <= 64, id.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_" || $0 == "-") }) else {
                throw ConfigError(key: "node.id", reason: "must be 1-64 characters of [a-z0-9_-], got \"\(id)\"")
            }
            guard id != "all" else { throw ConfigError(key: "node.id", reason: "\"all\" is reserved for group commands") }
        }
        guard !node.stateDir.isEmpty else { throw ConfigError(key: "node.state_dir", reason: "must not be empty") }
        guard !audio.device.isEmpty else { throw ConfigError(key: "audio.device", reason: "must not be empty") }
        guard (160...16_000).contains(audio.chunkSamples) else { throw ConfigError(key: "audio.chunk_samples", reason: "must be in 160...16000, got \(audio.chunkSamples)") }
        guard (4...10_000).contains(audio.queueChunks) else { throw ConfigError(key: "audio.queue_chunks", reason: "must be in 4...10000, got \(audio.queueChunks)") }
        guard mqtt.broker.hasPrefix("mqtt://") || mqtt.broker.hasPrefix("mqtts://"),
              let url = URLComponents(string: mqtt.broker), let host = url.host, !host.isEmpty else {
            throw ConfigError(key: "mqtt.broker", reason: "must look like mqtt://HOST:PORT or mqtts://HOST:PORT, got \"\(mqtt.broker)\"")
        }
        if let port = url.port, !(1...65_535).contains(port) { throw ConfigError(key: "mqtt.broker", reason: "port \(port) out of range") }
        if mqtt.broker.hasPrefix("mqtts://"), mqtt.caFile == nil { throw ConfigError(key: "mqtt.ca_file", reason: "required for mqtts://") }
        for (key, value) in [("mqtt.prefix", mqtt.prefix), ("mqtt.discovery_prefix", mqtt.discoveryPrefix)] {
            guard !value.isEmpty, !value.contains("+"), !value.contains("#"), !value.hasPrefix("/"), !value.hasSuffix("/") else {
                throw ConfigError(key: key, reason: "must be a topic prefix without wildcards or leading/trailing '/', got \"\(value)\"")
            }
        }
        guard (5...3600).contains(mqtt.keepalive) else { throw ConfigError(key: "mqtt.keepalive", reason: "must be in 5...3600 seconds") }
        guard (10...10_000_000).contains(mqtt.outboxMaxEvents) else { throw ConfigError(key: "mqtt.outbox_max_events", reason: "must be in 10...10000000") }
        guard mqtt.diagnosticsIntervalSeconds.isFinite, (1...86_400).contains(mqtt.diagnosticsIntervalSeconds) else {
            throw ConfigError(key: "mqtt.diagnostics_interval_s", reason: "must be in 1...86400 seconds")
        }
        guard Self.logLevels.contains(log.level) else {
            throw ConfigError(key: "log.level", reason: "must be one of \(Self.logLevels.joined(separator: ", ")), got \"\(log.level)\"")
        }
        for (i, path) in control.trustedKeys.enumerated() where path.isEmpty {
            throw ConfigError(key: "control.trusted_keys", reason: "entry \(i) is empty (a path to a public key file)")
        }
        do { try gate.validate() } catch { throw ConfigError(key: error.key, reason: error.reason) }
        do { try feedback.validate() } catch { throw ConfigError(key: error.key, reason: error.reason) }
    }
}

/// A configuration problem, naming the key (`section.key`) as written in the TOML file.
public struct ConfigError: Error, Equatable, CustomStringConvertible {
    public var key: String
    public var reason: String
    public init(key: String, reason: String) {
        self.key = key
        self.reason = reason
    }
    public var description: String { "config error: \(key): \(reason)" }
}

public enum NodeIdentity {
    /// The host name, lower-cased and reduced to [a-z0-9_-] (others become '-').
    public static func defaultNodeID() -> String {
        let raw = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "node"
        let cleaned = String(raw.lowercased().map { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "_" || $0 == "-" ? $0 : "-" })
        let id = cleaned.isEmpty || cleaned == "all" ? "node" : String(cleaned.prefix(64))
        return id
    }
}
