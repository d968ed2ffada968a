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
        ("update", "cry_model"),
        ("update", "yamnet_model"),
        ("select", "last_cry"),
    ]

    /// One `update` entity per model slot (docs/control.md): the slot, its object id, entity name and title.
    /// The reason slot keeps the object id `model` it had before there were slots.
    public static let modelUpdates: [(slot: String, objectID: String, name: String, title: String)] = [
        ("reason", "model", "Model", "DeepInfant reason model"),
        ("cry", "cry_model", "Cry model", "DeepInfant cry model"),
        ("yamnet", "yamnet_model", "YAMNet model", "YAMNet body (AudioSet)"),
    ]

    public let topics: Topics
    public let labels: [String]
    public let modelVersion: String
    public let softwareVersion: String
    public let deviceName: String
    /// The node's model slots (`reason`, `cry`, `yamnet`): one `update` entity each. A crnn node has no
    /// `yamnet` slot; its entity is removed (``absentRemovals()``).
    public let modelSlots: [String]

    public init(topics: Topics, labels: [String], modelVersion: String, softwareVersion: String,
                deviceName: String? = nil, modelSlots: [String] = ["reason"]) {
        self.topics = topics
        self.labels = labels
        self.modelVersion = modelVersion
        self.softwareVersion = softwareVersion
        self.deviceName = deviceName ?? "DeepInfant \(topics.nodeID)"
        self.modelSlots = modelSlots
    }

    /// Entities this node has: all of ``entities`` except the `update` entities of slots it does not have.
    public var presentEntities: [(component: String, objectID: String)] {
        let absent = Set(Self.modelUpdates.filter { !modelSlots.contains($0.slot) }.map(\.objectID))
        return Self.entities.filter { !($0.component == "update" && absent.contains($0.objectID)) }
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
        presentEntities.map { entity in
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

    /// Empty retained payloads for the entities this node does not have (the `update` entity of a slot it
    /// lacks), sent with the configs: a node restarted with another cry detector leaves no stale entity.
    public func absentRemovals() -> [Message] {
        let present = Set(presentEntities.map { "\($0.component)/\($0.objectID)" })
        return Self.entities.filter { !present.contains("\($0.component)/\($0.objectID)") }.map {
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
        case "last_cry":
            // Sets the caregivers' answer for the most recent episode (cmd/feedback with episode_id "latest");
            // the retained feedback state shows the answer in force, "None" (HA: unknown) when there is none.
            let options = labels.filter { $0 != "unknown" } + [FeedbackStatePayload.notACry]
            return ["name": "Last cry was", "icon": "mdi:message-question-outline", "options": options,
                    "command_topic": topics.command("feedback"), "qos": 1,
                    "command_template": "{\"episode_id\":\"latest\",\"label\":{{ ('\(FeedbackStatePayload.notCry)' if value == '\(FeedbackStatePayload.notACry)' else value) | tojson }},\"source\":\"home_assistant\"}",
                    "state_topic": topics.feedback, "value_template": "{{ value_json.option }}"]
        case "model":
            // `latest_version` is optional in `info.model`: `default` tests for it without HA's
            // undefined-variable warning (which `a or b` on a missing key logs).
            return ["name": "Model", "title": "DeepInfant reason model", "entity_category": "diagnostic",
                    "state_topic": topics.info, "value_template": "{{ value_json.model.version }}",
                    "latest_version_topic": topics.info,
                    "latest_version_template": "{{ value_json.model.latest_version | default(value_json.model.version, true) }}"]
        default:
            guard let update = Self.modelUpdates.first(where: { $0.objectID == objectID }) else { return [:] }
            // `info.models` is a list of {slot, kind, name, version, latest_version}; an absent slot renders
            // empty, which HA's update entity ignores.
            let pick = "{% set m = value_json.models | default([]) | selectattr('slot', 'eq', '\(update.slot)') | first %}"
            return ["name": update.name, "title": update.title, "entity_category": "diagnostic",
                    "state_topic": topics.info, "value_template": pick + "{{ m.version if m is defined else '' }}",
                    "latest_version_topic": topics.info,
                    "latest_version_template": pick + "{{ (m.latest_version | default(m.version, true)) if m is defined else '' }}"]
        }
    }
}
