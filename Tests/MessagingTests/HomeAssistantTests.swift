import Foundation
import Testing
@testable import Messaging

/// Checks discovery against a real Home Assistant (the shared harness, ../shared/tools/ha beside the project). Starting HA
/// takes ~10 s, so this runs only when deploy/mosquitto/ha-check.sh has started HA and set the environment.
@Suite("Home Assistant accepts the discovery")
struct HomeAssistantTests {
    static let harness = ProcessInfo.processInfo.environment["DEEPINFANT_HA_HARNESS"]
    static let brokerPort = ProcessInfo.processInfo.environment["DEEPINFANT_HA_BROKER_PORT"].flatMap(Int.init)

    func ha(_ arguments: String...) throws -> String {
        try TestFiles.run("/bin/bash", [Self.harness!] + arguments)
    }

    func json(_ arguments: String...) throws -> [[String: Any]] {
        let text = try TestFiles.run("/bin/bash", [Self.harness!] + arguments)
        // The harness logs to stderr, which TestFiles.run merges: keep the JSON array.
        guard let start = text.firstIndex(of: "["), let end = text.lastIndex(of: "]") else { return [] }
        return (try JSONSerialization.jsonObject(with: Data(text[start...end].utf8)) as? [[String: Any]]) ?? []
    }

    func states(_ node: String) throws -> [String: [String: Any]] {
        var result: [String: [String: Any]] = [:]
        for entry in try json("states", node) {
            if let id = entry["entity_id"] as? String { result[id] = entry }
        }
        return result
    }

