import Foundation
import Inference
import Logging
import Messaging

/// The controller's side of the fleet CLI: the same MQTT layer as the nodes, reading their retained
/// `status`/`info`/`state`, sending `cmd/<name>` with a fresh `request_id`, and collecting each targeted
/// node's `result` until all have answered or the timeout passes.
public actor FleetController {
    /// Which nodes a command is for.
    public enum Target: Sendable, Equatable {
        case node(String)
        /// Every node that announces `status = online` (retained), via the group topic `<prefix>/all/cmd/…`.
        case all
    }

    /// What the fleet knows about one node from its retained topics.
    public struct NodeStatus: Sendable, Equatable {
        public var id: String
        public var online: Bool?
        public var info: InfoPayload?
        public var state: StatePayload?
    }

    /// One targeted node's answer (`result == nil`: none within the timeout).
    public struct Outcome: Sendable, Equatable {
        public var node: String
        public var result: CommandResult?
        public var ok: Bool { result?.ok == true }
    }

    public nonisolated let client: MQTTClient
    public nonisolated let prefix: String
    private var nodes: [String: NodeStatus] = [:]
    private var results: [String: [String: CommandResult]] = [:]
    /// How often each node has said `online` (each connect of the node, and each time this controller
    /// subscribes again after a reconnect): a change while a command waits for that node means it may
    /// have missed the command.
    private var onlineAnnouncements: [String: Int] = [:]
    private var collector: Task<Void, Never>?

    public init(settings: MQTTSettings, prefix: String = "deepinfant", logger: Logger = Logger(label: "deepinfant.fleet")) throws {
        client = try MQTTClient(settings: settings, logger: logger)
        // The prefix as every node spells it (`Topics` trims slashes), so the topics below match theirs.
        self.prefix = Topics(prefix: prefix, nodeID: Topics.groupNodeID).prefix
    }

    /// Connects and subscribes to every node's status, info, state and result.
    public func connect(timeout: Duration = .seconds(10)) async throws {
        let messages = client.messages
        collector = Task { [weak self] in
            for await message in messages { await self?.received(message) }
        }
        for leaf in ["status", "info", "state", "result"] { try client.subscribe("\(prefix)/+/\(leaf)", qos: .atLeastOnce) }
        client.start()
        try await client.waitUntilConnected(timeout: timeout)
    }

    public func disconnect() async {
        collector?.cancel()
        await client.stop()
    }

    /// The nodes seen so far, after giving retained messages `settle` to arrive.
    public func list(settle: Duration = .seconds(1)) async -> [NodeStatus] {
        try? await Task.sleep(for: settle)
        return nodes.values.sorted { $0.id < $1.id }
    }

    /// Sends `cmd/<command>` (the payload built for the request id) and waits for the targeted nodes.
    /// For ``Target/all`` the targets are the nodes online after `settle`, plus any other node that answers.
    public func send(_ command: String, payload: (String) throws -> [UInt8], to target: Target,
                     timeout: Duration = .seconds(30), settle: Duration = .seconds(1)) async throws -> [Outcome] {
        let requestID = UUID().uuidString.lowercased()
        var expected: Set<String>
        let topic: String
        switch target {
        case let .node(id):
            // A node sanitises its own id (`Topics`); address it, and expect its answer, under that id.
            let node = Topics(prefix: prefix, nodeID: id)
            expected = [node.nodeID]
            topic = node.command(command)
        case .all:
            expected = Set(await list(settle: settle).filter { $0.online == true }.map(\.id))
            topic = Topics(prefix: prefix, nodeID: Topics.groupNodeID).groupCommand(command)
        }
        let bytes = try payload(requestID)
        // Queued, not awaited: with the broker away libmosquitto keeps it and sends it after reconnecting.
        try client.enqueue(topic: topic, payload: bytes, qos: .atLeastOnce)
        var announcements = onlineAnnouncements
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let answered = Set(results[requestID, default: [:]].keys)
            if !expected.isEmpty, expected.isSubset(of: answered) { break }
            if expected.isEmpty, target == .all { break }
            // A silent node that announced itself again (it, or the broker, or this controller reconnected)
            // may have missed the command: it gets it again on its own topic, with the same request id, so a
            // node that did run it answers again without running it twice (ControlService).
            for id in expected.subtracting(answered) where onlineAnnouncements[id] != announcements[id] {
                announcements[id] = onlineAnnouncements[id]
                try? client.enqueue(topic: Topics(prefix: prefix, nodeID: id).command(command), payload: bytes, qos: .atLeastOnce)
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        let answers = results.removeValue(forKey: requestID) ?? [:]
        expected.formUnion(answers.keys)
        return expected.sorted().map { Outcome(node: $0, result: answers[$0]) }
    }

    /// The online nodes' ids (for commands sent node by node, like the paged feedback export).
    public func onlineNodes(settle: Duration = .seconds(1)) async -> [String] {
        await list(settle: settle).filter { $0.online == true }.map(\.id)
    }

    private func received(_ message: MQTTMessage) {
        let parts = message.topic.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let prefixParts = prefix.split(separator: "/").count
        guard parts.count == prefixParts + 2 else { return }
        let id = parts[prefixParts], leaf = parts[prefixParts + 1]
        guard id != Topics.groupNodeID else { return }
        switch leaf {
        case "result":
            guard let result = try? CommandResult.decode(message.payload), let requestID = result.requestID else { return }
            results[requestID, default: [:]][id] = result
        case "status":
            guard !message.payload.isEmpty else { nodes[id] = nil; return }
            nodes[id, default: NodeStatus(id: id)].online = message.text == "online"
            if message.text == "online" { onlineAnnouncements[id, default: 0] += 1 }
        case "info":
            nodes[id, default: NodeStatus(id: id)].info = try? PayloadJSON.decode(InfoPayload.self, from: message.payload)
        case "state":
            nodes[id, default: NodeStatus(id: id)].state = try? PayloadJSON.decode(StatePayload.self, from: message.payload)
        default:
            return
        }
    }
}
