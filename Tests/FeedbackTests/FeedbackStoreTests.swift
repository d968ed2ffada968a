import Feedback
import Foundation
import Testing

@Suite("Feedback store (SQLite)")
struct FeedbackStoreTests {
    static func directory() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("deepinfant-feedback-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    static func episode(_ id: String, at t: Date, patches: Int = 2) -> FeedbackEpisode {
        FeedbackEpisode(id: id, startedAt: t, endedAt: t.addingTimeInterval(5), durationS: 5, cryConfidence: 0.9, reason: "hungry",
                        probabilities: ["hungry": 0.6, "tired": 0.4], models: ["reason": "1.3.0", "cry": "2.0.0"],
                        embeddings: (0..<(patches * 4)).map { Float($0) / 10 }, dimension: 4,
                        patchProbabilities: (0..<patches).map { 0.9 + Double($0) / 100 })
    }

    @Test("an episode survives reopening, labels change (last wins), are withdrawn, and the start record keeps a label")
    func roundTripAndLabels() throws {
        let dir = try Self.directory()
        let path = dir.appendingPathComponent("feedback.sqlite").path
        let t = Date(timeIntervalSince1970: 1_800_000_000)
        do {
            let store = try FeedbackStore(path: path)
            try store.record(FeedbackEpisode(id: "e1", startedAt: t, reason: "hungry", probabilities: ["hungry": 1], models: [:]), now: t)
            try store.label("e1", as: "tired", now: t)
            // The end of the episode arrives after the answer: the answer stays.
            try store.record(Self.episode("e1", at: t), now: t)
        }
        let store = try FeedbackStore(path: path)
        let e = try #require(try store.episode("e1"))
        #expect(e.label == "tired" && e.patches == 2 && e.dimension == 4 && e.embeddings.count == 8)
        #expect(e.embeddings[5] == 0.5 && e.models["cry"] == "2.0.0" && e.durationS == 5)
        #expect(try store.label("latest", as: "hungry", now: t).label == "hungry")
        #expect(try store.label("e1", as: nil, now: t).label == nil)
        #expect(try store.labelled().isEmpty)
        #expect(try store.counts().episodes == 1)
    }

