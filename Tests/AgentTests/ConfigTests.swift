import Agent
import Foundation
import Testing

/// Config parsing and validation: every mistake names its key.
struct ConfigTests {
    @Test("config.example.toml parses, validates, and equals the defaults it documents")
    func exampleIsDefaults() throws {
        // The file at the repository root, not a copy: the example users read is the one tested.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var parsed = try ConfigLoader.load(path: root.appendingPathComponent("config.example.toml").path)
        #expect(throws: Never.self) { try parsed.validate() }
        parsed.node.id = nil
        #expect(parsed == AgentConfig())
    }

    @Test("bad configs fail naming the key", arguments: [
        ("[mqtt]\nbrokr = \"mqtt://x:1\"", "mqtt.brokr"),
        ("[gate]\ncry_threshold = \"high\"", "gate.cry_threshold"),
        ("[gate]\ncry_threshold = 1.5", "gate.cry_threshold"),
        ("[audio]\nchunk_samples = 5", "audio.chunk_samples"),
        ("[mqtt]\nbroker = \"http://example\"", "mqtt.broker"),
        ("[node]\nid = \"Nursery 1\"", "node.id"),
        ("[log]\nlevel = \"loud\"", "log.level"),
        ("[bogus]\nx = 1", "bogus"),
        ("audio = 3", "audio"),
        ("[mqtt\nbroker = 1", "(syntax)"),
    ])
    func badConfig(text: String, key: String) {
        do {
            var c = try ConfigLoader.parse(text)
            try c.validate()
            ConfigLoader.applyEnvironment(&c, environment: [:])
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.key == key, "\(error)")
        }
    }

    @Test("the broker password comes from the environment when set")
    func passwordFromEnvironment() throws {
        var c = try ConfigLoader.parse("[mqtt]\nusername = \"node\"\npassword = \"from-file\"")
        ConfigLoader.applyEnvironment(&c, environment: [ConfigLoader.passwordVariable: "s3cret"])
        #expect(c.mqtt.password == "s3cret")
        #expect(ConfigHash.of(c) == ConfigHash.of({ var d = c; d.mqtt.password = "other"; return d }()))
    }
}
