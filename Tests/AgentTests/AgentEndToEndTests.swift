import TestSupport
import Agent
import Capture
import Foundation
import Gate
import Inference
import Testing

/// Recording → ALSA file PCM → gate → CRNNs → real mosquitto → a real subscriber.
@Suite(.serialized)
struct AgentEndToEndTests {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    /// The nursery PCM in the test process's shared ALSA config: captures a raw file written below.
    static let alsaDirectory: URL = {
        ALSATestConfig.definePCM("nursery", infile: ALSATestConfig.directory.appendingPathComponent("nursery.raw").path)
        return ALSATestConfig.directory
    }()

    /// `seconds` of silence, the recording, and `after` seconds of silence, as the nursery PCM's input.
    static func writeNurseryAudio(_ file: String, before: Double, after: Double) throws -> [Float] {
        let recording = try AudioFile.read(path: fixtures.appendingPathComponent(file).path)
        let audio = [Float](repeating: 0, count: Int(before * 16_000)) + recording + [Float](repeating: 0, count: Int(after * 16_000))
        try ALSATestConfig.writeRaw(audio, to: alsaDirectory.appendingPathComponent("nursery.raw").path)
        return audio
    }

    static func config(broker: TestBroker, node: String) -> AgentConfig {
        var c = AgentConfig()
        c.node.id = node
        c.node.stateDir = broker.directory.appendingPathComponent("state-\(node)").path
        c.mqtt.broker = broker.url
        c.log.level = "warning"
        return c
    }

    static func models() throws -> (ModelBundle, ModelBundle) {
        (try ModelBundle.embeddedCryDetector(), try ModelBundle.embeddedDefault())
    }

    @Test("a cry through the real ALSA path gives start, updates and end with the reason; status goes offline")
    func cryThroughALSA() async throws {
        _ = Self.alsaDirectory
        let broker = try TestBroker()
        let sub = try Subscriber(port: broker.port, filter: "deepinfant/e2e/#")
        let audio = try Self.writeNurseryAudio("cry-hungry.flac", before: 2, after: 6)
        var cfg = Self.config(broker: broker, node: "e2e")
        cfg.audio.device = "nursery"
        // The file plugin hands out audio as fast as it is read; pace it like a microphone.
        cfg.audio.realTime = true
        let (cry, reason) = try Self.models()
        // The reason the gate gives for the same audio offline: live and offline paths must agree.
        let offline = try CryGate(cryModel: cry, reasonModel: reason, settings: cfg.gate)
        var offlineEvents: [GateEvent] = []
        var i = 0
        while i < audio.count {
            let end = min(audio.count, i + 1600)
            offlineEvents += offline.process(Array(audio[i..<end]), startIndex: Int64(i), timestamp: Date())
            i = end
        }
        var expectedReason: String?
        for case let .cryEnded(_, _, _, _, _, _, estimate) in offlineEvents { expectedReason = estimate.reason }
        try #require(expectedReason != nil, "the gate found no cry offline in the bundled cry recording")

        let agent = Agent(config: cfg, cryModel: cry, reasonModel: reason)
        let task = Task { try await agent.run() }
        let ended = await sub.wait(timeout: 40) { msgs in msgs.contains { $0.topic == "deepinfant/e2e/event" && $0.payload.contains("\"type\":\"end\"") } }
        task.cancel()
        try await task.value
        #expect(ended)
        #expect(await sub.wait(timeout: 5) { $0.last { $0.topic == "deepinfant/e2e/status" }?.payload == "offline" })
        let events = sub.events()
        let types = events.compactMap { $0["type"] as? String }
        #expect(types.first == "start" && types.last == "end")
        #expect(types.filter { $0 == "start" }.count == 1 && types.filter { $0 == "end" }.count == 1)
        #expect(Set(events.compactMap { $0["episode_id"] as? String }).count == 1)
        #expect(events.compactMap { $0["seq"] as? Int } == Array(0..<events.count))
        #expect(events.last?["reason"] as? String == expectedReason)
        #expect((events.last?["duration_s"] as? Double ?? 0) > 3)
        let status = sub.messages.filter { $0.topic == "deepinfant/e2e/status" }.map(\.payload)
        #expect(status.first == "online")
        #expect(sub.messages.contains { $0.topic == "deepinfant/e2e/info" && $0.payload.contains("alsa:nursery") })
    }

