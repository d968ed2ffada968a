import Agent
import Control
import Foundation
import Gate
import Inference
import Messaging
import Testing

/// Model slots: `cmd/model` puts a signed cry head, YAMNet body or CRNN cry detector into its slot (with
/// the same checks, atomic store, rollback and restart as the reason model), and refuses what does not fit
/// the node's running detector.
extension NodeTests {
    @Test("a signed cry head installs on a yamnet node: slot cry, the gate runs it, info and rollback follow, a restart keeps it")
    func cryHeadRoundTrip() async throws {
        let node = try await TestNode(bursts: true, detector: Fixtures.yamnetDetector)
        let recorder = try await Recorder(node.broker, filters: ["deepinfant/nursery/info", "deepinfant/nursery/event", "deepinfant/nursery/config"])
        let reasonBefore = try #require(node.agent.control.reasonModel)
        #expect(node.runningHead?.metadata.version == "1.0.0")
        // The first head never fires: loud bursts but no episode.
        try await Task.sleep(for: .seconds(2))
        #expect(!recorder.messages.contains { $0.topic.hasSuffix("/event") })

        // A head that calls every patch a cry, with its own threshold recommendation.
        let firing = Fixtures.head(version: "1.1.0", bias: 20, threshold: 0.7)
        let r = try await node.send("model", try node.envelope(firing).encoded())
        #expect(r.ok, "\(r)")
        #expect(r.slot == "cry" && r.model?.version == "1.1.0" && r.previousModel?.version == "1.0.0")
        #expect(node.runningHead?.metadata.version == "1.1.0")
        #expect(node.runningBody?.metadata.version == "1.0.0")
        // The gate uses it: the bursts are now cries.
        try await recorder.wait(timeout: .seconds(20), "a cry start event under the new head") { msgs in
            msgs.contains { $0.topic.hasSuffix("/event") && (try? PayloadJSON.decode(CryEventPayload.self, from: $0.payload))?.type == .start }
        }
        // The config echo shows the new head's recommended threshold (no explicit gate.cry_threshold).
        try await recorder.wait("config echo with the head's threshold") { msgs in
            msgs.last { $0.topic.hasSuffix("/config") }.flatMap { try? PayloadJSON.decode(ConfigStatePayload.self, from: $0.payload) }?.gate.threshold == 0.7
        }
        // Stored in the cry slot's own store; the reason slot is untouched.
        let cryStore = ModelStore(stateDir: node.config.node.stateDir, slot: .cry)
        #expect(cryStore.directory.hasSuffix("/models/cry"))
        #expect(try cryStore.state().current?.version == "1.1.0" && cryStore.state().previous == nil)
        #expect(FileManager.default.fileExists(atPath: cryStore.path(of: try #require(try cryStore.state().current))))
        #expect(try ModelStore(stateDir: node.config.node.stateDir).state() == ModelStore.State())
        #expect(node.agent.control.reasonModel?.source == reasonBefore.source)
        // info: the reason model object as before, and one entry per slot with the installed and latest versions.
        try await recorder.wait("info with cry 1.1.0") { msgs in
            guard let info = msgs.last(where: { $0.topic.hasSuffix("/info") }).flatMap({ try? PayloadJSON.decode(InfoPayload.self, from: $0.payload) })
            else { return false }
            return info.models?.map(\.slot) == ["reason", "cry", "yamnet"]
                && info.models?.first { $0.slot == "cry" }.map { ($0.kind, $0.version, $0.latestVersion) } ?? ("", "", nil) == ("embedding_head", "1.1.0", "1.1.0")
                && info.model.version == reasonBefore.metadata.version
        }
        let ping = try await node.send("ping", json: "{}")
        #expect(ping.models?.map { "\($0.slot ?? "?")=\($0.version)" } == ["reason=0.0.0-test", "cry=1.1.0", "yamnet=1.0.0"])
        #expect(try ping.models?[1].sha256 == cryStore.state().current?.sha256)
        let selftest = try await node.send("selftest", json: "{}")
        #expect(selftest.ok && selftest.selftest?.map { "\($0.slot ?? "?") \($0.version)" } == ["yamnet 1.0.0", "cry 1.1.0", "reason 0.0.0-test"], "\(selftest)")

        // Roll the cry slot back to the configured head and forth again; the reason slot has nothing to roll back.
        let back = try await node.send("rollback", json: #"{"slot": "cry"}"#)
        #expect(back.ok && back.slot == "cry" && back.model?.version == "1.0.0", "\(back)")
        #expect(node.runningHead?.metadata.version == "1.0.0")
        #expect(try cryStore.state().current == nil && cryStore.state().previous?.version == "1.1.0")
        // The HA update entity's "latest" stays 1.1.0: an update is available again.
        try await recorder.wait("info: cry installed 1.0.0, latest 1.1.0") { msgs in
            guard let info = msgs.last(where: { $0.topic.hasSuffix("/info") }).flatMap({ try? PayloadJSON.decode(InfoPayload.self, from: $0.payload) }),
                  let cry = info.models?.first(where: { $0.slot == "cry" }) else { return false }
            return cry.version == "1.0.0" && cry.latestVersion == "1.1.0"
        }
        let forth = try await node.send("rollback", json: #"{"slot": "cry"}"#)
        #expect(forth.ok && node.runningHead?.metadata.version == "1.1.0", "\(forth)")
        let reasonRollback = try await node.send("rollback", json: "{}")
        #expect(!reasonRollback.ok && reasonRollback.error == "nothing_to_roll_back" && reasonRollback.slot == "reason")
        let bogus = try await node.send("rollback", json: #"{"slot": "gate"}"#)
        #expect(!bogus.ok && bogus.error == "unknown_slot" && bogus.key == "slot", "\(bogus)")

        // A restart starts with the installed head (and knows it came from the store).
        try await node.restart()
        let installedHead = try #require(try cryStore.state().current)
        #expect(node.runningHead?.metadata.version == "1.1.0" && node.runningHead?.source == cryStore.path(of: installedHead))
        let after = try await node.send("ping", json: "{}")
        #expect(try after.models?.first { $0.slot == "cry" }?.sha256 == cryStore.state().current?.sha256, "\(after)")
        // ... and can still roll back to the configured head.
        let again = try await node.send("rollback", json: #"{"slot": "cry"}"#)
        #expect(again.ok && node.runningHead?.metadata.version == "1.0.0", "\(again)")
        #expect(node.agent.control.reasonModel?.metadata.version == reasonBefore.metadata.version)
        await recorder.stop()
        try await node.stop()
    }

    @Test("cry heads a yamnet node refuses: self-test, body name, embedding size, unsigned, other key, CRNN detector, downgrade")
    func cryHeadRejected() async throws {
        let node = try await TestNode(detector: Fixtures.yamnetDetector)
        // The reason slot at 2.0.0: a head's version is compared with the running head's (1.0.0) only.
        _ = try await node.send("model", try node.envelope(Fixtures.reason(version: "2.0.0")).encoded())
        let installed = try await node.send("model", try node.envelope(Fixtures.head(version: "1.2.0")).encoded())
        #expect(installed.ok, "\(installed)")
        let before = await node.snapshot()
        #expect(before.cryModels.contains { $0.hasPrefix("test-cry-head 1.2.0") })

        let otherKeys = node.broker.directory.appendingPathComponent("other")
        try FileManager.default.createDirectory(at: otherKeys, withIntermediateDirectories: true)
        _ = try SigningKeys.generate(directory: otherKeys.path)
        let head = Fixtures.head(version: "1.3.0")
        var unsigned = try JSONSerialization.jsonObject(with: Data(try node.envelope(head).encoded())) as! [String: Any]
        unsigned["signature"] = nil
        let cases: [(String, [UInt8], String, String?)] = [
            ("self-test fails", try node.envelope(Fixtures.head(version: "1.3.0", wrongSelfTest: true)).encoded(), "selftest_failed", nil),
            ("trained on another body", try node.envelope(Fixtures.head(version: "1.3.0", bodyName: "vggish")).encoded(), "body_mismatch", "body.name"),
            ("another embedding size", try node.envelope(Fixtures.head(version: "1.3.0", inputDim: 512)).encoded(), "body_mismatch", "architecture.input_dim"),
            ("unsigned", Array(try JSONSerialization.data(withJSONObject: unsigned)), "invalid_envelope", "signature"),
            ("signed by an untrusted key", try node.envelope(head, key: otherKeys.appendingPathComponent("signing.key").path).encoded(), "unknown_key", "signature"),
            ("a CRNN cry detector on a yamnet node", try node.envelope(Fixtures.withMetadata(Fixtures.cry) { $0["version"] = "3.0.0" }).encoded(),
             "wrong_detector", "architecture.type"),
            ("a lower head version", try node.envelope(Fixtures.head(version: "1.1.0")).encoded(), "downgrade", "version"),
        ]
        for (what, payload, code, key) in cases {
            let r = try await node.send("model", payload)
            #expect(!r.ok && r.error == code, "\(what): \(r.error ?? "-") \(r.message ?? "")")
            if let key { #expect(r.key == key, "\(what): key \(r.key ?? "-")") }
            #expect(await node.snapshot() == before, "\(what)")
            #expect(node.runningHead?.metadata.version == "1.2.0", "\(what)")
        }
        // The raw model file is not an envelope at all.
        let raw = await node.control.handle(NodeCommand(name: "model", payload: head, group: false, topic: "deepinfant/nursery/cmd/model"))
        #expect(!raw.ok && raw.error == "malformed_json")
        #expect(await node.snapshot() == before)
        // Same version again is fine; forcing a downgrade works, per slot.
        var forced = try node.envelope(Fixtures.head(version: "1.1.0"))
        forced.force = true
        let ok = try await node.send("model", try forced.encoded())
        #expect(ok.ok && ok.slot == "cry" && node.runningHead?.metadata.version == "1.1.0", "\(ok)")
        #expect(node.agent.control.reasonModel?.metadata.version == "2.0.0")
        try await node.stop()
    }

    @Test("a YAMNet body push: slot yamnet, the head stays, a body for another head is refused, rollback, restart")
    func bodyRoundTrip() async throws {
        let node = try await TestNode(detector: Fixtures.yamnetDetector)
        let before = await node.snapshot()
        // A body with another name does not fit the running head (trained on "yamnet"); one with a wrong
        // self-test is refused by it.
        let renamed = try await node.send("model", try node.envelope(Fixtures.body(version: "1.0.1", name: "yamnet-v2")).encoded(), timeout: .seconds(30))
        #expect(!renamed.ok && renamed.error == "body_mismatch" && renamed.slot == "yamnet" && renamed.key == "name", "\(renamed)")
        let broken = try await node.send("model", try node.envelope(Fixtures.body(version: "1.0.1", wrongSelfTest: true)).encoded(), timeout: .seconds(30))
        #expect(!broken.ok && broken.error == "selftest_failed", "\(broken)")
        #expect(await node.snapshot() == before)

        let r = try await node.send("model", try node.envelope(Fixtures.body(version: "1.0.1")).encoded(), timeout: .seconds(30))
        #expect(r.ok && r.slot == "yamnet" && r.model?.version == "1.0.1" && r.previousModel?.version == "1.0.0", "\(r)")
        #expect(node.runningBody?.metadata.version == "1.0.1" && node.runningHead?.metadata.version == "1.0.0")
        #expect(node.agent.control.reasonModel?.source == before.modelSource)
        let bodyStore = ModelStore(stateDir: node.config.node.stateDir, slot: .yamnet)
        #expect(try bodyStore.state().current?.version == "1.0.1")
        #expect(try ModelStore(stateDir: node.config.node.stateDir, slot: .cry).state() == ModelStore.State())
        #expect(try ModelStore(stateDir: node.config.node.stateDir).state() == ModelStore.State())

        // A restart runs the installed body with the configured head.
        try await node.restart()
        #expect(node.runningBody?.metadata.version == "1.0.1" && node.runningHead?.metadata.version == "1.0.0")
        let back = try await node.send("rollback", Array(#"{"slot": "yamnet"}"#.utf8), timeout: .seconds(30))
        #expect(back.ok && back.slot == "yamnet" && node.runningBody?.metadata.version == "1.0.0", "\(back)")
        #expect(try bodyStore.state().current == nil && bodyStore.state().previous?.kind == "yamnet")
        // After another restart the rolled-back body is still an available update (HA shows "update available").
        let infos = try await Recorder(node.broker, filters: ["deepinfant/nursery/info"])
        try await node.restart()
        try await infos.wait("info: yamnet 1.0.0 installed, 1.0.1 latest") { msgs in
            msgs.last.flatMap { try? PayloadJSON.decode(InfoPayload.self, from: $0.payload) }?.models?.last.map { "\($0.slot) \($0.version) \($0.latestVersion ?? "-")" }
                == "yamnet 1.0.0 1.0.1"
        }
        await infos.stop()
        try await node.stop()
    }

    @Test("a crnn node: a signed CRNN cry detector goes to the cry slot; a cry head or a YAMNet body is refused")
    func crnnNodeCrySlot() async throws {
        let node = try await TestNode()
        let heads = try await node.send("model", try node.envelope(Fixtures.head(version: "5.0.0")).encoded())
        #expect(!heads.ok && heads.error == "wrong_detector", "\(heads)")
        let body = try await node.send("model", try node.envelope(Fixtures.body(version: "5.0.0")).encoded(), timeout: .seconds(30))
        #expect(!body.ok && body.error == "wrong_task" && body.key == "task", "\(body)")
        let noBodySlot = try await node.send("rollback", json: #"{"slot": "yamnet"}"#)
        #expect(!noBodySlot.ok && noBodySlot.error == "unknown_slot", "\(noBodySlot)")
        #expect(try ModelStore(stateDir: node.config.node.stateDir, slot: .cry).state() == ModelStore.State())

        let cry = Fixtures.withMetadata(Fixtures.cry) { $0["version"] = "3.0.0" }
        let r = try await node.send("model", try node.envelope(cry).encoded())
        #expect(r.ok && r.slot == "cry" && r.model?.version == "3.0.0", "\(r)")
        guard case let .crnn(running)? = node.agent.control.cryDetector else { Issue.record("not a crnn detector"); return }
        #expect(running.metadata.version == "3.0.0")
        #expect(node.agent.control.reasonModel?.metadata.version == "0.0.0-test")
        let back = try await node.send("rollback", json: #"{"slot": "cry"}"#)
        #expect(back.ok && back.model?.version == TestNode.cryModel.metadata.version, "\(back)")
        try await node.stop()
    }

    @Test("start-up: each slot's installed model when it fits the others, else the configured one")
    func startupSlots() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("slots-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = TestNode.quietLogger
        let configured = (cry: Fixtures.yamnetDetector, reason: TestNode.reasonModel)
        func install(_ slot: ModelSlot, _ bytes: [UInt8], version: String, name: String) throws {
            let entry = ModelStore.Entry(sha256: Hex.sha256(bytes), version: version, name: name)
            try ModelStore(stateDir: dir, slot: slot).commit(.init(current: entry), writing: bytes, for: entry)
        }
        // Nothing installed: the configured models.
        var m = ControlService.startupModels(stateDir: dir, configured: configured, logger: log)
        #expect(m.cry.version == "1.0.0" && m.reason.source == TestNode.reasonModel.source)
        // A head for another body is skipped; a fitting one is used.
        try install(.cry, Fixtures.head(version: "2.0.0", bodyName: "vggish"), version: "2.0.0", name: "test-cry-head")
        m = ControlService.startupModels(stateDir: dir, configured: configured, logger: log)
        #expect(m.cry.version == "1.0.0")
        try install(.cry, Fixtures.head(version: "2.1.0"), version: "2.1.0", name: "test-cry-head")
        m = ControlService.startupModels(stateDir: dir, configured: configured, logger: log)
        #expect(m.cry.version == "2.1.0" && m.cry.kind == "yamnet")
        // The same state directory on a crnn node: the head does not fit; the configured CRNN runs.
        let crnn = ControlService.startupModels(stateDir: dir, configured: (.crnn(TestNode.cryModel), TestNode.reasonModel), logger: log)
        #expect(crnn.cry.kind == "crnn" && crnn.cry.version == TestNode.cryModel.metadata.version)
        // The old layout: the reason slot still reads <state_dir>/models/installed.json.
        try install(.reason, Fixtures.reason(version: "4.0.0"), version: "4.0.0", name: "tiny")
        #expect(FileManager.default.fileExists(atPath: dir + "/models/installed.json"))
        m = ControlService.startupModels(stateDir: dir, configured: configured, logger: log)
        #expect(m.reason.metadata.version == "4.0.0" && m.cry.version == "2.1.0")
    }
}

extension NodeTests {
    @Test("fleet push-model signs and sends a cry head; fleet rollback --slot cry takes it back")
    func fleetCLISlots() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: ModelVerifyCLITests.binary.path), "build the executable first (swift build)")
        let node = try await TestNode(detector: Fixtures.yamnetDetector)
        let head = node.broker.directory.appendingPathComponent("head-1.4.0.safetensors")
        try Data(Fixtures.head(version: "1.4.0")).write(to: head)
        let push = try ModelVerifyCLITests.cli(["fleet", "push-model", head.path, "--key", node.signingKey, "--node", "nursery",
                                                "--broker", node.broker.url, "--timeout", "20"])
        #expect(push.0 == 0 && push.1.contains("installed test-cry-head 1.4.0 (cry slot)"), "\(push.1)")
        #expect(node.runningHead?.metadata.version == "1.4.0")
        let back = try ModelVerifyCLITests.cli(["fleet", "rollback", "--slot", "cry", "--node", "nursery", "--broker", node.broker.url])
        #expect(back.0 == 0 && back.1.contains("rolled back to test-cry-head 1.0.0 (cry slot)"), "\(back.1)")
        #expect(node.runningHead?.metadata.version == "1.0.0")
        let bad = try ModelVerifyCLITests.cli(["fleet", "rollback", "--slot", "gate", "--node", "nursery", "--broker", node.broker.url])
        #expect(bad.0 != 0 && bad.1.contains("--slot"), "\(bad.1)")
        try await node.stop()
    }
}
