import Foundation
import Testing
@testable import Messaging

@Suite("Authentication, TLS and ACL against a real mosquitto")
struct SecurityTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// Starts a client and returns it once it has either connected or recorded `failures` refusals.
    func run(_ settings: MQTTSettings, for duration: Duration) async throws -> (MQTTClient, StateRecorder) {
        let client = try MQTTClient(settings: settings)
        let recorder = StateRecorder(client.connectionStates())
        client.start()
        try await Task.sleep(for: duration)
        return (client, recorder)
    }

    @Test func anonymousClientIsRefusedWhenTheBrokerRequiresAuth() async throws {
        let broker = try MosquittoBroker(.init(allowAnonymous: false, users: ["nursery": "right"]))
        let (client, recorder) = try await run(testSettings(broker), for: .milliseconds(500))
        #expect(client.state != .connected)
        let error = try #require(recorder.errors.first)
        #expect(error.isAuthorizationFailure)
        #expect(error.description.contains("not authori"))
        print("anonymous: \(error)")
        await client.stop()
    }

    @Test func wrongPasswordGivesAClearErrorAndBacksOff() async throws {
        let broker = try MosquittoBroker(.init(allowAnonymous: false, users: ["nursery": "right"]))
        var settings = testSettings(broker, clientID: "nursery", username: "nursery", password: "wrong")
        settings.backoff = MQTTBackoff(initial: .milliseconds(200), cap: .milliseconds(800), multiplier: 2, jitter: 0.5)
        let started = ContinuousClock.now
        let (client, recorder) = try await run(settings, for: .milliseconds(1500))
        let attempts = client.connectionAttempts
        let elapsed = ContinuousClock.now - started
        #expect(!recorder.states.contains(.connected))
        let error = try #require(recorder.errors.first)
        #expect(error.isAuthorizationFailure, "\(error)")
        #expect(error.description.contains("refused") && error.description.contains("username and password"))
        print("wrong password: \(error)")
        // Delays 0.1-0.2, 0.2-0.4, then 0.4-0.8 s: about 4-6 attempts in 1.5 s; a tight loop would make
        // hundreds. The bound follows the time that really passed (a loaded CI machine sleeps long).
        let allowed = 4 + Int(elapsed / .milliseconds(400))
        #expect(attempts >= 2 && attempts <= allowed, "attempts: \(attempts) in \(elapsed), at most \(allowed)")
        // Each refusal announces a growing (jittered, capped) delay.
        let delays = recorder.states.compactMap { state -> Duration? in
            if case let .disconnected(_, retryIn) = state { return retryIn } else { return nil }
        }
        #expect(delays.allSatisfy { $0 <= .milliseconds(800) && $0 >= .milliseconds(100) })
        await client.stop()

        let good = try MQTTClient(settings: testSettings(broker, clientID: "nursery", username: "nursery", password: "right"))
        good.start()
        try await good.waitUntilConnected(timeout: .seconds(5))
        await good.stop()
    }

    @Test func tlsWithTheRightCAConnectsAndAWrongCAFailsClearly() async throws {
        let pki = try TestPKI()
        let broker = try MosquittoBroker(.init(tlsCertFile: pki.serverCert, tlsKeyFile: pki.serverKey))
        // Right CA, host name 127.0.0.1 is in the certificate's SAN: connects and works.
        let good = try MQTTClient(settings: testSettings(broker, tls: MQTTTLSSettings(caFile: pki.caFile)))
        let collector = MessageCollector(good.messages)
        try good.subscribe("tls/#", qos: .atLeastOnce)
        good.start()
        try await good.waitUntilConnected(timeout: .seconds(5))
        try await good.publish(topic: "tls/x", text: "secret", qos: .atLeastOnce)
        try await collector.wait(timeout: .seconds(3), "TLS round trip") { !$0.filter { $0.topic == "tls/x" }.isEmpty }
        await good.stop()

        // Wrong CA: a TLS error that names the verification failure, and no connection.
        let (bad, recorder) = try await run(testSettings(broker, tls: MQTTTLSSettings(caFile: pki.otherCAFile)),
                                            for: .milliseconds(600))
        #expect(!recorder.states.contains(.connected))
        let error = try #require(recorder.errors.first)
        guard case let .tls(detail) = error else {
            Issue.record("expected a TLS error, got \(error)")
            await bad.stop()
            return
        }
        #expect(detail.contains("certificate verify failed"), "\(detail)")
        print("wrong CA: \(error)")
        await bad.stop()

        // Plain MQTT against the TLS listener does not connect either.
        let (plain, plainRecorder) = try await run(testSettings(broker), for: .milliseconds(400))
        #expect(!plainRecorder.states.contains(.connected))
        await plain.stop()
    }

    @Test func tlsVerifiesTheHostName() async throws {
        // A certificate for "localhost" only, signed by the trusted CA: the chain is fine, 127.0.0.1 is not
        // a name it covers.
        let pki = try TestPKI(subjectAltName: "DNS:localhost")
        let broker = try MosquittoBroker(.init(tlsCertFile: pki.serverCert, tlsKeyFile: pki.serverKey))
        var settings = testSettings(broker, tls: MQTTTLSSettings(caFile: pki.caFile))
        let (byAddress, recorder) = try await run(settings, for: .milliseconds(400))
        #expect(!recorder.states.contains(.connected))
        #expect(recorder.errors.first.map { if case .tls = $0 { true } else { false } } == true,
                "\(recorder.errors)")
        await byAddress.stop()

        settings.host = "localhost"
        let byName = try MQTTClient(settings: settings)
        byName.start()
        try await byName.waitUntilConnected(timeout: .seconds(5))
        await byName.stop()

        // insecure=true skips only the name check.
        settings.host = "127.0.0.1"
        settings.tls?.insecure = true
        let insecure = try MQTTClient(settings: settings)
        insecure.start()
        try await insecure.waitUntilConnected(timeout: .seconds(5))
        await insecure.stop()
    }

    @Test func aclConfinesANodeToItsOwnTopics() async throws {
        let acl = Self.repositoryRoot.appendingPathComponent("deploy/mosquitto/acl").path
        #expect(FileManager.default.fileExists(atPath: acl))
        let broker = try MosquittoBroker(.init(allowAnonymous: false,
                                               users: ["nursery": "n-pass", "bedroom": "b-pass", "homeassistant": "ha-pass"],
                                               aclFile: acl))
        let (ha, haMessages) = try await makeSubscriber(broker, filters: ["deepinfant/#", "homeassistant/#"],
                                                        username: "homeassistant", password: "ha-pass",
                                                        probeTopic: "deepinfant/probe")
        // The node speaks MQTT 5 so that refusals come back as PUBACK reason codes.
        let node = try MQTTClient(settings: testSettings(broker, clientID: "nursery", username: "nursery",
                                                         password: "n-pass", protocolVersion: .v5))
        let nodeMessages = MessageCollector(node.messages)
        try node.subscribe("deepinfant/nursery/cmd/#", qos: .atLeastOnce)
        try node.subscribe("deepinfant/all/cmd/#", qos: .atLeastOnce)
        try node.subscribe("deepinfant/bedroom/#", qos: .atLeastOnce)   // not allowed to read: gets nothing
        node.start()
        try await node.waitUntilConnected(timeout: .seconds(5))
        try await Task.sleep(for: .milliseconds(100))

        // Own topics: delivered.
        try await node.publish(topic: "deepinfant/nursery/event", text: "{}", qos: .atLeastOnce)
        try await node.publish(topic: "homeassistant/sensor/nursery/x/config", text: "{}", qos: .atLeastOnce)
        // Someone else's: refused with "not authorized" and not delivered.
        await #expect(throws: MQTTError.self) {
            try await node.publish(topic: "deepinfant/bedroom/event", text: "{}", qos: .atLeastOnce)
        }
        do {
            try await node.publish(topic: "deepinfant/bedroom/cmd/config", text: "{}", qos: .atLeastOnce)
            Issue.record("publishing a command to another node should be refused")
        } catch let MQTTError.publishRejected(code, _) {
            #expect(code == 0x87)
        }
        try await haMessages.wait(timeout: .seconds(3), "own event and discovery") { messages in
            messages.contains { $0.topic == "deepinfant/nursery/event" }
                && messages.contains { $0.topic == "homeassistant/sensor/nursery/x/config" }
        }
        // Commands: its own and the group's reach it; another node's do not.
        try await ha.publish(topic: "deepinfant/nursery/cmd/config", text: "mine", qos: .atLeastOnce)
        try await ha.publish(topic: "deepinfant/all/cmd/ping", text: "all", qos: .atLeastOnce)
        try await ha.publish(topic: "deepinfant/bedroom/cmd/config", text: "theirs", qos: .atLeastOnce)
        try await ha.publish(topic: "deepinfant/bedroom/event", text: "theirs", qos: .atLeastOnce)
        try await nodeMessages.wait(timeout: .seconds(3), "own and group commands") { messages in
            messages.contains { $0.topic == "deepinfant/nursery/cmd/config" }
                && messages.contains { $0.topic == "deepinfant/all/cmd/ping" }
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(haMessages.messages(on: "deepinfant/bedroom/event").map(\.text) == ["theirs"])  // only HA's own
        #expect(nodeMessages.messages.allSatisfy { !$0.topic.hasPrefix("deepinfant/bedroom/") })
        await node.stop()
        await ha.stop()
    }
}
