import Agent
import Control
import Crypto
import Foundation
import JSONLimits
import Inference
import Messaging
import Testing

extension NodeTests {
    @Test("cmd/model installs, stores and swaps a signed model; rollback goes back and forth; downgrade needs force")
    func modelRoundTrip() async throws {
        let node = try await TestNode()
        let recorder = try await Recorder(node.broker, filters: ["deepinfant/nursery/info"])
        let v1 = Fixtures.reason(version: "1.0.0"), v11 = Fixtures.reason(version: "1.1.0")

        let r1 = try await node.send("model", try node.envelope(v1).encoded())
        #expect(r1.ok, "\(r1)")
        #expect(r1.model?.version == "1.0.0" && r1.previousModel?.version == "0.0.0-test")
        #expect(node.agent.control.reasonModel?.metadata.version == "1.0.0")
        let store = ModelStore(stateDir: node.config.node.stateDir)
        #expect(try store.state().current?.version == "1.0.0")
        #expect(try store.state().previous == nil)
        #expect(FileManager.default.fileExists(atPath: store.path(of: try #require(try store.state().current))))
        // info (retained) carries the installed version and the latest announced one: the HA update entity.
        try await recorder.wait("info with 1.0.0") { msgs in
            msgs.contains { (try? PayloadJSON.decode(InfoPayload.self, from: $0.payload))?.model.version == "1.0.0" }
        }

        let r2 = try await node.send("model", try node.envelope(v11).encoded())
        #expect(r2.ok && node.agent.control.reasonModel?.metadata.version == "1.1.0")
        #expect(try store.state().previous?.version == "1.0.0")

        let back = try await node.send("rollback", json: "{}")
        #expect(back.ok, "\(back)")
        #expect(node.agent.control.reasonModel?.metadata.version == "1.0.0")
        let afterBack = try store.state()
        #expect(afterBack.current?.version == "1.0.0" && afterBack.previous?.version == "1.1.0")
        let forth = try await node.send("rollback", json: "{}")
        #expect(forth.ok && node.agent.control.reasonModel?.metadata.version == "1.1.0")

        // Same version again: allowed. Lower: refused unless forced.
        let same = try await node.send("model", try node.envelope(v11).encoded())
        #expect(same.ok, "\(same)")
        let v09 = Fixtures.reason(version: "0.9.0")
        let low = try await node.send("model", try node.envelope(v09).encoded())
        #expect(!low.ok && low.error == "downgrade", "\(low)")
        #expect(node.agent.control.reasonModel?.metadata.version == "1.1.0")
        var forced = try node.envelope(v09)
        forced.force = true
        let ok = try await node.send("model", try forced.encoded())
        #expect(ok.ok && node.agent.control.reasonModel?.metadata.version == "0.9.0")

        // HA's update entity: installed 0.9.0, latest announced 1.1.0.
        try await recorder.wait("info: installed 0.9.0, latest 1.1.0") { msgs in
            guard let info = msgs.last.flatMap({ try? PayloadJSON.decode(InfoPayload.self, from: $0.payload) }) else { return false }
            return info.model.version == "0.9.0" && info.model.latestVersion == "1.1.0"
        }
        // A restart starts with the installed model.
        let startup = ControlService.startupModel(stateDir: node.config.node.stateDir, configured: TestNode.reasonModel,
                                                  logger: .init(label: "test"))
        #expect(startup.metadata.version == "0.9.0")
        // Rolling back all the way reaches the configured model, and the store says "nothing installed".
        _ = try await node.send("rollback", json: "{}")  // → 1.1.0
        #expect(node.agent.control.reasonModel?.metadata.version == "1.1.0")
        await recorder.stop()
        try await node.stop()
    }

    @Test("rollback with nothing installed is refused; after one install it returns to the configured model")
    func rollbackToBaseline() async throws {
        let node = try await TestNode()
        let none = try await node.send("rollback", json: "{}")
        #expect(!none.ok && none.error == "nothing_to_roll_back")
        _ = try await node.send("model", try node.envelope(Fixtures.reason(version: "2.0.0")).encoded())
        let back = try await node.send("rollback", json: "{}")
        #expect(back.ok && node.agent.control.reasonModel?.metadata.version == "0.0.0-test")
        #expect(node.agent.control.reasonModel?.source == TestNode.reasonModel.source)
        let store = ModelStore(stateDir: node.config.node.stateDir)
        let state = try store.state()
        #expect(state.current == nil && state.previous?.version == "2.0.0")
        let again = try await node.send("rollback", json: "{}")
        #expect(again.ok && node.agent.control.reasonModel?.metadata.version == "2.0.0")
        try await node.stop()
    }