    @Test("with the microphone missing, diagnostics still arrive and count the failed opens")
    func diagnosticsWithoutAudio() async throws {
        let broker = try TestBroker()
        let sub = try Subscriber(port: broker.port, filter: "deepinfant/nomic/diagnostics")
        var cfg = Self.config(broker: broker, node: "nomic")
        cfg.audio.device = "no_such_capture_device"
        cfg.mqtt.diagnosticsIntervalSeconds = 1
        let (cry, reason) = try Self.models()
        let agent = Agent(config: cfg, cryModel: cry, reasonModel: reason)
        let task = Task { try await agent.run() }
        let seen = await sub.wait(timeout: 15) { msgs in
            msgs.contains { msg in
                guard let o = try? JSONSerialization.jsonObject(with: Data(msg.payload.utf8)) as? [String: Any] else { return false }
                return (o["device_open_failures"] as? Int ?? 0) >= 1 && (o["audio_s"] as? Double ?? -1) == 0
            }
        }
        task.cancel()
        try await task.value
        #expect(seen, "\(sub.messages.map(\.payload))")
    }

    @Test("a broker restart mid-episode loses no event: all arrive once, in order")
    func brokerRestart() async throws {
        _ = Self.alsaDirectory
        let broker = try TestBroker()
        let sub = try Subscriber(port: broker.port, filter: "deepinfant/restart/#")
        _ = try Self.writeNurseryAudio("cry-hungry.flac", before: 1, after: 12)
        var cfg = Self.config(broker: broker, node: "restart")
        cfg.audio.device = "nursery"
        cfg.audio.realTime = true
        cfg.gate.updateIntervalSeconds = 1
        let (cry, reason) = try Self.models()
        let agent = Agent(config: cfg, cryModel: cry, reasonModel: reason)
        let task = Task { try await agent.run() }
        #expect(await sub.wait(timeout: 10) { $0.contains { $0.topic.hasSuffix("/event") } })
        broker.stop()
        try await Task.sleep(for: .seconds(2.5))  // crying goes on while the broker is away: updates queue in the outbox
        try broker.start()
        // The agent reconnects (capped backoff) and sends the backlog, then the end event after the hang-over.
        let ended = await sub.wait(timeout: 30) { $0.contains { $0.topic.hasSuffix("/event") && $0.payload.contains("\"type\":\"end\"") } }
        task.cancel()
        try await task.value
        #expect(ended)
        let events = sub.events()
        // At-least-once: a resend after a lost PUBACK is possible and recognisable by episode id + seq.
        var seqs: [Int] = []
        for s in events.compactMap({ $0["seq"] as? Int }) where !seqs.contains(s) { seqs.append(s) }
        #expect(seqs == Array(0..<seqs.count), "seq \(seqs)")
        #expect(seqs.count >= 4, "start, updates during the outage, end")
        #expect(Set(events.compactMap { $0["episode_id"] as? String }).count == 1)
    }

    @Test("speech produces no cry event", arguments: ["speech.flac"])
    func noEventForSpeech(file: String) async throws {
        let broker = try TestBroker()
        let sub = try Subscriber(port: broker.port, filter: "deepinfant/quiet/#")
        var cfg = Self.config(broker: broker, node: "quiet")
        cfg.audio.input = Self.fixtures.appendingPathComponent(file).path
        let (cry, reason) = try Self.models()
        try await Agent(config: cfg, cryModel: cry, reasonModel: reason).run()
        #expect(await sub.wait(timeout: 5) { $0.last { $0.topic == "deepinfant/quiet/status" }?.payload == "offline" })
        #expect(sub.events().isEmpty, "events: \(sub.events())")
        #expect(sub.messages.contains { $0.topic == "deepinfant/quiet/status" && $0.payload == "online" })
    }

