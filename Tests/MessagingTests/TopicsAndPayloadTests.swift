import Foundation
import Testing
@testable import Messaging

@Suite("Topics and payloads")
struct TopicsAndPayloadTests {
    @Test func sanitizesNodeIDs() {
        #expect(Topics.sanitizeNodeID("Nursery-Pi") == "nursery-pi")
        #expect(Topics.sanitizeNodeID("kid's room #2") == "kid_s_room__2")
        #expect(Topics.sanitizeNodeID("") == "node")
        #expect(Topics.sanitizeNodeID("///") == "node")
        #expect(Topics.sanitizeNodeID("ALL") == "all-node")
        #expect(Topics.sanitizeNodeID("chambre-bébé") == "chambre-b_b_")
        #expect(Topics.sanitizeNodeID(String(repeating: "a", count: 100)).count == 64)
        #expect(Topics.defaultNodeID().allSatisfy { "abcdefghijklmnopqrstuvwxyz0123456789_-".contains($0) })
    }

    @Test func computesTheTopicContract() {
        let topics = Topics(prefix: "deepinfant/", nodeID: "Nursery", discoveryPrefix: "ha")
        #expect(topics.status == "deepinfant/nursery/status")
        #expect(topics.info == "deepinfant/nursery/info")
        #expect(topics.event == "deepinfant/nursery/event")
        #expect(topics.state == "deepinfant/nursery/state")
        #expect(topics.level == "deepinfant/nursery/level")
        #expect(topics.result == "deepinfant/nursery/result")
        #expect(topics.configState == "deepinfant/nursery/config")
        #expect(topics.command("config") == "deepinfant/nursery/cmd/config")
        #expect(topics.groupCommand("ping") == "deepinfant/all/cmd/ping")
        #expect(topics.commandFilter == "deepinfant/nursery/cmd/+")
        #expect(topics.groupCommandFilter == "deepinfant/all/cmd/+")
        #expect(topics.homeAssistantStatus == "ha/status")
        #expect(topics.discoveryConfig(component: "sensor", objectID: "uptime") == "ha/sensor/nursery/uptime/config")
        #expect(topics.commandName(in: "deepinfant/nursery/cmd/config")! == ("config", false))
        #expect(topics.commandName(in: "deepinfant/all/cmd/ping")! == ("ping", true))
        #expect(topics.commandName(in: "deepinfant/other/cmd/config") == nil)
        #expect(topics.commandName(in: "deepinfant/nursery/cmd/") == nil)
        #expect(topics.commandName(in: "deepinfant/nursery/cmd/a/b") == nil)
    }

    @Test func eventPayloadIsSnakeCaseWithISOTimestamps() throws {
        let start = Date(timeIntervalSince1970: 1_764_000_000.25)
        let event = CryEventPayload(type: .end, episodeID: "ep-1", seq: 3, timestamp: start.addingTimeInterval(4),
                                    startedAt: start, endedAt: start.addingTimeInterval(4), durationS: 4,
                                    reason: "hungry", confidence: 0.83,
                                    probabilities: ["hungry": 0.83, "belly_pain": 0.1, "tired": 0.07],
                                    levelDBFS: -23.5, modelVersion: "1.2.0")
        let bytes = try PayloadJSON.encode(event)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(Set(object.keys) == ["type", "episode_id", "seq", "timestamp", "started_at", "ended_at", "duration_s",
                                     "reason", "confidence", "probabilities", "level_dbfs", "model_version",
                                     "event_type"])
        #expect(object["started_at"] as? String == "2025-11-24T16:00:00.250Z")
        #expect(object["type"] as? String == "end")
        #expect(object["event_type"] as? String == "hungry")
        #expect((object["probabilities"] as? [String: Double])?["belly_pain"] == 0.1)
        #expect(try PayloadJSON.decode(CryEventPayload.self, from: bytes) == event)
    }

