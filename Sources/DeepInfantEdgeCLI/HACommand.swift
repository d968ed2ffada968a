import ArgumentParser
import Agent
import Foundation
import Messaging

/// `ha`: Home Assistant integration chores that are not part of the running agent.
struct HACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ha",
        abstract: "Home Assistant MQTT discovery tools.",
        subcommands: [HARemoveCommand.self]
    )
}

/// `ha remove`: decommissions a node in Home Assistant by clearing its retained discovery configs (HA deletes
/// the entities and the device) and, unless told otherwise, its retained status/info/state/config topics so
/// that no stale node lingers on the broker.
struct HARemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove a node's Home Assistant entities (empty retained discovery configs).",
        discussion: """
        Run it after the node is switched off for good: a running node re-announces itself on every \
        reconnect. Example: deepinfant-edge ha remove --broker mqtt://192.168.1.10:1883 --node-id nursery
        """
    )

    @OptionGroup var brokerOptions: BrokerOptions
    @Option(name: .customLong("node-id"), help: "The node to remove (sanitised like the agent does).") var nodeID: String
    @Option(help: "Topic prefix of the node.") var prefix = "deepinfant"
    @Option(name: .customLong("discovery-prefix"), help: "Home Assistant discovery prefix.") var discoveryPrefix = "homeassistant"
    @Flag(name: .customLong("keep-node-topics"), help: "Only remove the discovery configs; keep status/info/state/config/diagnostics.")
    var keepNodeTopics = false
    @Option(help: "Seconds to wait for the broker.") var timeout: Double = 10

    func run() async throws {
        let settings = try brokerOptions.settings(clientIDPrefix: "deepinfant-ha-remove",
                                                  backoff: MQTTBackoff(initial: .milliseconds(500), cap: .seconds(2)))
        let topics = Topics(prefix: prefix, nodeID: nodeID, discoveryPrefix: discoveryPrefix)
        if topics.nodeID != nodeID { print("node id \"\(nodeID)\" is \"\(topics.nodeID)\" once sanitised") }
        let discovery = HomeAssistantDiscovery(topics: topics, labels: [], modelVersion: "", softwareVersion: BuildInfo.version)
        var targets = discovery.removals().map(\.topic)
        if !keepNodeTopics { targets += [topics.status, topics.info, topics.state, topics.configState, topics.diagnostics] }

        let client = try MQTTClient(settings: settings)
        client.start()
        do {
            try await client.waitUntilConnected(timeout: .seconds(timeout))
            for topic in targets {
                // QoS 1 and waiting for each PUBACK: when this returns, the broker has dropped the retained copy.
                try await client.publish(topic: topic, payload: [], qos: .atLeastOnce, retain: true)
            }
        } catch {
            let state = client.state
            await client.stop()
            throw CLIError(message: "cannot clear \(topics.nodeID) on \(brokerOptions.broker): \(error) (\(state))")
        }
        await client.stop()
        print("removed \(discovery.removals().count) Home Assistant discovery configs of \(topics.nodeID)"
              + (keepNodeTopics ? "" : " and its retained status/info/state/config/diagnostics"))
    }
}
