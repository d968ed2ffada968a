import Agent
import Foundation
import Inference

/// `<state_dir>/config.override.json`: the configuration changes received over MQTT, as one merge patch
/// applied on top of the TOML file at start (`run` does this before environment and command-line
/// overrides, so an explicit option still wins). Written atomically, mode 0600 (it may hold a password).
public enum ConfigOverride {
    public static let fileName = "config.override.json"

    public static func path(stateDir: String) -> String { stateDir + "/" + fileName }

    /// The persisted patch, `{}` when there is none.
    public static func load(stateDir: String) throws(ConfigError) -> JSONValue {
        let p = path(stateDir: stateDir)
        guard FileManager.default.fileExists(atPath: p) else { return .object([:]) }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: p))
            let value = try JSONDecoder().decode(JSONValue.self, from: data)
            guard case .object = value else { throw ConfigError(key: "(override)", reason: "\(p) is not a JSON object") }
            return value
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError(key: "(override)", reason: "cannot read \(p): \(error)")
        }
    }

    public static func save(_ override: JSONValue, stateDir: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try AtomicFile.write(Array(try encoder.encode(override)) + [0x0A], to: path(stateDir: stateDir), mode: 0o600)
    }

    /// `config` with the override in `config.node.state_dir` applied, validated; errors name the key and say
    /// it came from the override file.
    public static func apply(to config: AgentConfig) throws(ConfigError) -> AgentConfig {
        let override = try load(stateDir: config.node.stateDir)
        if override == .object([:]) { return config }
        do {
            return try ConfigDocument.decode(MergePatch.apply(override, to: ConfigDocument.encode(config)))
        } catch {
            throw ConfigError(key: error.key, reason: "\(error.reason) (in \(path(stateDir: config.node.stateDir)))")
        }
    }
}
