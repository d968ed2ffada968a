import Control
import Foundation
import Messaging
import Testing

extension NodeTests {
    /// A site broker bridged into a central one under a prefix (docs/fleet.md): the node talks to broker A
    /// only; the fleet owner and Home Assistant see it on broker B.
    @Test("the topic contract across a mosquitto bridge: node on broker A, fleet on broker B under site1/")
    func acrossABridge() async throws {
        let node = try await TestNode()
        let central = try Broker(extra: """
            connection site1
            address 127.0.0.1:\(node.broker.port)
            cleansession true
            restart_timeout 1
            topic deepinfant/# both 1 site1/ ""
            topic homeassistant/# both 1

            """)
        let discovery = try await Recorder(central, filters: ["homeassistant/#"])
        let fleet = try FleetController(settings: central.settings("fleet-central"), prefix: "site1/deepinfant")
        try await fleet.connect()
        // The node's retained status and info cross the bridge (the bridge subscribes to A once connected).
        var seen: FleetController.NodeStatus?
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            seen = await fleet.list(settle: .milliseconds(200)).first { $0.id == node.id }
            if seen?.online == true, seen?.info != nil { break }
        }
        #expect(seen?.online == true && seen?.info?.model.name == "test-tiny", "\(String(describing: seen))")
        // Commands go the other way: a config change and a ping, each answered through the bridge.
        let config = try await fleet.send("config", payload: { id in Array(#"{"gate":{"hangover_s":6},"request_id":"\#(id)"}"#.utf8) },
                                          to: .node(node.id), timeout: .seconds(10))
        #expect(config.first?.ok == true, "\(config)")
        #expect(node.agent.control.gateSettings?.hangoverSeconds == 6)
        let all = try await fleet.send("ping", payload: { id in Array(#"{"request_id":"\#(id)"}"#.utf8) }, to: .all, timeout: .seconds(10))
        #expect(all.map(\.node) == [node.id] && all.allSatisfy(\.ok), "\(all)")
        // Home Assistant's side: the discovery configs arrive on B (unprefixed; docs/fleet.md says why).
        try await discovery.wait(timeout: .seconds(10), "discovery on the central broker") { m in
            m.contains { $0.topic.hasPrefix("homeassistant/") && $0.topic.contains(node.id) }
        }
        await discovery.stop()
        await fleet.disconnect()
        try await node.stop()
    }
}
