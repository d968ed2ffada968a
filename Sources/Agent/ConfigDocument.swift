import Feedback
import Gate
import Inference

/// `AgentConfig` as a JSON document shaped exactly like the TOML file (`{"gate": {"cry_threshold": 0.6}}`),
/// so a merge patch, the persisted override and the `cmd/config` answer all use the keys an operator
/// already knows from config.example.toml.
///
/// The one place that maps keys to `AgentConfig` fields: `ConfigLoader` turns the TOML file into this
/// document too. Unknown sections and keys, wrong types and non-integral integers are errors naming the
/// key; a key that is absent (or deleted by a `null` in a patch) takes its default. Ranges are then checked
/// by `AgentConfig.validate()`.
public enum ConfigDocument {
    /// Replaced by this in answers, so secrets never travel back over MQTT.
    public static let redacted = "(redacted)"

    /// The whole configuration; with `redactSecrets`, `mqtt.password` (when set) reads ``redacted``.
    public static func encode(_ c: AgentConfig, redactSecrets: Bool = false) -> JSONValue {
        func s(_ v: String?) -> JSONValue? { v.map { .string($0) } }
        func n(_ v: Double) -> JSONValue { .number(v) }
        func i(_ v: Int) -> JSONValue { .number(Double(v)) }
        func section(_ pairs: [(String, JSONValue?)]) -> JSONValue {
            var members: [String: JSONValue] = [:]
            for (k, v) in pairs { if let v { members[k] = v } }
            return .object(members)
        }
        let g = c.gate, f = c.feedback
        return .object([
            "node": section([("id", s(c.node.id)), ("state_dir", s(c.node.stateDir))]),
            "audio": section([("device", s(c.audio.device)), ("input", s(c.audio.input)), ("real_time", .bool(c.audio.realTime)),
                              ("chunk_samples", i(c.audio.chunkSamples)), ("queue_chunks", i(c.audio.queueChunks))]),
            "mqtt": section([("broker", s(c.mqtt.broker)), ("username", s(c.mqtt.username)),
                             ("password", c.mqtt.password.map { .string(redactSecrets ? redacted : $0) }),
                             ("ca_file", s(c.mqtt.caFile)), ("cert_file", s(c.mqtt.certFile)), ("key_file", s(c.mqtt.keyFile)),
                             ("prefix", s(c.mqtt.prefix)), ("discovery_prefix", s(c.mqtt.discoveryPrefix)),
                             ("discovery", .bool(c.mqtt.discovery)), ("keepalive", i(c.mqtt.keepalive)),
                             ("outbox_max_events", i(c.mqtt.outboxMaxEvents)),
                             ("diagnostics_interval_s", n(c.mqtt.diagnosticsIntervalSeconds))]),
            "gate": section([("activity_margin_db", n(g.activityMarginDB)), ("activity_min_dbfs", n(g.activityMinDBFS)),
                             ("cry_threshold", g.cryThreshold.map(n)), ("min_cry_windows", i(g.minCryWindows)),
                             ("hangover_s", n(g.hangoverSeconds)), ("update_interval_s", n(g.updateIntervalSeconds)),
                             ("reason_min_confidence", n(g.reasonMinConfidence)), ("level_interval_s", n(g.levelIntervalSeconds)),
                             ("analysis_hop_s", n(g.analysisHopSeconds)), ("detector", s(g.detector)),
                             ("min_cry_patches", i(g.minCryPatches)), ("patch_hop_s", n(g.patchHopSeconds))]),
            "model": section([("path", s(c.model.path)), ("cry_path", s(c.model.cryPath)), ("cry_head_path", s(c.model.cryHeadPath)),
                              ("yamnet_path", s(c.model.yamnetPath))]),
            "log": section([("level", s(c.log.level))]),
            "control": section([("trusted_keys", .array(c.control.trustedKeys.map { .string($0) }))]),
            "feedback": section([("enabled", .bool(f.enabled)), ("max_episodes", i(f.maxEpisodes)), ("max_labelled", i(f.maxLabelled)),
                                 ("max_age_days", n(f.maxAgeDays)), ("keep_audio", .bool(f.keepAudio)), ("audio_max_mb", n(f.audioMaxMB)),
                                 ("audio_max_s", n(f.audioMaxSeconds)), ("veto", .bool(f.veto)), ("veto_similarity", n(f.vetoSimilarity)),
                                 ("veto_margin", n(f.vetoMargin)), ("veto_max_episodes", i(f.vetoMaxEpisodes)),
                                 ("adapt_reasons", .bool(f.adaptReasons)), ("reason_beta", n(f.reasonBeta)), ("reason_kappa", n(f.reasonKappa))]),
        ])
    }

