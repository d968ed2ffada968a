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
        #expect(configs.count == HomeAssistantDiscovery.entities.count)
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
        let removals = discovery.removals()
        #expect(removals.map(\.topic) == discovery.configs().map(\.topic))
        #expect(removals.allSatisfy { $0.payload.isEmpty && $0.retain })
    }
}
