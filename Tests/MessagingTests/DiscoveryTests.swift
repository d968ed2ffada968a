import Foundation
import Testing
@testable import Messaging

@Suite("Home Assistant discovery payloads")
struct DiscoveryTests {
    let discovery = HomeAssistantDiscovery(topics: Topics(nodeID: "nursery"), labels: ["hungry", "tired", "belly_pain"],
                                           modelVersion: "1.0.0", softwareVersion: "0.1.0")

    func configs() throws -> [String: [String: Any]] {
        var result: [String: [String: Any]] = [:]
        for message in discovery.configs() {
            result[message.topic] = try #require(try JSONSerialization.jsonObject(with: Data(message.payload))
                                                 as? [String: Any])
        }
        return result
    }

    @Test func everyConfigHasUniqueIDDeviceAndAvailability() throws {
        let configs = try configs()
        // A node with only the reason slot has no cry_model / yamnet_model update entity.
        #expect(configs.count == HomeAssistantDiscovery.entities.count - 2)
        var uniqueIDs = Set<String>()
        for (topic, config) in configs {
            #expect(topic.hasPrefix("homeassistant/") && topic.hasSuffix("/config") && topic.contains("/nursery/"))
            let uniqueID = try #require(config["unique_id"] as? String)
            uniqueIDs.insert(uniqueID)
            #expect(config["availability_topic"] as? String == "deepinfant/nursery/status")
            let device = try #require(config["device"] as? [String: Any])
            #expect(device["identifiers"] as? [String] == ["deepinfant_nursery"])
            #expect(device["name"] as? String == "DeepInfant nursery")
            #expect(config["name"] is String)
            #expect(config["object_id"] == nil && config["default_entity_id"] == nil)
        }
        #expect(uniqueIDs.count == configs.count)
    }

    @Test func entitiesMatchTheContract() throws {
        let configs = try configs()
        let crying = try #require(configs["homeassistant/binary_sensor/nursery/crying/config"])
        #expect(crying["device_class"] as? String == "sound")
        #expect(crying["state_topic"] as? String == "deepinfant/nursery/state")
        let event = try #require(configs["homeassistant/event/nursery/cry/config"])
        #expect(event["event_types"] as? [String] == ["hungry", "tired", "belly_pain", "unknown"])
        #expect(event["state_topic"] as? String == "deepinfant/nursery/event")
        let gate = try #require(configs["homeassistant/number/nursery/gate_threshold/config"])
        #expect(gate["command_topic"] as? String == "deepinfant/nursery/cmd/config")
        #expect(gate["state_topic"] as? String == "deepinfant/nursery/config")
        // The gate rejects 0 and 1 (thresholds live in the open interval), so HA must not offer them.
        #expect(gate["min"] as? Double == 0.01 && gate["max"] as? Double == 0.99)
        // HA substitutes the number for {{ value }}; the result must be a JSON merge patch of the config
        // document (keys as in the TOML file: gate.cry_threshold, gate.reason_min_confidence).
        let template = try #require(gate["command_template"] as? String)
        let rendered = template.replacingOccurrences(of: "{{ value }}", with: "0.42")
        let patch = try #require(try JSONSerialization.jsonObject(with: Data(rendered.utf8)) as? [String: Any])
        #expect((patch["gate"] as? [String: Any])?["cry_threshold"] as? Double == 0.42)
        let reason = try #require(configs["homeassistant/number/nursery/reason_confidence_threshold/config"])
        let reasonRendered = (reason["command_template"] as? String ?? "").replacingOccurrences(of: "{{ value }}", with: "0.3")
        #expect(reasonRendered == #"{"gate":{"reason_min_confidence":0.3}}"#)
        #expect(configs["homeassistant/sensor/nursery/sound_level/config"]?["unit_of_measurement"] as? String == "dBFS")
        #expect(configs["homeassistant/sensor/nursery/uptime/config"]?["entity_category"] as? String == "diagnostic")
        #expect(configs["homeassistant/update/nursery/model/config"] != nil)
    }

    @Test func removalsAreEmptyRetainedPayloadsOnTheSameTopics() {
        // Every entity a node may have (all model slots), so `ha remove` leaves nothing behind.
        let removals = discovery.removals()
        #expect(removals.map(\.topic) == HomeAssistantDiscovery.entities.map { "homeassistant/\($0.component)/nursery/\($0.objectID)/config" })
        #expect(Set(discovery.configs().map(\.topic)).isSubset(of: Set(removals.map(\.topic))))
        #expect(removals.allSatisfy { $0.payload.isEmpty && $0.retain })
    }

    @Test("one update entity per model slot; the reason one keeps its object id, topics and unique id")
    func updateEntityPerSlot() throws {
        let yamnet = HomeAssistantDiscovery(topics: Topics(nodeID: "nursery"), labels: ["hungry"], modelVersion: "1.0.0",
                                            softwareVersion: "0.1.0", modelSlots: ["reason", "cry", "yamnet"])
        var configs: [String: [String: Any]] = [:]
        for message in yamnet.configs() {
            configs[message.topic] = try #require(try JSONSerialization.jsonObject(with: Data(message.payload)) as? [String: Any])
        }
        #expect(configs.count == HomeAssistantDiscovery.entities.count)
        #expect(yamnet.absentRemovals().isEmpty)
        let reason = try #require(configs["homeassistant/update/nursery/model/config"])
        #expect(reason["unique_id"] as? String == "deepinfant_nursery_model" && reason["name"] as? String == "Model")
        #expect(reason["state_topic"] as? String == "deepinfant/nursery/info" && reason["latest_version_topic"] as? String == "deepinfant/nursery/info")
        for (object, slot) in [("cry_model", "cry"), ("yamnet_model", "yamnet")] {
            let c = try #require(configs["homeassistant/update/nursery/\(object)/config"])
            #expect(c["unique_id"] as? String == "deepinfant_nursery_\(object)")
            #expect(c["state_topic"] as? String == "deepinfant/nursery/info" && c["entity_category"] as? String == "diagnostic")
            #expect((c["value_template"] as? String)?.contains("'\(slot)'") == true)
            #expect((c["latest_version_template"] as? String)?.contains("latest_version") == true)
        }
        // A crnn node (no body): the yamnet entity is removed by an empty retained config.
        let crnn = HomeAssistantDiscovery(topics: Topics(nodeID: "nursery"), labels: ["hungry"], modelVersion: "1.0.0",
                                          softwareVersion: "0.1.0", modelSlots: ["reason", "cry"])
        #expect(crnn.configs().count == HomeAssistantDiscovery.entities.count - 1)
        #expect(crnn.absentRemovals().map(\.topic) == ["homeassistant/update/nursery/yamnet_model/config"])
        #expect(crnn.absentRemovals().allSatisfy { $0.payload.isEmpty })
    }

    @Test("info carries one entry per model slot beside the reason model object")
    func infoModels() throws {
        let info = InfoPayload(nodeID: "n", softwareVersion: "0.1.0", model: .init(name: "r", version: "1.0.0", labels: ["hungry"]),
                               audioDevice: "hw:1,0", startedAt: Date(timeIntervalSince1970: 0), uptimeS: 1, configHash: "h",
                               models: [.init(slot: "reason", kind: "crnn", name: "r", version: "1.0.0", latestVersion: "1.0.0"),
                                        .init(slot: "cry", kind: "embedding_head", name: "head", version: "2.0.0", latestVersion: "2.1.0")])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(try PayloadJSON.encode(info))) as? [String: Any])
        let models = try #require(object["models"] as? [[String: Any]])
        #expect(models.map { $0["slot"] as? String } == ["reason", "cry"])
        #expect(models[1]["latest_version"] as? String == "2.1.0" && models[1]["kind"] as? String == "embedding_head")
        #expect((object["model"] as? [String: Any])?["version"] as? String == "1.0.0")
        // An info without `models` (a node older than model slots) still decodes.
        var old = object
        old["models"] = nil
        let decoded = try PayloadJSON.decode(InfoPayload.self, from: Array(try JSONSerialization.data(withJSONObject: old)))
        #expect(decoded.models == nil && decoded.model.version == "1.0.0")
    }
}
