import Foundation

/// Every MQTT topic the node uses, computed from the prefix and node id so that no other code assembles topic
/// strings by hand. The contract is documented in docs/mqtt.md.
public struct Topics: Sendable, Equatable {
    /// First topic level of everything the node publishes (default `deepinfant`).
    public let prefix: String
    /// This node's id: `[a-z0-9_-]`, also the MQTT client id and part of Home Assistant unique ids.
    public let nodeID: String
    /// Home Assistant's discovery prefix (default `homeassistant`).
    public let discoveryPrefix: String

    /// The node id that addresses every node at once in command topics; no node may be called this.
    public static let groupNodeID = "all"

    public init(prefix: String = "deepinfant", nodeID: String, discoveryPrefix: String = "homeassistant") {
        self.prefix = Self.trimSlashes(prefix.isEmpty ? "deepinfant" : prefix)
        self.nodeID = Self.sanitizeNodeID(nodeID)
        self.discoveryPrefix = Self.trimSlashes(discoveryPrefix.isEmpty ? "homeassistant" : discoveryPrefix)
    }

    public var base: String { "\(prefix)/\(nodeID)" }
    /// Retained `online` / `offline`; the Last Will sets `offline`.
    public var status: String { "\(base)/status" }
    /// Retained JSON ``InfoPayload``.
    public var info: String { "\(base)/info" }
    /// QoS 1, not retained: ``CryEventPayload``.
    public var event: String { "\(base)/event" }
    /// Retained JSON ``StatePayload``.
    public var state: String { "\(base)/state" }
    /// QoS 0, not retained: ``LevelPayload`` every N seconds.
    public var level: String { "\(base)/level" }
    /// Retained health counters (windows, gate open ratio, latency, outbox, reconnects, xruns, RSS).
    public var diagnostics: String { "\(base)/diagnostics" }
    /// Results of commands: ``ResultPayload``.
    public var result: String { "\(base)/result" }
    /// Retained JSON of the remotely settable configuration (``ConfigStatePayload``), echoed by the node so that
    /// Home Assistant `number` entities show the value in force.
    public var configState: String { "\(base)/config" }
    /// Retained JSON ``FeedbackStatePayload``: the latest episode and the caregivers' answer for it.
    public var feedback: String { "\(base)/feedback" }
    /// Commands addressed to this node: `<prefix>/<node>/cmd/<name>`.
    public func command(_ name: String) -> String { "\(base)/cmd/\(name)" }
    /// Commands addressed to every node: `<prefix>/all/cmd/<name>`.
    public func groupCommand(_ name: String) -> String { "\(prefix)/\(Self.groupNodeID)/cmd/\(name)" }
    /// Subscription filters for both.
    public var commandFilter: String { "\(base)/cmd/+" }
    public var groupCommandFilter: String { "\(prefix)/\(Self.groupNodeID)/cmd/+" }
    /// Home Assistant's birth/will topic: `online` means "send discovery again".
    public var homeAssistantStatus: String { "\(discoveryPrefix)/status" }

    /// `<discovery prefix>/<component>/<node>/<object>/config`.
    public func discoveryConfig(component: String, objectID: String) -> String {
        "\(discoveryPrefix)/\(component)/\(nodeID)/\(objectID)/config"
    }

    /// The command name when `topic` is one of this node's (or the group's) command topics.
    public func commandName(in topic: String) -> (name: String, group: Bool)? {
        for (filterBase, group) in [("\(base)/cmd/", false), ("\(prefix)/\(Self.groupNodeID)/cmd/", true)] {
            if topic.hasPrefix(filterBase) {
                let name = String(topic.dropFirst(filterBase.count))
                if !name.isEmpty, !name.contains("/") { return (name, group) }
            }
        }
        return nil
    }

    /// Lower-cases and replaces everything outside `[a-z0-9_-]` with `_`, so the id is safe as a topic level,
    /// a client id and a Home Assistant object id. Empty input becomes `node`; `all` (the group id) becomes
    /// `all-node`; at most 64 characters.
    public static func sanitizeNodeID(_ raw: String) -> String {
        var result = ""
        for scalar in raw.lowercased().unicodeScalars {
            switch scalar {
            case "a"..."z", "0"..."9", "_", "-": result.unicodeScalars.append(scalar)
            default: result.append("_")
            }
        }
        result = String(result.prefix(64))
        if result.isEmpty || result.allSatisfy({ $0 == "_" }) { return "node" }
        if result == groupNodeID { return "all-node" }
        return result
    }

    /// The default node id: this machine's hostname, sanitised.
    public static func defaultNodeID() -> String {
        sanitizeNodeID(ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "")
    }

    private static func trimSlashes(_ text: String) -> String {
        var text = Substring(text)
        while text.hasPrefix("/") { text = text.dropFirst() }
        while text.hasSuffix("/") { text = text.dropLast() }
        return String(text)
    }
}