    @Test("refusals: unknown episode, too old, storage full; the store is unchanged by each")
    func refusals() throws {
        var settings = FeedbackSettings()
        settings.maxEpisodes = 10
        settings.maxLabelled = 2
        settings.maxAgeDays = 1
        let store = try FeedbackStore(path: try Self.directory().appendingPathComponent("f.sqlite").path, settings: settings)
        let t = Date(timeIntervalSince1970: 1_800_000_000)
        for i in 0..<3 { try store.record(Self.episode("e\(i)", at: t.addingTimeInterval(Double(i))), now: t) }
        #expect(throws: FeedbackError.unknownEpisode("nope")) { try store.label("nope", as: "tired", now: t) }
        #expect(throws: FeedbackError.tooOld("e0", days: 1)) { try store.label("e0", as: "tired", now: t.addingTimeInterval(2 * 86_400)) }
        try store.label("e0", as: "tired", now: t)
        try store.label("e1", as: "not_cry", now: t)
        #expect(throws: FeedbackError.self) { try store.label("e2", as: "hungry", now: t) }
        do { try store.label("e2", as: "hungry", now: t) } catch { #expect(error.code == "storage_full") }
        // Changing an existing answer is still allowed at the cap.
        #expect(try store.label("e1", as: "hungry", now: t).label == "hungry")
        #expect(try store.counts().labels == ["tired": 1, "hungry": 1])
    }

    @Test("bounded: the oldest unlabelled episodes go first, labelled ones stay; audio beyond its budget is dropped oldest first")
    func bounds() throws {
        var settings = FeedbackSettings()
        settings.maxEpisodes = 10
        settings.maxLabelled = 5
        settings.audioMaxMB = 0.1   // 100 kB: three 32 kB recordings fit, a fourth pushes the oldest out
        let store = try FeedbackStore(path: try Self.directory().appendingPathComponent("f.sqlite").path, settings: settings)
        let t = Date(timeIntervalSince1970: 1_800_000_000)
        try store.record(Self.episode("first", at: t), now: t)
        try store.label("first", as: "tired", now: t)
        for i in 1...14 {
            try store.record(Self.episode("e\(i)", at: t.addingTimeInterval(Double(i))), audio: [Int16](repeating: Int16(i), count: 16_000), now: t)
        }
        #expect(try store.counts().episodes == 10)
        #expect(try store.episode("first")?.label == "tired")
        #expect(try store.episode("e1") == nil && store.episode("e5") == nil && store.episode("e6") != nil)
        let withAudio = try (6...14).filter { try store.episode("e\($0)")!.audioBytes > 0 }
        #expect(withAudio == [12, 13, 14])
        // Unlabelled episodes past the age limit expire on the next write.
        try store.record(Self.episode("late", at: t.addingTimeInterval(40 * 86_400)), now: t.addingTimeInterval(40 * 86_400))
        #expect(try store.counts().episodes == 2)
        #expect(try store.forget("first") == "first")
        #expect(try store.forgetAll() == 1)
        #expect(try store.counts().episodes == 0)
    }

    @Test("export pages: labelled episodes only, in order, each page at least one episode, the cursor continues")
    func exportPages() throws {
        let store = try FeedbackStore(path: try Self.directory().appendingPathComponent("f.sqlite").path)
        let t = Date(timeIntervalSince1970: 1_800_000_000)
        for i in 0..<5 {
            try store.record(Self.episode("e\(i)", at: t.addingTimeInterval(Double(i)), patches: 16), now: t)
            if i != 2 { try store.label("e\(i)", as: i == 4 ? "not_cry" : "hungry", now: t) }
        }
        var seen: [String] = [], cursor: Int64 = 0
        while true {
            let page = try store.exportPage(after: cursor, maxBytes: 1)
            guard let last = page.last else { break }
            #expect(page.count == 1)
            seen += page.map(\.episode.id)
            cursor = last.seq
        }
        #expect(seen == ["e0", "e1", "e3", "e4"])
        #expect(try store.exportPage(after: 0, maxBytes: 1_000_000).count == 4)
    }

    @Test("the store leaves the disk's reserve alone: past it the file stops growing, old unlabelled episodes make room, answers stay")
    func diskReserve() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var fs = statvfs()
        try #require(statvfs(dir.path, &fs) == 0)
        let free = Int64(fs.f_bavail) * Int64(fs.f_frsize)
        // A reserve that leaves this store about 1.5 MB of the real disk.
        let path = dir.appendingPathComponent("f.sqlite").path
        let store = try FeedbackStore(path: path, diskReserveBytes: free - 1_500_000)
        let t = Date(timeIntervalSince1970: 1_800_000_000)
        // 16 patches of 1024-d embeddings: 64 KB an episode, 121 of them = 7.9 MB.
        func big(_ id: String, _ i: Int) -> FeedbackEpisode {
            FeedbackEpisode(id: id, startedAt: t.addingTimeInterval(Double(i)), reason: "hungry", probabilities: ["hungry": 1], models: [:],
                            embeddings: (0..<(16 * 1024)).map { Float(($0 + i) % 97) }, dimension: 1024,
                            patchProbabilities: Array(repeating: 0.9, count: 16))
        }
        try store.record(big("answered", 0), now: t)
        try store.label("answered", as: "tired", now: t)
        for i in 0..<120 { try store.record(big("e\(i)", i + 1), now: t) }
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        #expect(size <= 1_700_000, "file \(size) bytes")
        let kept = try store.counts().episodes
        #expect(kept < 121 && kept >= 5, "kept \(kept)")
        #expect(try store.episode("e119") != nil, "the newest is kept")
        #expect(try store.episode("answered")?.label == "tired", "answers are never dropped for room")
        print("disk reserve: \(kept) of 121 episodes in \(size) bytes")
    }
}
