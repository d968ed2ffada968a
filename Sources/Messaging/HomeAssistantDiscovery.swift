import Foundation

/// Home Assistant MQTT discovery for one node: the retained `config` messages that make HA create a device
/// with its entities, and the empty retained messages that remove them again.
///
/// Entity ids come from the device name plus the entity name (`binary_sensor.deepinfant_<node>_crying`); no
/// `object_id`/`default_entity_id` is sent, as HA deprecates the former and 2025.4 ignores the latter. Every
/// entity is available only while `<prefix>/<node>/status` is `online`.
public struct HomeAssistantDiscovery: Sendable, Equatable {
    /// One retained message to publish.
    public struct Message: Sendable, Equatable {
        public var topic: String
        public var payload: [UInt8]
        public var retain: Bool { true }
    }

    /// The entities, by (component, object id). The object id is the last-but-one topic level and part of the
    /// unique id; changing one orphans the entity in users' HA installs.
    public static let entities: [(component: String, objectID: String)] = [
        ("binary_sensor", "crying"),
        ("sensor", "cry_reason"),
        ("event", "cry"),
        ("sensor", "sound_level"),
        ("sensor", "confidence"),
        ("sensor", "model_version"),
        ("sensor", "uptime"),
        ("sensor", "dropped_events"),
        ("number", "gate_threshold"),
        ("number", "reason_confidence_threshold"),
        ("update", "model"),
    ]

    public let topics: Topics
    public let labels: [String]
    public let modelVersion: String
    public let softwareVersion: String
    public let deviceName: String

    public init(topics: Topics, labels: [String], modelVersion: String, softwareVersion: String,
                deviceName: String? = nil) {
        self.topics = topics
        self.labels = labels
        self.modelVersion = modelVersion
        self.softwareVersion = softwareVersion
        self.deviceName = deviceName ?? "DeepInfant \(topics.nodeID)"
    }

    /// The `event` entity's `event_types`: the model's labels plus `unknown`, for reasons below the
    /// confidence threshold or labels the entity was not told about.
    public var eventTypes: [String] {
        var types = labels
        if !types.contains("unknown") { types.append("unknown") }
        return types
    }

    /// The retained config messages, one per entity.
    public func configs() -> [Message] {
        Self.entities.map { entity in
            var config = entityConfig(component: entity.component, objectID: entity.objectID)
            config["unique_id"] = "deepinfant_\(topics.nodeID)_\(entity.objectID)"
            config["availability_topic"] = topics.status
            config["payload_available"] = "online"
            config["payload_not_available"] = "offline"
            config["device"] = device
            config["origin"] = ["name": "deepinfant-edge", "sw_version": softwareVersion]
            let data = (try? JSONSerialization.data(withJSONObject: config,
                                                    options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            return Message(topic: topics.discoveryConfig(component: entity.component, objectID: entity.objectID),
                           payload: Array(data))
        }
    }

    /// Empty retained payloads on every config topic: HA deletes the entities (and the device once empty).
    public func removals() -> [Message] {
        Self.entities.map {
            Message(topic: topics.discoveryConfig(component: $0.component, objectID: $0.objectID), payload: [])
        }
    }

    private var device: [String: Any] {
        ["identifiers": ["deepinfant_\(topics.nodeID)"], "name": deviceName, "manufacturer": "DeepInfant",
         "model": "DeepInfant Edge", "sw_version": softwareVersion]
    }

    private func entityConfig(component: String, objectID: String) -> [String: Any] {
        switch objectID {
        case "crying":
            return ["name": "Crying", "device_class": "sound", "state_topic": topics.state,
                    "value_template": "{{ 'ON' if value_json.crying else 'OFF' }}",
                    "json_attributes_topic": topics.state]
        case "cry_reason":
            return ["name": "Cry reason", "icon": "mdi:emoticon-cry-outline", "state_topic": topics.state,
                    "device_class": "enum", "options": eventTypes + ["none"],
                    "value_template": "{{ (value_json.reason | default('none', true)) if value_json.crying else 'none' }}"]
        case "cry":
            // The event payload carries `event_type` itself, so no template is needed; the other keys of the
            // payload (type, episode_id, seq, confidence, ...) become the event's attributes.
            return ["name": "Cry", "state_topic": topics.event, "event_types": eventTypes, "qos": 1,
                    "icon": "mdi:baby-face-outline"]
        case "sound_level":
            // dBFS is not a unit HA's sound_pressure device class accepts, so no device class.
            return ["name": "Sound level", "state_topic": topics.level, "unit_of_measurement": "dBFS",
                    "state_class": "measurement", "suggested_display_precision": 1, "icon": "mdi:volume-high",
                    "value_template": "{{ value_json.level_dbfs }}"]
        case "confidence":
            return ["name": "Confidence", "state_topic": topics.state, "unit_of_measurement": "%",
                    "state_class": "measurement", "suggested_display_precision": 0,
                    "value_template": "{{ ((value_json.confidence | default(0, true)) * 100) | round(1) }}"]
        case "model_version":
            return ["name": "Model version", "state_topic": topics.info, "entity_category": "diagnostic",
                    "value_template": "{{ value_json.model.version }}", "icon": "mdi:brain"]
        case "uptime":
            return ["name": "Uptime", "state_topic": topics.info, "entity_category": "diagnostic",
                    "device_class": "duration", "unit_of_measurement": "s",
                    "value_template": "{{ value_json.uptime_s | round(0) }}"]
        case "dropped_events":
            return ["name": "Dropped events", "state_topic": topics.info, "entity_category": "diagnostic",
                    "state_class": "total", "value_template": "{{ value_json.outbox_dropped }}",
                    "icon": "mdi:tray-remove"]
        case "gate_threshold":
            // The gate accepts thresholds in (0, 1), so the slider stops one step inside both ends.
            return ["name": "Gate cry threshold", "entity_category": "config", "min": 0.01, "max": 0.99, "step": 0.01,
                    "mode": "box", "command_topic": topics.command("config"),
                    "command_template": "{\"gate\":{\"cry_threshold\":{{ value }}}}",
                    "state_topic": topics.configState, "value_template": "{{ value_json.gate.threshold }}"]
        case "reason_confidence_threshold":
            return ["name": "Reason confidence threshold", "entity_category": "config", "min": 0, "max": 1,
                    "step": 0.01, "mode": "box", "command_topic": topics.command("config"),
                    "command_template": "{\"gate\":{\"reason_min_confidence\":{{ value }}}}",
                    "state_topic": topics.configState, "value_template": "{{ value_json.reason.min_confidence }}"]
        case "model":
            return ["name": "Model", "title": "DeepInfant reason model", "entity_category": "diagnostic",
                    "state_topic": topics.info, "value_template": "{{ value_json.model.version }}",
                    "latest_version_topic": topics.info,
                    "latest_version_template": "{{ value_json.model.latest_version or value_json.model.version }}"]
        default:
            return [:]
        }
    }
}