    /// Every rejection of the issue, each with its specific reason; the old model keeps running.
    @Test("cmd/model rejections: specific reason, old model still running, store untouched")
    func modelRejected() async throws {
        let node = try await TestNode()
        let good = Fixtures.reason(version: "1.0.0")
        _ = try await node.send("model", try node.envelope(good).encoded())
        let before = await node.snapshot()
        #expect(before.modelVersion == "1.0.0")

        let otherKeys = node.broker.directory.appendingPathComponent("other")
        try FileManager.default.createDirectory(at: otherKeys, withIntermediateDirectories: true)
        _ = try SigningKeys.generate(directory: otherKeys.path)
        let newer = Fixtures.reason(version: "1.2.0")

        var cases: [(String, [UInt8], String)] = []
        func add(_ what: String, _ payload: [UInt8], _ code: String) { cases.append((what, payload, code)) }
        func env(_ edit: (inout ModelEnvelope) -> Void) throws -> [UInt8] {
            var e = try node.envelope(newer)
            edit(&e)
            return try e.encoded()
        }
        add("no signature", Array(try JSONSerialization.data(withJSONObject: {
            var o = try JSONSerialization.jsonObject(with: Data(try node.envelope(newer).encoded())) as! [String: Any]
            o["signature"] = nil
            return o
        }())), "invalid_envelope")
        add("invalid signature", try env { e in
            var sig = [UInt8](Data(base64Encoded: e.signature)!)
            sig[10] ^= 0x01
            e.signature = Data(sig).base64EncodedString()
        }, "invalid_signature")
        add("signature of another version", try env { e in e.version = "1.3.0" }, "invalid_signature")
        add("unknown key", try node.envelope(newer, key: otherKeys.appendingPathComponent("signing.key").path).encoded(), "unknown_key")
        add("hash mismatch", try env { e in
            var bytes = [UInt8](Data(base64Encoded: e.model!)!)
            bytes[bytes.count - 1] ^= 0x01
            e.model = Data(bytes).base64EncodedString()
        }, "hash_mismatch")
        add("truncated", try env { e in
            e.model = Data([UInt8](Data(base64Encoded: e.model!)!).dropLast(1000)).base64EncodedString()
        }, "truncated")
        add("truncated JSON", Array(try node.envelope(newer).encoded().dropLast(5000)), "malformed_json")
        add("oversized payload", [UInt8](repeating: 0x20, count: ModelEnvelope.maxEnvelopeBytes + 1), "oversized")
        add("oversized declared size", try env { e in e.size = ModelEnvelope.maxModelBytes + 1 }, "oversized")
        add("malformed JSON", Array("{\"format\": \"deepinfant-model-envelope\", ".utf8), "malformed_json")
        add("not JSON at all", Array("\u{00}\u{01}binary".utf8), "malformed_json")
        add("513 nested arrays (stopped Foundation's scanner)", Array(String(repeating: "[", count: 513).utf8), "malformed_json")
        add("corrupt safetensors", try node.envelope(Fixtures.corrupt(newer), version: "1.2.0").encoded(), "corrupt_model")
        add("wrong shapes", try node.envelope(Fixtures.withWrongShape(newer)).encoded(), "wrong_shapes")
        add("NaN weights", try node.envelope(Fixtures.withNaN(newer)).encoded(), "non_finite_weights")
        add("self-test mismatch", try node.envelope(Fixtures.withWrongSelfTest(newer)).encoded(), "selftest_failed")
        add("lower version", try node.envelope(Fixtures.reason(version: "0.5.0")).encoded(), "downgrade")
        add("version differs from the model's", try node.envelope(newer, version: "1.5.0").encoded(), "version_mismatch")
        add("a cry head on a crnn node", try node.envelope(Fixtures.head(version: "3.0.0")).encoded(), "wrong_detector")
        add("incompatible front end", try node.envelope(Fixtures.withMetadata(newer) { doc in
            var f = doc["features"] as! [String: Any]
            f["fmax"] = 7000.0
            doc["features"] = f
        }).encoded(), "incompatible_features")

        for (what, payload, code) in cases {
            let isObject: Bool
            // Measured first: the test's own decode would stop the process on deep nesting, as the node's did.
            if !JSONNesting.tooDeep(payload), case .object? = try? JSONDecoder().decode(JSONValue.self, from: Data(payload)) {
                isObject = true
            } else { isObject = false }
            // Objects travel over the broker with a request id; the rest cannot carry one, so they take the
            // subscriber's code path directly (`handle` also publishes the answer).
            let r = isObject ? try await node.send("model", payload)
                : await node.control.handle(NodeCommand(name: "model", payload: payload, group: false, topic: "deepinfant/nursery/cmd/model"))
            #expect(!r.ok, "\(what)")
            #expect(r.error == code, "\(what): \(r.error ?? "-") \(r.message ?? "")")
            #expect(await node.snapshot() == before, "\(what)")
        }
        // The node still works: a valid update goes through afterwards.
        let fine = try await node.send("model", try node.envelope(newer).encoded())
        #expect(fine.ok && node.agent.control.reasonModel?.metadata.version == "1.2.0")
        try await node.stop()
    }

