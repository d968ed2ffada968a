import Agent
import Capture
import Control
import Feedback
import Foundation
import Gate
import Inference
import Messaging
import TestSupport
import Testing

/// The whole feedback circle on one real broker, as a fleet owner runs it: two nodes (the shipped YAMNet
/// body and cry head) hear a real cry; caregivers answer (one home: "not a cry", the other: a reason); the
/// answers are checked and refused where they should be; `fleet export-feedback` collects both homes;
/// `model train-head` learns from them; `fleet push-model --all` sends the signed head back to both.
@Suite("Feedback circle: two nodes, one broker", .serialized)
struct FeedbackCircleTests {
    /// The real cry, then a minute of silence (the nodes stay up for the commands).
    static func recording() throws -> URL {
        let cry = try AudioFile.read(path: Recordings.url("cry-hungry.flac").path)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("feedback-circle-\(getpid()).wav")
        let samples = cry + [Float](repeating: 0, count: 60 * 16_000)
        var data = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        data.append(contentsOf: Array("RIFF".utf8)); u32(UInt32(36 + samples.count * 2)); data.append(contentsOf: Array("WAVEfmt ".utf8))
        u32(16); u16(1); u16(1); u32(16_000); u32(32_000); u16(2); u16(16); data.append(contentsOf: Array("data".utf8)); u32(UInt32(samples.count * 2))
        for x in samples { u16(UInt16(bitPattern: Int16(max(-1, min(1, x)) * 32_767))) }
        try data.write(to: url)
        return url
    }

    static func cli(_ arguments: [String]) throws -> (Int32, String) { try ModelVerifyCLITests.cli(arguments) }

    static func latestEnded(_ node: TestNode) async throws -> FeedbackEpisode {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let e = try node.agent.feedbackBook()?.store.episode("latest"), e.endedAt != nil { return e }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Failure("no episode ended on \(node.id)")
    }

    @Test("answers are stored and checked, exported from both homes, learnt by train-head and pushed back signed")
    func circle() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: ModelVerifyCLITests.binary.path), "build the executable first (swift build)")
        let broker = try Broker()
        let audio = try Self.recording()
        defer { try? FileManager.default.removeItem(at: audio) }
        let detector = CryDetectorModel.yamnet(body: try YAMNetModel.embedded(), head: try EmbeddingHead.embedded())
        let catHome = try await TestNode(id: "cat-home", detector: detector, broker: broker, audio: audio) { $0.gate.hangoverSeconds = 1 }
        let twinHome = try await TestNode(id: "twin-home", detector: detector, broker: broker, audio: audio) { $0.gate.hangoverSeconds = 1 }
        let recorder = try await Recorder(broker, filters: ["deepinfant/+/feedback", "deepinfant/+/info"])
        let a = try await Self.latestEnded(catHome), b = try await Self.latestEnded(twinHome)
        let shippedHead = try EmbeddingHead.embedded().metadata.version
        #expect(a.patches > 0 && a.dimension == 1024 && a.models["cry"] == shippedHead)
        let reason = try #require(twinHome.agent.reasonModel.labels.first)

        // Answers, changes, withdrawals and refusals.
        var r = try await catHome.send("feedback", json: #"{"episode_id": "\#(a.id)", "label": "not_cry"}"#)
        #expect(r.ok && r.episodeID == a.id && r.label == "not_cry", "\(r)")
        r = try await twinHome.send("feedback", json: #"{"episode_id": "latest", "label": "not_cry"}"#)
        #expect(r.ok && r.episodeID == b.id)
        r = try await twinHome.send("feedback", json: #"{"episode_id": "latest", "label": null}"#)
        #expect(r.ok && r.label == nil)
        r = try await twinHome.send("feedback", json: #"{"episode_id": "\#(b.id)", "label": "\#(reason)"}"#)
        #expect(r.ok && r.label == reason)
        r = try await twinHome.send("feedback", json: #"{"episode_id": "\#(b.id)", "label": "teething"}"#)
        #expect(!r.ok && r.error == "unknown_label" && r.key == "label")
        r = try await twinHome.send("feedback", json: #"{"episode_id": "no-such-episode", "label": "\#(reason)"}"#)
        #expect(!r.ok && r.error == "unknown_episode")
        r = try await twinHome.send("feedback", json: #"{"episode_id": 7, "label": "\#(reason)"}"#)
        #expect(!r.ok && r.error == "invalid_feedback" && r.key == "episode_id")
        #expect(try twinHome.agent.feedbackBook()?.store.episode(b.id)?.label == reason)
        // The retained feedback state (HA's select) and info.feedback follow.
        try await recorder.wait("feedback state of twin-home") { messages in
            messages.contains { $0.topic == "deepinfant/twin-home/feedback" && $0.text.contains(#""option":"\#(reason)""#) }
        }
        try await recorder.wait("info.feedback of cat-home") { messages in
            messages.contains { $0.topic == "deepinfant/cat-home/info" && $0.text.contains(#""not_cry":1"#) && $0.text.contains(#""veto_episodes":1"#) }
        }
        // The cat home's veto is in its gate now: the same sound no longer fires there.
        #expect(catHome.agent.control.withGateForTesting { $0.veto != nil } == true)

        // Export both homes, learn, push back.
        let dir = broker.directory.appendingPathComponent("export")
        let fleet = ["--broker", broker.url, "--timeout", "30"]  // generous: the whole suite runs beside it
        var (status, output) = try Self.cli(["fleet", "export-feedback", "--all", "--out", dir.path, "--page-bytes", "20000"] + fleet)
        #expect(status == 0, "\(output)")
        let exported = try FeedbackExportFolder.read(dir)
        #expect(Set(exported.map(\.line.nodeID)) == ["cat-home", "twin-home"])
        #expect(exported.map(\.line.label).sorted() == ["not_cry", reason].sorted())
        #expect(exported.allSatisfy { $0.embeddings.count == $0.line.patches * 1024 && $0.line.patches > 0 })
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("manifest.json").path))
        let head = broker.directory.appendingPathComponent("head-next.safetensors").path
        // The two homes answered the same cry both ways: train-head refuses a head that stops hearing it...
        (status, output) = try Self.cli(["model", "train-head", "--feedback", dir.path, "--version", "2.0.1", "--out", head])
        #expect(status != 0 && output.contains("refused") && !FileManager.default.fileExists(atPath: head), "\(output)")
        // ...and writes it when the owner insists.
        (status, output) = try Self.cli(["model", "train-head", "--feedback", dir.path, "--version", "2.0.1", "--out", head, "--force"])
        #expect(status == 0 && output.contains("warning"), "\(output)")
        print(output)
        (status, output) = try Self.cli(["fleet", "push-model", head, "--key", catHome.signingKey, "--all"] + fleet)
        #expect(status == 0, "\(output)")
        for node in [catHome, twinHome] {
            guard case let .yamnet(_, running)? = node.agent.control.cryDetector else { Issue.record("not a yamnet node"); continue }
            #expect(running.metadata.version == "2.0.1")
        }
        // The answers survive the model update, and the veto was re-learnt under the new head.
        #expect(try catHome.agent.feedbackBook()?.store.episode(a.id)?.label == "not_cry")
        #expect(catHome.agent.control.withGateForTesting { $0.veto != nil } == true)
        // A node's store can be erased from the fleet.
        (status, output) = try Self.cli(["fleet", "forget-all", "--node", "cat-home"] + fleet)
        #expect(status == 0, "\(output)")
        #expect(try catHome.agent.feedbackBook()?.store.counts().episodes == 0)
        await recorder.stop()
        try await catHome.stop()
        try await twinHome.stop()
    }
}
