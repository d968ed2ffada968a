import Foundation
import TOMLKit

/// Reads `config.toml` into an `AgentConfig`. Every key is checked for type and every unknown key is an
/// error (a typo must not silently fall back to a default).
public enum ConfigLoader {
    /// Environment variables that override secrets, so they need not sit in the file.
    public static let passwordVariable = "DEEPINFANT_MQTT_PASSWORD"

    public static func load(path: String) throws(ConfigError) -> AgentConfig {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigError(key: "(file)", reason: "cannot read \(path): \(error.localizedDescription)")
        }
        return try parse(text)
    }

    public static func parse(_ text: String) throws(ConfigError) -> AgentConfig {
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch let error as TOMLParseError {
            throw ConfigError(key: "(syntax)", reason: "line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)")
        } catch {
            throw ConfigError(key: "(syntax)", reason: "\(error)")
        }
        var c = AgentConfig()
        var reader = Reader(table: table, path: "")
        try reader.section("node") { r throws(ConfigError) in
            c.node.id = try r.string("id")
            if let v = try r.string("state_dir") { c.node.stateDir = v }
        }
        try reader.section("audio") { r throws(ConfigError) in
            if let v = try r.string("device") { c.audio.device = v }
            c.audio.input = try r.string("input")
            if let v = try r.bool("real_time") { c.audio.realTime = v }
            if let v = try r.int("chunk_samples") { c.audio.chunkSamples = v }
            if let v = try r.int("queue_chunks") { c.audio.queueChunks = v }
        }
        try reader.section("mqtt") { r throws(ConfigError) in
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
        try reader.section("gate") { r throws(ConfigError) in
            if let v = try r.double("activity_margin_db") { c.gate.activityMarginDB = v }
            if let v = try r.double("activity_min_dbfs") { c.gate.activityMinDBFS = v }
            if let v = try r.double("cry_threshold") { c.gate.cryThreshold = v }
            if let v = try r.int("min_cry_windows") { c.gate.minCryWindows = v }
            if let v = try r.double("hangover_s") { c.gate.hangoverSeconds = v }
            if let v = try r.double("update_interval_s") { c.gate.updateIntervalSeconds = v }
            if let v = try r.double("reason_min_confidence") { c.gate.reasonMinConfidence = v }
            if let v = try r.double("level_interval_s") { c.gate.levelIntervalSeconds = v }
            if let v = try r.double("analysis_hop_s") { c.gate.analysisHopSeconds = v }
        }
        try reader.section("model") { r throws(ConfigError) in
            c.model.path = try r.string("path")
            c.model.cryPath = try r.string("cry_path")
        }
        try reader.section("log") { r throws(ConfigError) in
            if let v = try r.string("level") { c.log.level = v }
        }
        try reader.section("control") { r throws(ConfigError) in
            if let v = try r.strings("trusted_keys") { c.control.trustedKeys = v }
        }
        try reader.rejectUnknown()
        return c
    }

    /// Secrets from the environment win over the file.
    public static func applyEnvironment(_ c: inout AgentConfig, environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let p = environment[passwordVariable], !p.isEmpty { c.mqtt.password = p }
    }

    /// Type-checked access to one table that remembers which keys were read.
    struct Reader {
        let table: TOMLTable
        let path: String
        var used: Set<String> = []

        init(table: TOMLTable, path: String) {
            self.table = table
            self.path = path
        }

        func key(_ k: String) -> String { path.isEmpty ? k : "\(path).\(k)" }

        mutating func section(_ name: String, _ body: (inout Reader) throws(ConfigError) -> Void) throws(ConfigError) {
            used.insert(name)
            guard let value = table[name] else { return }
            guard let sub = value.table else { throw ConfigError(key: key(name), reason: "must be a table ([\(name)])") }
            var r = Reader(table: sub, path: key(name))
            try body(&r)
            try r.rejectUnknown()
        }

        func rejectUnknown() throws(ConfigError) {
            for k in table.keys.sorted() where !used.contains(k) {
                throw ConfigError(key: key(k), reason: "unknown key")
            }
        }

        mutating func string(_ k: String) throws(ConfigError) -> String? {
            used.insert(k)
            guard let v = table[k] else { return nil }
            guard let s = v.string else { throw ConfigError(key: key(k), reason: "must be a string, got \(v.type)") }
            return s
        }

        mutating func bool(_ k: String) throws(ConfigError) -> Bool? {
            used.insert(k)
            guard let v = table[k] else { return nil }
            guard let b = v.bool else { throw ConfigError(key: key(k), reason: "must be true or false, got \(v.type)") }
            return b
        }

        mutating func strings(_ k: String) throws(ConfigError) -> [String]? {
            used.insert(k)
            guard let v = table[k] else { return nil }
            guard let array = v.array else { throw ConfigError(key: key(k), reason: "must be an array of strings, got \(v.type)") }
            var result: [String] = []
            for element in array {
                guard let s = element.string else { throw ConfigError(key: key(k), reason: "must be an array of strings, got an element of type \(element.type)") }
                result.append(s)
            }
            return result
        }

        mutating func int(_ k: String) throws(ConfigError) -> Int? {
            used.insert(k)
            guard let v = table[k] else { return nil }
            guard let i = v.int else { throw ConfigError(key: key(k), reason: "must be an integer, got \(v.type)") }
            return i
        }

        mutating func double(_ k: String) throws(ConfigError) -> Double? {
            used.insert(k)
            guard let v = table[k] else { return nil }
            if let d = v.double { return d }
            if let i = v.int { return Double(i) }
            throw ConfigError(key: key(k), reason: "must be a number, got \(v.type)")
        }
    }
}
