import Agent
import Control
import Foundation
import Inference
import Logging
import Messaging
import Testing

func json(_ text: String) -> JSONValue { try! JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) }

struct MergePatchTests {
    /// RFC 7396 Appendix A.
    @Test("RFC 7396 appendix A examples", arguments: [
        (#"{"a":"b"}"#, #"{"a":"c"}"#, #"{"a":"c"}"#),
        (#"{"a":"b"}"#, #"{"b":"c"}"#, #"{"a":"b","b":"c"}"#),
        (#"{"a":"b"}"#, #"{"a":null}"#, #"{}"#),
        (#"{"a":"b","b":"c"}"#, #"{"a":null}"#, #"{"b":"c"}"#),
        (#"{"a":["b"]}"#, #"{"a":"c"}"#, #"{"a":"c"}"#),
        (#"{"a":"c"}"#, #"{"a":["b"]}"#, #"{"a":["b"]}"#),
        (#"{"a":{"b":"c"}}"#, #"{"a":{"b":"d","c":null}}"#, #"{"a":{"b":"d"}}"#),
        (#"{"a":[{"b":"c"}]}"#, #"{"a":[1]}"#, #"{"a":[1]}"#),
        (#"["a","b"]"#, #"["c","d"]"#, #"["c","d"]"#),
        (#"{"a":"b"}"#, #"["c"]"#, #"["c"]"#),
        (#"{"a":"foo"}"#, #"null"#, #"null"#),
        (#"{"a":"foo"}"#, #""bar""#, #""bar""#),
        (#"{"e":null}"#, #"{"a":1}"#, #"{"e":null,"a":1}"#),
        (#"[1,2]"#, #"{"a":"b","c":null}"#, #"{"a":"b"}"#),
        (#"{}"#, #"{"a":{"bb":{"ccc":null}}}"#, #"{"a":{"bb":{}}}"#),
    ])
    func rfcExamples(target: String, patch: String, expected: String) {
        #expect(MergePatch.apply(json(patch), to: json(target)) == json(expected))
    }

    @Test("composing patches keeps nulls, so a deleted key stays deleted over the TOML file")
    func compose() {
        let toml = json(#"{"model":{"path":"/a"},"gate":{"cry_threshold":0.5,"hangover_s":4}}"#)
        let p1 = json(#"{"gate":{"cry_threshold":0.7}}"#), p2 = json(#"{"gate":{"hangover_s":null},"model":{"path":null}}"#)
        let composed = MergePatch.compose(p1, p2)
        #expect(composed == json(#"{"gate":{"cry_threshold":0.7,"hangover_s":null},"model":{"path":null}}"#))
        #expect(MergePatch.apply(composed, to: toml) == MergePatch.apply(p2, to: MergePatch.apply(p1, to: toml)))
    }

    @Test("model versions order like semver", arguments: [
        ("1.0.0", "0.9.9", 1), ("1.10.0", "1.9.0", 1), ("1.0.0", "1.0.0", 0), ("1.0.0-rc1", "1.0.0", -1),
        ("1.0", "1.0.0", 0), ("0.0.0-test", "0.0.0-untrained", -1), ("2", "10", -1), ("1.0.0-rc.2", "1.0.0-rc.10", -1),
    ])
    func versions(a: String, b: String, order: Int) {
        #expect(ModelVersion.compare(a, b) == order)
        #expect(ModelVersion.compare(b, a) == -order)
    }

    @Test("the config document round-trips and mirrors the TOML keys")
    func documentRoundTrip() throws {
        var c = AgentConfig()
        c.node.id = "n1"; c.mqtt.password = "secret"; c.gate.cryThreshold = 0.6; c.control.trustedKeys = ["/k.pub"]
        #expect(try ConfigDocument.decode(ConfigDocument.encode(c)) == c)
        #expect(try ConfigDocument.decode(json("{}")) == AgentConfig())
        guard case let .object(doc) = ConfigDocument.encode(c, redactSecrets: true), case let .object(mqtt)? = doc["mqtt"] else {
            Issue.record("not an object"); return
        }
        #expect(mqtt["password"] == .string(ConfigDocument.redacted))
        #expect(Set(doc.keys) == ["node", "audio", "mqtt", "gate", "model", "log", "control", "feedback"])
    }

    @Test("Home Assistant number entities send patches of real config keys")
    func homeAssistantTemplates() throws {
        let discovery = HomeAssistantDiscovery(topics: Topics(nodeID: "n1"), labels: ["hungry"], modelVersion: "1", softwareVersion: "0")
        var numbers = 0
        for message in discovery.configs() where message.topic.contains("/number/") {
            let config = try #require(try JSONSerialization.jsonObject(with: Data(message.payload)) as? [String: Any])
            let template = try #require(config["command_template"] as? String)
            let patch = json(template.replacingOccurrences(of: "{{ value }}", with: "0.42"))
            let change = try ConfigPatch.plan(patch: patch, current: AgentConfig(), override: json("{}"))
            #expect(change.changedKeys.count == 1 && change.restartKeys.isEmpty, "\(template)")
            numbers += 1
        }
        #expect(numbers == 2)
    }

    @Test("loggers on the live handler follow the process-wide level")
    func liveLogLevel() {
        let saved = LiveLogLevel.level
        defer { LiveLogLevel.set(saved) }
        let logger = Logger(label: "t") { LiveLogLevel.Handler(base: StreamLogHandler.standardError(label: $0)) }
        LiveLogLevel.set(.error)
        #expect(logger.logLevel == .error)
        LiveLogLevel.set(.debug)
        #expect(logger.logLevel == .debug)
    }
}