    /// Builds a configuration from a document (defaults for absent keys) and validates it completely.
    public static func decode(_ document: JSONValue) throws(ConfigError) -> AgentConfig {
        var c = AgentConfig()
        var root = try Reader(document, path: "")
        try root.section("node") { r throws(ConfigError) in
            c.node.id = try r.string("id")
            if let v = try r.string("state_dir") { c.node.stateDir = v }
        }
        try root.section("audio") { r throws(ConfigError) in
            if let v = try r.string("device") { c.audio.device = v }
            c.audio.input = try r.string("input")
            if let v = try r.bool("real_time") { c.audio.realTime = v }
            if let v = try r.int("chunk_samples") { c.audio.chunkSamples = v }
            if let v = try r.int("queue_chunks") { c.audio.queueChunks = v }
        }
        try root.section("mqtt") { r throws(ConfigError) in
            if let v = try r.string("broker") { c.mqtt.broker = v }
            c.mqtt.username = try r.string("username")
            c.mqtt.password = try r.string("password")
            c.mqtt.caFile = try r.string("ca_file")
            c.mqtt.certFile = try r.string("cert_file")
            c.mqtt.keyFile = try r.string("key_file")
            if let v = try r.string("prefix") { c.mqtt.prefix = v }
            if let v = try r.string("discovery_prefix") { c.mqtt.discoveryPrefix = v }
            if let v = try r.bool("discovery") { c.mqtt.discovery = v }
            if let v = try r.int("keepalive") { c.mqtt.keepalive = v }
            if let v = try r.int("outbox_max_events") { c.mqtt.outboxMaxEvents = v }
            if let v = try r.double("diagnostics_interval_s") { c.mqtt.diagnosticsIntervalSeconds = v }
        }
        try root.section("gate") { r throws(ConfigError) in
            if let v = try r.double("activity_margin_db") { c.gate.activityMarginDB = v }
            if let v = try r.double("activity_min_dbfs") { c.gate.activityMinDBFS = v }
            c.gate.cryThreshold = try r.double("cry_threshold")
            if let v = try r.int("min_cry_windows") { c.gate.minCryWindows = v }
            if let v = try r.double("hangover_s") { c.gate.hangoverSeconds = v }
            if let v = try r.double("update_interval_s") { c.gate.updateIntervalSeconds = v }
            if let v = try r.double("reason_min_confidence") { c.gate.reasonMinConfidence = v }
            if let v = try r.double("level_interval_s") { c.gate.levelIntervalSeconds = v }
            if let v = try r.double("analysis_hop_s") { c.gate.analysisHopSeconds = v }
            if let v = try r.string("detector") { c.gate.detector = v }
            if let v = try r.int("min_cry_patches") { c.gate.minCryPatches = v }
            if let v = try r.double("patch_hop_s") { c.gate.patchHopSeconds = v }
        }
        try root.section("model") { r throws(ConfigError) in
            c.model.path = try r.string("path")
            c.model.cryPath = try r.string("cry_path")
            c.model.cryHeadPath = try r.string("cry_head_path")
            c.model.yamnetPath = try r.string("yamnet_path")
        }
        try root.section("log") { r throws(ConfigError) in
            if let v = try r.string("level") { c.log.level = v }
        }
        try root.section("control") { r throws(ConfigError) in
            if let v = try r.strings("trusted_keys") { c.control.trustedKeys = v }
        }
        try root.section("feedback") { r throws(ConfigError) in
            if let v = try r.bool("enabled") { c.feedback.enabled = v }
            if let v = try r.int("max_episodes") { c.feedback.maxEpisodes = v }
            if let v = try r.int("max_labelled") { c.feedback.maxLabelled = v }
            if let v = try r.double("max_age_days") { c.feedback.maxAgeDays = v }
            if let v = try r.bool("keep_audio") { c.feedback.keepAudio = v }
            if let v = try r.double("audio_max_mb") { c.feedback.audioMaxMB = v }
            if let v = try r.double("audio_max_s") { c.feedback.audioMaxSeconds = v }
            if let v = try r.bool("veto") { c.feedback.veto = v }
            if let v = try r.double("veto_similarity") { c.feedback.vetoSimilarity = v }
            if let v = try r.double("veto_margin") { c.feedback.vetoMargin = v }
            if let v = try r.int("veto_max_episodes") { c.feedback.vetoMaxEpisodes = v }
            if let v = try r.bool("adapt_reasons") { c.feedback.adaptReasons = v }
            if let v = try r.double("reason_beta") { c.feedback.reasonBeta = v }
            if let v = try r.double("reason_kappa") { c.feedback.reasonKappa = v }
        }
        try root.rejectUnknown()
        try c.validate()
        return c
    }

