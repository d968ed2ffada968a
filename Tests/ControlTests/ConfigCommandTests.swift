import Agent
import Control
import Foundation
import Gate
import Inference
import Messaging
import Testing

/// Every test here runs a real node (agent + control service) against a real mosquitto, one at a time.
@Suite(.serialized)
struct NodeTests {}

extension NodeTests {
    @Test("cmd/config: live gate change, query, restart-only change, persistence, deletion by null")
    func configRoundTrip() async throws {
        let node = try await TestNode()
        let recorder = try await Recorder(node.broker, filters: ["deepinfant/nursery/config"])
        let infos = try await Recorder(node.broker, filters: ["deepinfant/nursery/info"])
        let hashBefore = ConfigHash.of(node.config)

        let r1 = try await node.send("config", json: #"{"gate": {"cry_threshold": 0.7, "hangover_s": 6}}"#)
        #expect(r1.ok, "\(r1)")
        #expect(r1.requestID != nil)
        #expect(r1.changed == ["gate.cry_threshold", "gate.hangover_s"])
        #expect(r1.restartRequired == false)
        #expect(r1.configHash != hashBefore)
        #expect(node.agent.control.gateSettings?.cryThreshold == 0.7)
        #expect(node.agent.control.gateSettings?.hangoverSeconds == 6)
        // The retained echo Home Assistant's number entity reads.
        try await recorder.wait("config echo 0.7") { msgs in
            msgs.last.flatMap { try? PayloadJSON.decode(ConfigStatePayload.self, from: $0.payload) }?.gate.threshold == 0.7
        }
        // The retained info shows the configuration in force, not the start-up one.
        try await infos.wait("info with the new config hash") { msgs in
            msgs.last.flatMap { try? PayloadJSON.decode(InfoPayload.self, from: $0.payload) }?.configHash == r1.configHash
        }

        let query = try await node.send("config", json: "{}")
        #expect(query.ok)
        guard case let .object(doc)? = query.config, case let .object(gate)? = doc["gate"], case let .object(mqtt)? = doc["mqtt"] else {
            Issue.record("no config in \(query)"); return
        }
        #expect(gate["cry_threshold"] == .number(0.7))
        #expect(mqtt["password"] == .string(ConfigDocument.redacted))
        #expect(query.configHash == r1.configHash)

        let r2 = try await node.send("config", json: #"{"mqtt": {"keepalive": 60}, "log": {"level": "debug"}}"#)
        #expect(r2.ok)
        #expect(r2.restartRequired == true)
        #expect(r2.restartKeys == ["log.level", "mqtt.keepalive"])
        #expect(node.agent.control.gateSettings?.cryThreshold == 0.7)

        // A restart: the TOML (here: the original config) plus the override file.
        var restarted = try ConfigOverride.apply(to: node.config)
        #expect(restarted.gate.cryThreshold == 0.7 && restarted.gate.hangoverSeconds == 6)
        #expect(restarted.mqtt.keepalive == 60 && restarted.log.level == "debug")
        #expect(restarted.mqtt.password == "hunter2")

        // null deletes: the threshold goes back to the cry model's recommendation, also after a restart.
        let r3 = try await node.send("config", json: #"{"gate": {"cry_threshold": null}}"#)
        #expect(r3.ok && r3.changed == ["gate.cry_threshold"])
        #expect(node.agent.control.gateSettings?.cryThreshold == nil)
        restarted = try ConfigOverride.apply(to: { var c = node.config; c.gate.cryThreshold = 0.3; return c }())
        #expect(restarted.gate.cryThreshold == nil)
        let mode = try FileManager.default.attributesOfItem(atPath: ConfigOverride.path(stateDir: node.config.node.stateDir))[.posixPermissions] as? Int
        #expect(mode == 0o600)
        await recorder.stop()
        await infos.stop()
        try await node.stop()
    }

    static let badPatches: [(String, String, String)] = [
        (#"{"gate": {"cry_threshold": 1.5}}"#, "invalid_config", "gate.cry_threshold"),
        (#"{"gate": {"cry_threshold": "high"}}"#, "invalid_config", "gate.cry_threshold"),
        (#"{"gate": {"min_cry_windows": 2.5}}"#, "invalid_config", "gate.min_cry_windows"),
        (#"{"gate": {"min_cry_windows": 0}}"#, "invalid_config", "gate.min_cry_windows"),
        (#"{"gate": {"cry_threshold": 0.6, "bogus": 1}}"#, "invalid_config", "gate.bogus"),
        (#"{"gate": {"bogus": null}}"#, "invalid_config", "gate.bogus"),
        (#"{"bogus": {}}"#, "invalid_config", "bogus"),
        (#"{"gate": 0.6}"#, "invalid_config", "gate"),
        (#"{"log": {"level": "loud"}}"#, "invalid_config", "log.level"),
        (#"{"mqtt": {"broker": "http://x"}}"#, "invalid_config", "mqtt.broker"),
        (#"{"audio": {"chunk_samples": 5}}"#, "invalid_config", "audio.chunk_samples"),
        (#"{"mqtt": {"discovery": "yes"}}"#, "invalid_config", "mqtt.discovery"),
        (#"{"control": {"trusted_keys": ["/tmp/evil.pub"]}}"#, "invalid_config", "control"),
        (#"{"model": {"path": "/tmp/x.safetensors"}}"#, "invalid_config", "model"),
        (#"{"node": {"state_dir": "/tmp"}}"#, "invalid_config", "node.state_dir"),
        (#"[1, 2]"#, "invalid_config", "(root)"),
        (#"{"gate": {"cry_threshold": 0.6}"#, "malformed_json", "(root)"),
        ("", "malformed_json", "(root)"),
        // deploy/fuzz.sh: 513 nested arrays stopped the process inside Foundation's JSON scanner.
        (String(repeating: "[", count: 513), "malformed_json", "(root)"),
        (String(repeating: "{\"a\":", count: 100) + "1" + String(repeating: "}", count: 100), "malformed_json", "(root)"),
        (#"{"request_id": 5, "gate": {}}"#, "invalid_config", "request_id"),
    ]

    /// A fleet of nodes on ALSA `null` was `online` for a while before each pipeline ran, and every
    /// `fleet config --all` in that window was refused `not_running`.
    @Test("cmd/config before the pipeline runs is accepted, persisted and applied when it starts")
    func configBeforeThePipeline() async throws {
        let node = try await TestNode(startPipeline: false)
        // Online (connected, answering commands) before the audio pipeline exists, as a node is while its
        // capture device opens.
        let publisher = try node.agent.publisher()
        try await publisher.start()
        let deadline = ContinuousClock.now + .seconds(10)
        while await !publisher.isConnected, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!node.agent.control.isRunning)
        let r = try await node.send("config", json: #"{"gate": {"cry_threshold": 0.8, "hangover_s": 7}}"#)
        #expect(r.ok, "\(r)")
        #expect(r.changed == ["gate.cry_threshold", "gate.hangover_s"])
        #expect(node.agent.control.gateSettings?.cryThreshold == 0.8)
        // A bad value is still refused, naming the key, before the pipeline as after.
        let bad = try await node.send("config", json: #"{"gate": {"hangover_s": -1}}"#)
        #expect(!bad.ok && bad.key == "gate.hangover_s", "\(bad)")
        try await node.startPipeline()
        let settings = try #require(node.agent.control.withGateForTesting { $0.settings })
        #expect(settings.cryThreshold == 0.8 && settings.hangoverSeconds == 7)
        #expect(node.agent.control.withGateForTesting { $0.cryThreshold } == 0.8)
    }

    @Test("cmd/config rejections name the key and change nothing")
    func configRejected() async throws {
        let node = try await TestNode()
        _ = try await node.send("config", json: #"{"gate": {"cry_threshold": 0.65}}"#)
        let before = await node.snapshot()
        #expect(before.override != nil)
        for (payload, code, key) in Self.badPatches {
            // The subscriber's code path (the fuzz test also sends such payloads over the broker).
            let r = await node.control.process(NodeCommand(name: "config", payload: Array(payload.utf8), group: false,
                                                           topic: "deepinfant/nursery/cmd/config"))
            #expect(!r.ok, "\(payload)")
            #expect(r.error == code, "\(payload): \(r)")
            #expect(r.key == key, "\(payload): \(r)")
            #expect(await node.snapshot() == before, "\(payload)")
        }
        // Over the broker with a request id, for the ones that are objects.
        let r = try await node.send("config", json: #"{"gate": {"cry_threshold": 1.5}}"#)
        #expect(!r.ok && r.key == "gate.cry_threshold" && r.error == "invalid_config")
        #expect(await node.snapshot() == before)
        try await node.stop()
    }

    @Test("cmd/ping answers with uptime and versions; cmd/selftest runs both models' self-tests")
    func pingAndSelftest() async throws {
        let node = try await TestNode()
        let ping = try await node.send("ping", json: "{}")
        #expect(ping.ok && ping.message == "pong")
        #expect(ping.softwareVersion == AgentInfo.softwareVersion)
        #expect(ping.model?.version == "0.0.0-test")
        #expect(ping.pipelineRunning == true)
        #expect((ping.uptimeS ?? -1) >= 0)
        // An empty payload is a ping too (it cannot carry a request id, so straight to the handler).
        let empty = await node.control.handle(NodeCommand(name: "ping", payload: [], group: false, topic: "deepinfant/nursery/cmd/ping"))
        #expect(empty.ok && empty.requestID == nil)
        let st = try await node.send("selftest", json: "{}")
        #expect(st.ok)
        #expect(st.selftest?.count == 2 && st.selftest?.allSatisfy { $0.passed } == true)
        let unknown = try await node.send("reboot", json: "{}")
        #expect(!unknown.ok && unknown.error == "unknown_command")
        try await node.stop()
    }

    @Test("fleet: list shows the node online with its model; --all reaches it through the group topic")
    func fleetListAndAll() async throws {
        let node = try await TestNode(id: "crib-2")
        let nodes = await node.fleet.list(settle: .milliseconds(500))
        let me = try #require(nodes.first { $0.id == "crib-2" })
        #expect(me.online == true)
        #expect(me.info?.model.version == "0.0.0-test")
        #expect(me.state?.crying == false)
        let outcomes = try await node.fleet.send("config", payload: { id in Array(#"{"request_id":"\#(id)","gate":{"hangover_s":3}}"#.utf8) },
                                                 to: .all, settle: .milliseconds(300))
        #expect(outcomes.map(\.node) == ["crib-2"])
        #expect(outcomes.allSatisfy { $0.ok })
        #expect(node.agent.control.gateSettings?.hangoverSeconds == 3)
        // Ids are addressed as the node spells its own (sanitised, lower case), as `ha remove` does.
        let byRawID = try await node.fleet.send("ping", payload: { id in Array(#"{"request_id":"\#(id)"}"#.utf8) },
                                                to: .node("Crib-2"), timeout: .seconds(5))
        #expect(byRawID.map(\.node) == ["crib-2"] && byRawID.allSatisfy { $0.ok }, "\(byRawID)")
        // A node that does not exist never answers: reported as a timeout (no result).
        let silent = try await node.fleet.send("ping", payload: { _ in [] }, to: .node("ghost"), timeout: .milliseconds(500))
        #expect(silent.count == 1 && silent[0].result == nil && !silent[0].ok)
        try await node.stop()
    }
}
