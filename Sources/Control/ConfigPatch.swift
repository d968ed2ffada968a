import Agent
import Inference

/// What a validated `cmd/config` patch does: the new effective configuration, which keys changed, which of
/// them take effect only after a restart, and the override to persist.
public struct ConfigChange: Sendable, Equatable {
    /// The configuration in force once the change is applied (live part) or the node restarts (the rest).
    public var config: AgentConfig
    /// Dotted keys (`gate.cry_threshold`) whose value differs from before, sorted.
    public var changedKeys: [String]
    /// The subset of ``changedKeys`` that needs a restart (broker, topics, audio device, …).
    public var restartKeys: [String]
    /// The new `config.override.json`: the old override with this patch folded in (`null`s kept).
    public var override: JSONValue
}

/// Validation and planning of a configuration merge patch, before anything changes.
///
/// The patch is checked on its own first (it must be an object of known sections holding known keys, and
/// must not touch keys that stay local), then merged into the effective configuration and the result is
/// decoded and range-checked as a whole. Any failure throws a `ConfigError` naming the key, and the caller
/// changes nothing.
public enum ConfigPatch {
    /// Keys that cannot be changed over MQTT, with why. Trusted keys would let whoever can publish on
    /// `cmd/config` sign their own models; model paths would bypass the signature check (use `cmd/model`);
    /// the state directory holds the override file itself.
    public static let localOnly: [(prefix: String, why: String)] = [
        ("control", "trusted keys can only be changed in the config file on the node"),
        ("model", "models are changed with cmd/model (signed) or in the config file on the node"),
        ("node.state_dir", "the state directory holds the override itself; change it in the config file"),
        ("feedback.keep_audio", "keeping audio is the owner's choice, made in the config file on the node"),
    ]

    /// Keys of live sections that still need a restart.
    public static let restartOnlyKeys: Set<String> = ["gate.detector"]

    /// Sections applied to the running pipeline without a restart.
    public static let liveSections: Set<String> = ["gate"]

    /// Every section and key a patch may name (those of the TOML file).
    public static let knownKeys: [String: Set<String>] = {
        var full = AgentConfig()
        full.node.id = "x"; full.audio.input = "x"; full.mqtt.username = "x"; full.mqtt.password = "x"
        full.mqtt.caFile = "x"; full.gate.cryThreshold = 0.5; full.mqtt.certFile = "x"; full.mqtt.keyFile = "x"; full.model.path = "x"; full.model.cryPath = "x"
        full.model.cryHeadPath = "x"; full.model.yamnetPath = "x"
        guard case let .object(sections) = ConfigDocument.encode(full) else { return [:] }
        var result: [String: Set<String>] = [:]
        for (name, section) in sections {
            if case let .object(keys) = section { result[name] = Set(keys.keys) }
        }
        return result
    }()

    /// Plans `patch` against the effective configuration `current` and the persisted `override`.
    public static func plan(patch: JSONValue, current: AgentConfig, override: JSONValue) throws(ConfigError) -> ConfigChange {
        guard case let .object(sections) = patch else {
            throw ConfigError(key: "(root)", reason: "a config patch must be a JSON object, got \(ConfigDocument.kind(patch))")
        }
        for name in sections.keys.sorted() {
            let value = sections[name]!
            guard let keys = knownKeys[name] else { throw ConfigError(key: name, reason: "unknown key") }
            try checkLocal(name)
            switch value {
            case .null:
                break
            case let .object(members):
                for key in members.keys.sorted() {
                    guard keys.contains(key) else { throw ConfigError(key: "\(name).\(key)", reason: "unknown key") }
                    try checkLocal("\(name).\(key)")
                }
            default:
                throw ConfigError(key: name, reason: "must be an object, got \(ConfigDocument.kind(value))")
            }
        }
        let before = ConfigDocument.encode(current)
        let config = try ConfigDocument.decode(MergePatch.apply(patch, to: before))
        let old = flatten(before), new = flatten(ConfigDocument.encode(config))
        let changed = Set(old.keys).union(new.keys).filter { old[$0] != new[$0] }.sorted()
        // Switching the detector kind rebuilds stage 2 (other models, other memory): at the next start.
        let restart = changed.filter { !liveSections.contains(String($0.prefix { $0 != "." })) || restartOnlyKeys.contains($0) }
        return ConfigChange(config: config, changedKeys: changed, restartKeys: restart,
                            override: MergePatch.compose(override, patch))
    }

    static func checkLocal(_ key: String) throws(ConfigError) {
        for rule in localOnly where key == rule.prefix || key.hasPrefix(rule.prefix + ".") {
            throw ConfigError(key: key, reason: "cannot be changed remotely: \(rule.why)")
        }
    }

    /// `section.key` → value.
    static func flatten(_ document: JSONValue) -> [String: JSONValue] {
        guard case let .object(sections) = document else { return [:] }
        var result: [String: JSONValue] = [:]
        for (name, section) in sections {
            guard case let .object(keys) = section else { continue }
            for (key, value) in keys { result["\(name).\(key)"] = value }
        }
        return result
    }
}