    @Test("SIGTERM publishes offline and exits 0 within the deadline")
    func sigterm() async throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("deepinfant-edge")
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build the executable first (swift build)")
        let broker = try TestBroker()
        let sub = try Subscriber(port: broker.port, filter: "deepinfant/term/status")
        let pid = try ChildProcess.spawn(binary.path, [
            "run", "--broker", broker.url, "--node-id", "term", "--state-dir", broker.directory.appendingPathComponent("state").path,
            "--input", Self.fixtures.appendingPathComponent("cry-hungry.flac").path, "--real-time", "--log-level", "warning"])
        #expect(await sub.wait(timeout: 10) { $0.contains { $0.payload == "online" } })
        let sent = Date()
        kill(pid, SIGTERM)
        let status = ChildProcess.wait(pid)
        let took = Date().timeIntervalSince(sent)
        #expect(status == 0)
        #expect(took < 5, "shutdown took \(took) s")
        #expect(await sub.wait(timeout: 3) { $0.last?.payload == "offline" })
    }

    @Test("a node killed mid-episode ends that episode when it starts again (interrupted end, no gap)")
    func killedMidEpisode() async throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("deepinfant-edge")
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build the executable first (swift build)")
        let broker = try TestBroker()
        let sub = try Subscriber(port: broker.port, filter: "deepinfant/killed/event")
        let state = broker.directory.appendingPathComponent("state").path
        func run(_ file: String) throws -> pid_t {
            try ChildProcess.spawn(binary.path, [
                "run", "--broker", broker.url, "--node-id", "killed", "--state-dir", state,
                "--input", Self.fixtures.appendingPathComponent(file).path, "--real-time", "--log-level", "warning"])
        }
        let first = try run("cry-hungry.flac")
        #expect(await sub.wait(timeout: 15) { $0.contains { $0.payload.contains("\"type\":\"start\"") } })
        kill(first, SIGKILL)
        _ = ChildProcess.wait(first)
        #expect(!sub.events().contains { $0["type"] as? String == "end" }, "the episode was still open when the node died")
        // Started again (on speech: no new cry), it ends the episode the killed run left open.
        let second = try run("speech.flac")
        #expect(await sub.wait(timeout: 15) { $0.contains { $0.payload.contains("\"type\":\"end\"") } })
        kill(second, SIGTERM)
        _ = ChildProcess.wait(second)
        let events = sub.events()
        #expect(Set(events.compactMap { $0["episode_id"] as? String }).count == 1)
        var bySeq: [Int: [String: Any]] = [:]
        for e in events { if let q = e["seq"] as? Int { bySeq[q] = e } }
        #expect(bySeq.keys.sorted() == Array(0..<bySeq.count), "seq \(bySeq.keys.sorted())")
        let end = bySeq[bySeq.count - 1]
        #expect(end?["type"] as? String == "end" && end?["interrupted"] as? Bool == true, "\(String(describing: end))")
        #expect(bySeq.values.filter { $0["type"] as? String == "end" }.count == 1)
    }

    @Test("a bad config exits 78 naming the key, before anything starts")
    func badConfigExit() throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("deepinfant-edge")
        try #require(FileManager.default.isExecutableFile(atPath: binary.path))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let file = dir.appendingPathComponent("bad.toml")
        try "[gate]\ncry_threshold = 2.0\n".write(to: file, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = binary
        p.arguments = ["run", "--config", file.path]
        let err = Pipe()
        p.standardError = err
        try p.run()
        p.waitUntilExit()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 78)
        #expect(message.contains("gate.cry_threshold"), "\(message)")
    }
}