    @Test("a node that trusts no key refuses every model")
    func noTrustedKeys() async throws {
        let node = try await TestNode(trust: false)
        let r = try await node.send("model", try node.envelope(Fixtures.reason(version: "1.0.0")).encoded())
        #expect(!r.ok && r.error == "no_trusted_keys")
        #expect(node.agent.control.reasonModel?.metadata.version == "0.0.0-test")
        try await node.stop()
    }
}

extension NodeTests {
    @Test("a model with other labels re-sends discovery, so Home Assistant's cry event knows the new reasons")
    func discoveryFollowsLabels() async throws {
        let node = try await TestNode()
        let recorder = try await Recorder(node.broker, filters: ["homeassistant/event/nursery/cry/config"])
        func eventTypes(_ msgs: [MQTTMessage]) -> [String]? {
            guard let last = msgs.last, let object = try? JSONSerialization.jsonObject(with: Data(last.payload)) as? [String: Any]
            else { return nil }
            return object["event_types"] as? [String]
        }
        let before = TestNode.reasonModel.labels
        try await recorder.wait("discovery with the configured labels") { eventTypes($0) == before + ["unknown"] }
        let renamed = before.map { $0 == before[0] ? "overtired" : $0 }
        let relabelled = Fixtures.withMetadata(Fixtures.reason(version: "3.0.0")) { $0["labels"] = renamed }
        let r = try await node.send("model", try node.envelope(relabelled).encoded())
        #expect(r.ok, "\(r)")
        try await recorder.wait("discovery with the new labels") { eventTypes($0) == renamed + ["unknown"] }
        await recorder.stop()
        try await node.stop()
    }
}

extension NodeTests {
    @Test("a fleet controller survives what any client may publish on a node's info, state and result topics")
    func fleetReadsRoguePayloads() async throws {
        let node = try await TestNode()
        let deep = Array(String(repeating: "[", count: 513).utf8)
        for leaf in ["info", "state", "result", "status"] {
            try await node.fleet.client.publish(topic: "deepinfant/rogue/\(leaf)", payload: deep, qos: .atLeastOnce, retain: leaf != "result")
        }
        // A second controller reads the retained rogue payloads at connect, as `fleet list` does.
        let other = try FleetController(settings: node.broker.settings("fleet-rogue"))
        try await other.connect()
        let listed = await other.list()
        #expect(listed.contains { $0.id == node.id && $0.online == true && $0.info != nil })
        #expect(listed.first { $0.id == "rogue" }.map { $0.info == nil && $0.state == nil } ?? false)
        let ping = try await other.send("ping", payload: { id in Array(#"{"request_id":"\#(id)"}"#.utf8) }, to: .node(node.id))
        #expect(ping.first?.ok == true)
        for leaf in ["info", "state", "status"] {
            try await node.fleet.client.publish(topic: "deepinfant/rogue/\(leaf)", payload: [], qos: .atLeastOnce, retain: true)
        }
        await other.disconnect()
        try await node.stop()
    }
}

extension NodeTests {
    @Test("a command sent again with its request id is answered again, not run twice")
    func repeatedRequestRunsOnce() async throws {
        let node = try await TestNode()
        let envelope = try node.envelope(Fixtures.reason(version: "1.2.0"))
        // The controller re-sends the very bytes it sent (after a broker restart): the same answer, not a second install.
        let bytes = TestNode.withRequestID(try envelope.encoded(), "request-1")
        let command = NodeCommand(name: "model", payload: bytes, group: false, topic: "deepinfant/nursery/cmd/model")
        let first = await node.control.handle(command)
        #expect(first.ok && first.previousModel?.version == "0.0.0-test")
        let again = await node.control.handle(command)
        #expect(again == first)
        // A new request id runs it: the model replaces itself, so the previous model is now 1.2.0.
        let fresh = try await node.send("model", try envelope.encoded())
        #expect(fresh.ok && fresh.previousModel?.version == "1.2.0")
        // Without a request id (Home Assistant's number entities) the same bytes always run: 6, 7, 6 again.
        for h in [6, 7, 6] {
            let r = await node.control.handle(NodeCommand(name: "config", payload: Array(#"{"gate":{"hangover_s":\#(h)}}"#.utf8),
                                                          group: false, topic: "deepinfant/nursery/cmd/config"))
            #expect(r.ok && node.agent.control.gateSettings?.hangoverSeconds == Double(h))
        }
        try await node.stop()
    }

    @Test("a command queued while the broker is away reaches the node after both reconnect")
    func commandSurvivesABrokerRestart() async throws {
        let node = try await TestNode()
        node.broker.stopBroker()
        let answer = Task {
            try await node.fleet.send("config", payload: { id in Array(#"{"gate":{"hangover_s":7},"request_id":"\#(id)"}"#.utf8) },
                                      to: .node(node.id), timeout: .seconds(20))
        }
        try await Task.sleep(for: .milliseconds(500))
        try node.broker.startBroker()
        let outcomes = try await answer.value
        #expect(outcomes.count == 1 && outcomes.first?.ok == true, "\(outcomes)")
        #expect(node.agent.control.gateSettings?.hangoverSeconds == 7)
        try await node.stop()
    }
}
