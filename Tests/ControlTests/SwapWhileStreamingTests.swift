import Agent
import Control
import Foundation
import Inference
import Messaging
import Testing

extension NodeTests {
    /// Audio streams in real time with a cry-detector threshold so low that every analysed window is a cry
    /// window, while the reason model is installed, replaced and rolled back five times. The level reports
    /// (one per second of audio in whole chunks, stamped with stream time) must step evenly — a lost or repeated
    /// chunk would change a step by one chunk or repeat a stamp — and the events must form clean episodes: each
    /// starts at seq 0, counts up without gaps or repeats, ends once, and is reported under one model version
    /// (a swap closes the open episode; the next window opens a new one under the new model).
    @Test("model swaps while audio streams: no chunk lost or repeated, episodes stay well-formed")
    func swapWhileStreaming() async throws {
        let node = try await TestNode(levelInterval: 1, bursts: true) { c in
            c.gate.cryThreshold = 0.001
            c.gate.updateIntervalSeconds = 1
        }
        let recorder = try await Recorder(node.broker, filters: ["deepinfant/nursery/level", "deepinfant/nursery/event"])
        try await recorder.wait("two level reports") { $0.filter { $0.topic.hasSuffix("/level") }.count >= 2 }

        let steps: [(String, [UInt8])] = [
            ("model", try node.envelope(Fixtures.reason(version: "1.0.0")).encoded()),
            ("model", try node.envelope(Fixtures.reason(version: "1.1.0")).encoded()),
            ("rollback", Array("{}".utf8)),
            ("rollback", Array("{}".utf8)),
            ("model", try node.envelope(Fixtures.reason(version: "1.2.0")).encoded()),
        ]
        for (name, payload) in steps {
            try await Task.sleep(for: .milliseconds(1200))
            let r = try await node.send(name, payload)
            #expect(r.ok, "\(r)")
        }
        let levelsAtEnd = recorder.messages.filter { $0.topic.hasSuffix("/level") }.count
        try await recorder.wait("two more level reports") { $0.filter { $0.topic.hasSuffix("/level") }.count >= levelsAtEnd + 2 }
        try await node.stop()
        try await Task.sleep(for: .milliseconds(300))
        let messages = recorder.messages
        await recorder.stop()

        // Levels: stream-time stamps one level interval apart, rounded up to whole chunks (1.024 s with 512-sample
        // chunks); a lost or repeated chunk would change a step by a chunk (32 ms).
        let levels = messages.filter { $0.topic.hasSuffix("/level") }.compactMap { try? PayloadJSON.decode(LevelPayload.self, from: $0.payload) }
        #expect(levels.count >= 8)
        let chunk = node.config.audio.chunkSamples
        let expectedStep = Double((16_000 + chunk - 1) / chunk * chunk) / 16_000
        for (a, b) in zip(levels, levels.dropFirst()) {
            let step = b.timestamp.timeIntervalSince(a.timestamp)
            #expect(abs(step - expectedStep) < 0.005, "level step \(step) s (expected \(expectedStep)) between \(a.timestamp) and \(b.timestamp)")
        }

        // Events: well-formed episodes, one model version each, in time order.
        let events = messages.filter { $0.topic.hasSuffix("/event") }.compactMap { try? PayloadJSON.decode(CryEventPayload.self, from: $0.payload) }
        #expect(Set(events.map { "\($0.episodeID)/\($0.seq)" }).count == events.count, "duplicated event")
        var episodes: [String: [CryEventPayload]] = [:]
        var order: [String] = []
        for e in events {
            if episodes[e.episodeID] == nil { order.append(e.episodeID) }
            episodes[e.episodeID, default: []].append(e)
        }
        for id in order {
            let list = episodes[id]!
            #expect(list.map(\.seq) == Array(0..<list.count), "episode \(id): seqs \(list.map(\.seq))")
            #expect(list.first?.type == .start && list.last?.type == .end, "episode \(id): \(list.map(\.type))")
            #expect(list.filter { $0.type == .end }.count == 1)
            #expect(Set(list.map(\.modelVersion)).count == 1, "episode \(id) spans models \(Set(list.map(\.modelVersion)))")
        }
        let f = TestNode.cryModel.metadata
        let windowSeconds = Double(f.window.frames * f.features.hopLength) / Double(f.features.sampleRate)
        for (a, b) in zip(order, order.dropFirst()) {
            let end = episodes[a]!.last!, start = episodes[b]!.first!
            // A start is stamped with its onset, the beginning of its first cry window; that window ended after
            // the swap (it was analysed under the new model), so the onset lies less than one window before
            // the previous episode's end (give or take the FFT frame: window times are frame times, which trail
            // the end of the chunk by up to n_fft samples).
            let gap = end.timestamp.timeIntervalSince(start.timestamp)
            let slack = Double(f.features.nFft) / Double(f.features.sampleRate)
            #expect(gap < windowSeconds + slack, "episode \(b) starts \(gap) s before \(a) ended")
        }
        // The swaps happened mid-stream: episodes ran under the original and the swapped-in models.
        let versions = order.map { episodes[$0]!.first!.modelVersion }
        #expect(Set(versions).isSuperset(of: ["0.0.0-test", "1.0.0", "1.1.0", "1.2.0"]), "\(versions)")
    }
}