    /// "a number", "an object", …: how an error message names a JSON value's type.
    public static func kind(_ v: JSONValue) -> String { Reader.kind(v) }

    /// Type-checked access to one JSON object that remembers which keys were read.
    struct Reader {
        let members: [String: JSONValue]
        let path: String
        var used: Set<String> = []

        init(_ value: JSONValue, path: String) throws(ConfigError) {
            guard case let .object(members) = value else {
                throw ConfigError(key: path.isEmpty ? "(root)" : path, reason: "must be an object, got \(Self.kind(value))")
            }
            self.members = members
            self.path = path
        }

        func key(_ k: String) -> String { path.isEmpty ? k : "\(path).\(k)" }

        static func kind(_ v: JSONValue) -> String {
            switch v {
            case .null: "null"
            case .bool: "a boolean"
            case .number: "a number"
            case .string: "a string"
            case .array: "an array"
            case .object: "an object"
            }
        }

        mutating func section(_ name: String, _ body: (inout Reader) throws(ConfigError) -> Void) throws(ConfigError) {
            used.insert(name)
            guard let value = members[name], value != .null else { return }
            var r = try Reader(value, path: key(name))
            try body(&r)
            try r.rejectUnknown()
        }

        func rejectUnknown() throws(ConfigError) {
            for k in members.keys.sorted() where !used.contains(k) {
                throw ConfigError(key: key(k), reason: "unknown key")
            }
        }

        mutating func value(_ k: String) -> JSONValue? {
            used.insert(k)
            guard let v = members[k], v != .null else { return nil }
            return v
        }

        mutating func string(_ k: String) throws(ConfigError) -> String? {
            guard let v = value(k) else { return nil }
            guard case let .string(s) = v else { throw ConfigError(key: key(k), reason: "must be a string, got \(Self.kind(v))") }
            return s
        }

        mutating func strings(_ k: String) throws(ConfigError) -> [String]? {
            guard let v = value(k) else { return nil }
            guard case let .array(items) = v else { throw ConfigError(key: key(k), reason: "must be an array of strings, got \(Self.kind(v))") }
            var result: [String] = []
            for item in items {
                guard case let .string(s) = item else {
                    throw ConfigError(key: key(k), reason: "must be an array of strings, got an element that is \(Self.kind(item))")
                }
                result.append(s)
            }
            return result
        }

        mutating func bool(_ k: String) throws(ConfigError) -> Bool? {
            guard let v = value(k) else { return nil }
            guard case let .bool(b) = v else { throw ConfigError(key: key(k), reason: "must be true or false, got \(Self.kind(v))") }
            return b
        }

        mutating func int(_ k: String) throws(ConfigError) -> Int? {
            guard let v = value(k) else { return nil }
            guard case let .number(d) = v else { throw ConfigError(key: key(k), reason: "must be an integer, got \(Self.kind(v))") }
            guard d.isFinite, d.rounded() == d, abs(d) <= 9_007_199_254_740_992 else {
                throw ConfigError(key: key(k), reason: "must be an integer, got \(d)")
            }
            return Int(d)
        }

        mutating func double(_ k: String) throws(ConfigError) -> Double? {
            guard let v = value(k) else { return nil }
            guard case let .number(d) = v else { throw ConfigError(key: key(k), reason: "must be a number, got \(Self.kind(v))") }
            return d
        }
    }
}