    /// A restarted node publishes its saved open event again; consumers drop repeats only if the bytes match.
    @Test("a timestamp formats the same after a parse, to the millisecond")
    func timestampsSurviveARoundTrip() throws {
        for i in 0..<20_000 {
            let text = PayloadJSON.formatTimestamp(Date(timeIntervalSince1970: 1_796_310_000 + Double(i) * 0.0137))
            let again = try #require(PayloadJSON.parseTimestamp(text))
            #expect(PayloadJSON.formatTimestamp(again) == text)
            if PayloadJSON.formatTimestamp(again) != text { return }
        }
        #expect(PayloadJSON.formatTimestamp(Date(timeIntervalSince1970: 1_796_310_000.9996)) == "2026-12-03T15:00:01.000Z")
        #expect(PayloadJSON.formatTimestamp(Date(timeIntervalSince1970: 1_796_310_000.0137)) == "2026-12-03T15:00:00.014Z")
        let event = CryEventPayload(type: .start, episodeID: "e", seq: 0, timestamp: Date(timeIntervalSince1970: 1_796_310_915.79),
                                    startedAt: Date(timeIntervalSince1970: 1_796_310_914.29), reason: "hungry", confidence: 0.8,
                                    probabilities: ["hungry": 0.8], levelDBFS: -20, modelVersion: "1.0.0")
        let bytes = try PayloadJSON.encode(event)
        #expect(try PayloadJSON.encode(try PayloadJSON.decode(CryEventPayload.self, from: bytes)) == bytes)
    }

    @Test func otherPayloadsRoundTrip() throws {
        let now = Date(timeIntervalSince1970: 1_764_000_000)
        let state = StatePayload(crying: true, reason: "tired", confidence: 0.7, since: now, episodeID: "e")
        #expect(try PayloadJSON.decode(StatePayload.self, from: PayloadJSON.encode(state)) == state)
        let quiet = StatePayload(crying: false, since: now)
        #expect(String(decoding: try PayloadJSON.encode(quiet), as: UTF8.self)
                == #"{"confidence":null,"crying":false,"episode_id":null,"reason":null,"since":"2025-11-24T16:00:00.000Z"}"#)
        #expect(try PayloadJSON.decode(StatePayload.self, from: PayloadJSON.encode(quiet)) == quiet)
        let info = InfoPayload(nodeID: "n", softwareVersion: "0.1.0",
                               model: .init(name: "deepinfant-reason", version: "1", labels: ["hungry"]),
                               audioDevice: "hw:1", startedAt: now, uptimeS: 5, configHash: "abc")
        let infoJSON = String(decoding: try PayloadJSON.encode(info), as: UTF8.self)
        #expect(infoJSON.contains("\"software_version\":\"0.1.0\""))
        #expect(infoJSON.contains("\"outbox_dropped\":0"))
        #expect(try PayloadJSON.decode(InfoPayload.self, from: PayloadJSON.encode(info)) == info)
        let config = ConfigStatePayload(gate: .init(threshold: 0.5), reason: .init(minConfidence: 0.4))
        #expect(String(decoding: try PayloadJSON.encode(config), as: UTF8.self)
                == #"{"gate":{"threshold":0.5},"reason":{"min_confidence":0.4}}"#)
        let result = ResultPayload(command: "config", requestID: "r1", ok: false, message: "nope", timestamp: now)
        #expect(String(decoding: try PayloadJSON.encode(result), as: UTF8.self).contains("\"request_id\":\"r1\""))
    }

    @Test func backoffGrowsExponentiallyUpToTheCapWithJitterBelowIt() {
        let backoff = MQTTBackoff(initial: .milliseconds(500), cap: .seconds(30), multiplier: 2, jitter: 0.5)
        #expect(backoff.ceiling(attempt: 0) == .milliseconds(500))
        #expect(backoff.ceiling(attempt: 3) == .seconds(4))
        #expect(backoff.ceiling(attempt: 10) == .seconds(30))
        #expect(backoff.ceiling(attempt: 10_000) == .seconds(30))
        var delays: [Double] = []
        for _ in 0..<200 {
            let delay = backoff.delay(attempt: 4).seconds
            #expect(delay >= 4 && delay <= 8)
            delays.append(delay)
        }
        // Jitter: the delays are spread out, not one value.
        #expect((delays.max()! - delays.min()!) > 1)
    }

    @Test func parsesBrokerURLs() throws {
        let plain = try MQTTSettings.parseBrokerURL("mqtt://10.0.0.2:1884")
        #expect(plain.host == "10.0.0.2" && plain.port == 1884 && !plain.secure)
        let secure = try MQTTSettings.parseBrokerURL("mqtts://u:p@broker.lan")
        #expect(secure.port == 8883 && secure.secure && secure.username == "u" && secure.password == "p")
        #expect(throws: MQTTError.self) { try MQTTSettings.parseBrokerURL("http://x") }
        #expect(throws: MQTTError.self) { try MQTTSettings.parseBrokerURL("nonsense") }
    }
}
