import Foundation
import JSONLimits
import Inference
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

    /// Parses and validates a TOML document. The keys are read by `ConfigDocument` (the same reader remote
    /// config patches go through), so the file and `cmd/config` accept exactly the same keys.
    public static func parse(_ text: String) throws(ConfigError) -> AgentConfig {
        try TOMLPreflight.check(text)
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch let error as TOMLParseError {
            throw ConfigError(key: "(syntax)", reason: "line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)")
        } catch {
            throw ConfigError(key: "(syntax)", reason: "\(error)")
        }
        let document: JSONValue
        let json = table.convert(to: .json, options: [])
        guard !JSONNesting.tooDeep(json.utf8) else { throw ConfigError(key: "(syntax)", reason: "values nest deeper than \(JSONNesting.limit) levels") }
        do { document = try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8)) } catch {
            throw ConfigError(key: "(syntax)", reason: "unsupported TOML value: \(error)")
        }
        return try ConfigDocument.decode(document)
    }

    /// Secrets from the environment win over the file.
    public static func applyEnvironment(_ c: inout AgentConfig, environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let p = environment[passwordVariable], !p.isEmpty { c.mqtt.password = p }
    }
}
