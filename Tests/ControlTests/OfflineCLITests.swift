import Foundation
import Testing
import TestSupport

/// The offline commands as a user runs them on the committed recordings: `classify` says whether a
/// recording holds a cry before naming a reason, a directory stands for the audio files in it, and the
/// executable copied alone (as the Pi notes do) still has its models.
struct OfflineCLITests {
    static var fixtures: URL { Recordings.url("cry-hungry.flac").deletingLastPathComponent() }

    static func lines(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    @Test("classify --json: the cry gets its reason, the dog and the talking get cry false and unknown; a directory skips non-audio")
    func classifySaysWhetherItIsACry() throws {
        try #require(FileManager.default.isExecutableFile(atPath: ModelVerifyCLITests.binary.path), "build the executable first (swift build)")
        let (status, out) = try ModelVerifyCLITests.cli(["classify", "--json", Self.fixtures.path])
        #expect(status == 0, "\(out)")
        let objects = Self.lines(out)
        let byName = Dictionary(uniqueKeysWithValues: objects.map { (URL(fileURLWithPath: $0["file"] as! String).lastPathComponent, $0) })
        #expect(Set(byName.keys) == ["cry-hungry.flac", "dog.flac", "speech.flac"], "ATTRIBUTION.md is not audio: \(out)")
        #expect(byName["cry-hungry.flac"]?["cry"] as? Bool == true)
        #expect(["belly_pain", "burping", "discomfort", "hungry", "tired"].contains(byName["cry-hungry.flac"]?["reason"] as? String ?? ""))
        for name in ["dog.flac", "speech.flac"] {
            #expect(byName[name]?["cry"] as? Bool == false, "\(name): \(out)")
            #expect(byName[name]?["reason"] as? String == "unknown", "\(name): \(out)")
            #expect((byName[name]?["probabilities"] as? [String: Double])?.count == 5, "the reason model's answer stays attached")
        }

        // --assume-cry: the old answer, no cry check (no `cry` key).
        let forced = Self.lines(try ModelVerifyCLITests.cli(["classify", "--json", "--assume-cry", Self.fixtures.appendingPathComponent("dog.flac").path]).1)
        #expect(forced.count == 1 && forced[0]["cry"] == nil && forced[0]["reason"] as? String != nil)

        // A named file that is not audio: an error object for it, the others still answered, exit 1.
        let named = try ModelVerifyCLITests.cli(["classify", "--json", Self.fixtures.appendingPathComponent("ATTRIBUTION.md").path,
                                                 Self.fixtures.appendingPathComponent("cry-hungry.flac").path])
        let namedObjects = Self.lines(named.1)
        #expect(named.0 == 1)
        #expect(namedObjects.count == 2 && namedObjects[0]["error"] is String && namedObjects[1]["cry"] as? Bool == true, "\(named.1)")
    }

    @Test("the executable copied alone into an empty directory loads every embedded model and hears the cry")
    func oneFileIsTheWholeNode() throws {
        try #require(FileManager.default.isExecutableFile(atPath: ModelVerifyCLITests.binary.path), "build the executable first (swift build)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("alone-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let copy = dir.appendingPathComponent("deepinfant-edge")
        // A hard link where it can (no file open for writing that a concurrently spawned child could inherit:
        // exec would fail with ETXTBSY), else a copy; either way nothing else is in the directory.
        if (try? FileManager.default.linkItem(at: ModelVerifyCLITests.binary, to: copy)) == nil {
            try FileManager.default.copyItem(at: ModelVerifyCLITests.binary, to: copy)
        }
        func run(_ args: [String]) throws -> (Int32, String) {
            for attempt in 0..<20 {
                do { return try runOnce(args) } catch let error as NSError where (error.userInfo[NSUnderlyingErrorKey] as? NSError)?.code == Int(ETXTBSY) && attempt < 19 {
                    Thread.sleep(forTimeInterval: 0.1)
                }
            }
            return try runOnce(args)
        }
        func runOnce(_ args: [String]) throws -> (Int32, String) { try ModelVerifyCLITests.cli(args, binary: copy, directory: dir) }
        for name in ["reason", "cry-crnn", "yamnet", "cry-head"] {
            let (status, out) = try run(["model", "inspect", "--embedded", name, "--json"])
            #expect(status == 0, "\(name): \(out)")
            let o = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
            #expect((o["file"] as? String)?.hasPrefix("embedded:") == true)
            #expect((o["sha256"] as? String)?.count == 64)
            #expect((o["selftest"] as? [String: Any])?["passed"] as? Bool == true)
            #expect(o["input"] is [String: Any] && o["output"] is [String: Any])
        }
        // The committed file and the linked bytes are the same model.
        let committed = ModelVerifyCLITests.resources.appendingPathComponent("deepinfant-cry-head.safetensors").path
        let a = try JSONSerialization.jsonObject(with: Data(try run(["model", "inspect", "--json", committed]).1.utf8)) as? [String: Any]
        let b = try JSONSerialization.jsonObject(with: Data(try run(["model", "inspect", "--json", "--embedded", "cry-head"]).1.utf8)) as? [String: Any]
        #expect(a?["sha256"] as? String == b?["sha256"] as? String)
        let detect = try run(["detect", "--json", Self.fixtures.appendingPathComponent("cry-hungry.flac").path])
        #expect(detect.0 == 0 && Self.lines(detect.1).first?["cry"] as? Bool == true, "\(detect.1)")
    }
}