    @Test(.enabled(if: harness != nil && brokerPort != nil, "needs ha-check.sh (a running Home Assistant)"))
    func homeAssistantAcceptsDiscovery() async throws {
        let node = "hacheck"
        let topics = Topics(nodeID: node)
        let labels = ["belly_pain", "burping", "discomfort", "hungry", "tired"]
        let discovery = HomeAssistantDiscovery(topics: topics, labels: labels, modelVersion: "1.0.0", softwareVersion: "0.1.0",
                                               modelSlots: ["reason", "cry", "yamnet"])
        let outbox = try Outbox(path: try TestFiles.temporaryDirectory("ha").appendingPathComponent("o.sqlite").path)
        let settings = MQTTSettings(host: "127.0.0.1", port: Self.brokerPort!, clientID: node, backoff: testBackoff)
        let publisher = try NodePublisher(settings: settings, topics: topics, outbox: outbox, discovery: discovery,
                                          infoRefresh: nil)
        let commands = CommandCollector(publisher.commands)
        let started = Date().addingTimeInterval(-3600)
        func info(reasonLatest: String?, cry: String, cryLatest: String) -> InfoPayload {
            InfoPayload(nodeID: node, softwareVersion: "0.1.0",
                        model: .init(name: "deepinfant-reason", version: "1.0.0", labels: labels, latestVersion: reasonLatest),
                        audioDevice: "hw:1,0", startedAt: started, uptimeS: 3600, configHash: "abc123",
                        models: [.init(slot: "reason", kind: "crnn", name: "deepinfant-reason", version: "1.0.0", latestVersion: reasonLatest ?? "1.0.0"),
                                 .init(slot: "cry", kind: "embedding_head", name: "deepinfant-cry-head", version: cry, latestVersion: cryLatest),
                                 .init(slot: "yamnet", kind: "yamnet", name: "yamnet", version: "1.0.0", latestVersion: "1.0.0")])
        }
        await publisher.publishInfo(info(reasonLatest: "1.1.0", cry: "2.0.0", cryLatest: "2.1.0"))
        await publisher.publishState(StatePayload(crying: false, since: started))
        await publisher.publishConfigState(ConfigStatePayload(gate: .init(threshold: 0.5), reason: .init(minConfidence: 0.4)))
        await publisher.publishFeedbackState(FeedbackStatePayload(episodeID: "e0", startedAt: started, label: nil))
        try await publisher.start()
        try await publisher.client.waitUntilConnected(timeout: .seconds(5))
        try await Task.sleep(for: .seconds(2))   // HA subscribes ~0.5 s after a config arrives

        let expected: Set<String> = [
            "binary_sensor.deepinfant_hacheck_crying", "sensor.deepinfant_hacheck_cry_reason", "event.deepinfant_hacheck_cry",
            "sensor.deepinfant_hacheck_sound_level", "sensor.deepinfant_hacheck_confidence",
            "sensor.deepinfant_hacheck_model_version", "sensor.deepinfant_hacheck_uptime",
            "sensor.deepinfant_hacheck_dropped_events", "number.deepinfant_hacheck_gate_cry_threshold",
            "number.deepinfant_hacheck_reason_confidence_threshold", "update.deepinfant_hacheck_model",
            "update.deepinfant_hacheck_cry_model", "update.deepinfant_hacheck_yamnet_model",
            "select.deepinfant_hacheck_last_cry_was",
        ]
        let entities = try json("entities", node)
        print("HA entities:\n" + entities.map { e in
            "\(e["entity_id"] ?? "?")  unique_id=\(e["unique_id"] ?? "?")  state=\(e["state"] ?? "?")"
        }.sorted().joined(separator: "\n"))
        #expect(Set(entities.compactMap { $0["entity_id"] as? String }) == expected)

        // Quiet state as published.
        var state = try states(node)
        #expect(state["binary_sensor.deepinfant_hacheck_crying"]?["state"] as? String == "off")
        #expect(state["sensor.deepinfant_hacheck_cry_reason"]?["state"] as? String == "none")
        #expect(state["number.deepinfant_hacheck_gate_cry_threshold"]?["state"] as? String == "0.5")
        #expect(state["number.deepinfant_hacheck_reason_confidence_threshold"]?["state"] as? String == "0.4")
        #expect(state["sensor.deepinfant_hacheck_model_version"]?["state"] as? String == "1.0.0")
        #expect(state["sensor.deepinfant_hacheck_uptime"]?["state"] as? String == "3600")
        #expect(state["update.deepinfant_hacheck_model"]?["state"] as? String == "on")   // 1.1.0 available
        // One update entity per model slot, with the installed and latest versions of its slot.
        func versions(_ id: String) -> String {
            let a = state[id]?["attributes"] as? [String: Any]
            return "\(state[id]?["state"] ?? "?") \(a?["installed_version"] ?? "?") \(a?["latest_version"] ?? "?")"
        }
        #expect(versions("update.deepinfant_hacheck_model") == "on 1.0.0 1.1.0")
        #expect(versions("update.deepinfant_hacheck_cry_model") == "on 2.0.0 2.1.0")
        #expect(versions("update.deepinfant_hacheck_yamnet_model") == "off 1.0.0 1.0.0")
        print("HA update entities: " + ["model", "cry_model", "yamnet_model"].map { "\($0): \(versions("update.deepinfant_hacheck_\($0)"))" }.joined(separator: "; "))
        // The cry head updated, the reason model's latest_version absent (as a node sends it when nothing
        // newer was announced): both up to date.
        await publisher.publishInfo(info(reasonLatest: nil, cry: "2.1.0", cryLatest: "2.1.0"))
        try await Task.sleep(for: .seconds(1))
        state = try states(node)
        #expect(versions("update.deepinfant_hacheck_model") == "off 1.0.0 1.0.0")
        #expect(versions("update.deepinfant_hacheck_cry_model") == "off 2.1.0 2.1.0")
        print("HA update entities after: " + ["model", "cry_model", "yamnet_model"].map { "\($0): \(versions("update.deepinfant_hacheck_\($0)"))" }.joined(separator: "; "))

        // A cry.
        let now = Date()
        await publisher.publishState(StatePayload(crying: true, reason: "hungry", confidence: 0.87, since: now, episodeID: "e1"))
        try await publisher.publishEvent(CryEventPayload(type: .start, episodeID: "e1", seq: 0, timestamp: now, startedAt: now,
                                                         reason: "hungry", confidence: 0.87,
                                                         probabilities: ["hungry": 0.87, "tired": 0.13], levelDBFS: -31.5,
                                                         modelVersion: "1.0.0"))
        await publisher.publishLevel(-31.5)
        try await Task.sleep(for: .seconds(1))
        state = try states(node)
        #expect(state["binary_sensor.deepinfant_hacheck_crying"]?["state"] as? String == "on")
        #expect(state["sensor.deepinfant_hacheck_cry_reason"]?["state"] as? String == "hungry")
        #expect(state["sensor.deepinfant_hacheck_confidence"]?["state"] as? String == "87.0")
        #expect(state["sensor.deepinfant_hacheck_sound_level"]?["state"] as? String == "-31.5")
        let event = state["event.deepinfant_hacheck_cry"]?["attributes"] as? [String: Any]
        #expect(event?["event_type"] as? String == "hungry")
        #expect(event?["episode_id"] as? String == "e1")
        print("HA states:\n" + state.keys.sorted().map { "\($0) = \(state[$0]?["state"] ?? "?")" }.joined(separator: "\n"))

        // The number entity's command template produces the merge patch on cmd/config.
        _ = try ha("call", "number", "set_value",
                   #"{"entity_id":"number.deepinfant_hacheck_gate_cry_threshold","value":0.65}"#)
        try await eventually("config command from HA") { !commands.commands.isEmpty }
        let patch = try #require(commands.commands.first)
        #expect(patch.name == "config")
        print("HA number.set_value 0.65 -> \(patch.topic): \(String(decoding: patch.payload, as: UTF8.self))")
        let object = try JSONSerialization.jsonObject(with: Data(patch.payload)) as? [String: Any]
        let threshold = (object?["gate"] as? [String: Any])?["cry_threshold"]
        #expect((threshold as? NSNumber)?.doubleValue == 0.65, "\(String(describing: threshold))")

        // The "Last cry was…" select: no answer yet reads unknown; its options are the reasons plus "not a
        // cry"; choosing one sends cmd/feedback for the latest episode; the node's retained answer shows.
        let select = "select.deepinfant_hacheck_last_cry_was"
        #expect(state[select]?["state"] as? String == "unknown")
        let options = (state[select]?["attributes"] as? [String: Any])?["options"] as? [String]
        #expect(options == labels + ["not a cry"])
        for (option, label) in [("not a cry", "not_cry"), ("tired", "tired")] {
            commands.clear()
            _ = try ha("call", "select", "select_option", #"{"entity_id":"\#(select)","option":"\#(option)"}"#)
            try await eventually("feedback command from HA") { commands.commands.contains { $0.name == "feedback" } }
            let sent = try #require(commands.commands.first { $0.name == "feedback" })
            print("HA select \(option) -> \(sent.topic): \(String(decoding: sent.payload, as: UTF8.self))")
            let body = try JSONSerialization.jsonObject(with: Data(sent.payload)) as? [String: Any]
            #expect(body?["episode_id"] as? String == "latest")
            #expect(body?["label"] as? String == label)
            await publisher.publishFeedbackState(FeedbackStatePayload(episodeID: "e1", startedAt: now, label: label))
            try await eventually("select shows \(option)") { try states(node)[select]?["state"] as? String == option }
        }

        let errors = try ha("errors", "--all")
        #expect(!errors.contains("hacheck") && !errors.contains("deepinfant") && !errors.contains("value_json"),
                "\(errors)")

        // The same node restarted with the crnn cry detector (no body): its yamnet update entity goes away.
        let crnn = HomeAssistantDiscovery(topics: topics, labels: labels, modelVersion: "1.0.0", softwareVersion: "0.1.0",
                                          modelSlots: ["reason", "cry"])
        for message in crnn.configs() + crnn.absentRemovals() {
            try await publisher.client.publish(topic: message.topic, payload: message.payload, qos: .atLeastOnce, retain: true)
        }
        try await Task.sleep(for: .seconds(1))
        let remaining = Set(try json("entities", node).compactMap { $0["entity_id"] as? String })
        #expect(remaining == expected.subtracting(["update.deepinfant_hacheck_yamnet_model"]), "\(remaining)")

        // Decommissioning: empty retained configs remove every entity.
        for removal in discovery.removals() {
            try await publisher.client.publish(topic: removal.topic, payload: [], qos: .atLeastOnce, retain: true)
        }
        try await Task.sleep(for: .seconds(1))
        #expect(try json("entities", node).isEmpty)
        await publisher.shutdown(deadline: .seconds(2))
    }
}
