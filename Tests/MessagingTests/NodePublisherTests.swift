import Foundation
import Testing
@testable import Messaging

/// Builds a cry event with the given sequence number; the episode id is fixed so (episode, seq) identify it.
func makeEvent(seq: Int, episode: String = "ep-test") -> CryEventPayload {
    let now = Date()
    return CryEventPayload(type: seq == 0 ? .start : .update, episodeID: episode, seq: seq, timestamp: now,
                           startedAt: now, reason: "hungry", confidence: 0.9,
                           probabilities: ["hungry": 0.9, "tired": 0.1], levelDBFS: -20, modelVersion: "1.0.0")
}

/// The (episode, seq) of every event message, in arrival order.
func receivedEvents(_ messages: [MQTTMessage], topic: String) -> [CryEventPayload] {
    messages.filter { $0.topic == topic }.compactMap { try? PayloadJSON.decode(CryEventPayload.self, from: $0.payload) }
}

/// Checks that every seq in `expected` arrived, and that first arrivals are in order. Returns the duplicates.
func checkDelivery(_ events: [CryEventPayload], expected: Range<Int>,
                   sourceLocation: SourceLocation = #_sourceLocation) -> Int {
    var seen = Set<Int>()
    var firstArrivals: [Int] = []
    for event in events where seen.insert(event.seq).inserted { firstArrivals.append(event.seq) }
    #expect(firstArrivals == Array(expected), "first arrivals out of order or missing", sourceLocation: sourceLocation)
    return events.count - firstArrivals.count
}

func makeNode(_ broker: MosquittoBroker, nodeID: String, outboxPath: String, discovery: Bool = true,
              labels: [String] = ["hungry", "tired"]) throws -> NodePublisher {
    let topics = Topics(nodeID: nodeID)
    let discovery = discovery ? HomeAssistantDiscovery(topics: topics, labels: labels, modelVersion: "1.0.0",
                                                       softwareVersion: "0.1.0") : nil
    return try NodePublisher(settings: testSettings(broker, clientID: nodeID), topics: topics,
                             outbox: try Outbox(path: outboxPath, bound: 1000), discovery: discovery,
                             discoverySettle: .zero, infoRefresh: nil)
}

@Suite("Node publisher against a real mosquitto")
struct NodePublisherTests {
    @Test func announcesOnConnectRepublishesDiscoveryAndRoutesCommands() async throws {
        let broker = try MosquittoBroker()
        let (ha, seen) = try await makeSubscriber(broker, filters: ["deepinfant/#", "homeassistant/#"])
        let outboxPath = try TestFiles.temporaryDirectory("node").appendingPathComponent("outbox.sqlite").path
        let node = try makeNode(broker, nodeID: "n1", outboxPath: outboxPath)
        let topics = node.topics
        let now = Date()
        // Published before the connection exists: remembered and sent on connect.
        await node.publishInfo(InfoPayload(nodeID: "n1", softwareVersion: "0.1.0",
                                           model: .init(name: "deepinfant-reason", version: "1.0.0", labels: ["hungry", "tired"]),
                                           audioDevice: "hw:1,0", startedAt: now, uptimeS: 0, configHash: "abc"))
        await node.publishState(StatePayload(crying: false, since: now))
        await node.publishConfigState(ConfigStatePayload(gate: .init(threshold: 0.5), reason: .init(minConfidence: 0.4)))
        let commands = CommandCollector(node.commands)
        try await node.start()

        let configCount = await node.discovery!.configs().count
        let configTopics = Set(await node.discovery!.configs().map(\.topic))
        try await seen.wait("status, info, state, config and discovery") { messages in
            messages.contains { $0.topic == topics.status && $0.text == "online" }
                && messages.contains { $0.topic == topics.info } && messages.contains { $0.topic == topics.state }
                && messages.contains { $0.topic == topics.configState }
                && Set(messages.map(\.topic)).isSuperset(of: configTopics)
        }
        let info = try PayloadJSON.decode(InfoPayload.self, from: seen.messages(on: topics.info).last!.payload)
        #expect(info.outboxPending == 0 && info.outboxDropped == 0 && info.audioDevice == "hw:1,0")

        // Retained: a subscriber arriving later gets all of it.
        let (late, lateSeen) = try await makeSubscriber(broker, filters: ["deepinfant/n1/#", "homeassistant/#"])
        try await lateSeen.wait("retained topics") { messages in
            let retained = messages.filter(\.retain)
            return retained.contains { $0.topic == topics.status && $0.text == "online" }
                && Set(retained.map(\.topic)).isSuperset(of: configTopics.union([topics.info, topics.state, topics.configState]))
        }
        await late.stop()

        // Home Assistant restarted: discovery again.
        try await ha.publish(topic: "homeassistant/status", text: "online", qos: .atLeastOnce)
        try await seen.wait("second round of discovery") { messages in
            messages.filter { configTopics.contains($0.topic) }.count >= 2 * configCount
        }

        // Commands for this node and for all nodes; not for others.
        try await ha.publish(topic: "deepinfant/n1/cmd/config", text: #"{"gate":{"threshold":0.6}}"#, qos: .atLeastOnce)
        try await ha.publish(topic: "deepinfant/n2/cmd/config", text: "not mine", qos: .atLeastOnce)
        try await ha.publish(topic: "deepinfant/all/cmd/ping", text: "", qos: .atLeastOnce)
        try await eventually("two commands") { commands.commands.count >= 2 }
        try await Task.sleep(for: .milliseconds(100))
        #expect(commands.commands.map(\.name) == ["config", "ping"])
        #expect(commands.commands.map(\.group) == [false, true])
        #expect(commands.commands.first?.payload == Array(#"{"gate":{"threshold":0.6}}"#.utf8))

        // Result, level, event.
        try await node.publishResult(ResultPayload(command: "config", requestID: "r1", ok: true))
        await node.publishLevel(-42.5)
        try await node.publishEvent(makeEvent(seq: 0))
        var unknown = makeEvent(seq: 1)
        unknown.reason = "colic"
        unknown.eventType = "colic"
        try await node.publishEvent(unknown)
        try await seen.wait("result, level and events") { messages in
            messages.contains { $0.topic == topics.result } && messages.contains { $0.topic == topics.level }
                && messages.filter { $0.topic == topics.event }.count >= 2
        }
        let level = try PayloadJSON.decode(LevelPayload.self, from: seen.messages(on: topics.level)[0].payload)
        #expect(level.levelDBFS == -42.5)
        let events = receivedEvents(seen.messages, topic: topics.event)
        #expect(events.map(\.eventType) == ["hungry", "unknown"])   // not a label: HA would reject it
        #expect(seen.messages(on: topics.event).allSatisfy { !$0.retain })
        try await eventually("outbox emptied on PUBACK") { await node.outboxCounters().pending == 0 }

        // Shutdown: offline, retained.
        await node.shutdown(deadline: .seconds(2))
        try await seen.wait("offline") { $0.contains { $0.topic == topics.status && $0.text == "offline" } }
        #expect(node.client.state == .stopped)
        await ha.stop()
    }

    @Test func brokerOutageMidStreamLosesNothingAndKeepsOrder() async throws {
        let broker = try MosquittoBroker(.init(persistence: true))
        // A persistent session: the broker queues events for the subscriber while it is reconnecting too.
        let (subscriber, seen) = try await makeSubscriber(broker, filters: ["deepinfant/n2/event"],
                                                          clientID: "outage-observer", cleanSession: false)
        let outboxPath = try TestFiles.temporaryDirectory("node").appendingPathComponent("outbox.sqlite").path
        let node = try makeNode(broker, nodeID: "n2", outboxPath: outboxPath, discovery: false)
        try await node.start()
        try await node.client.waitUntilConnected(timeout: .seconds(5))
        let total = 40
        for seq in 0..<total {
            if seq == 10 { broker.stop() }
            if seq == 25 { try broker.start() }
            try await node.publishEvent(makeEvent(seq: seq))
            if seq == 24 {
                // Events 10...24 were produced while the broker was down: they are on disk, not lost.
                #expect(await node.outboxCounters().pending >= 15)
            }
            try await Task.sleep(for: .milliseconds(15))
        }
        let messages = try await seen.wait(timeout: .seconds(10), "all \(total) events") { messages in
            Set(receivedEvents(messages, topic: "deepinfant/n2/event").map(\.seq)).count == total
        }
        let duplicates = checkDelivery(receivedEvents(messages, topic: "deepinfant/n2/event"), expected: 0..<total)
        print("outage test: \(total) events delivered in order, \(duplicates) duplicates")
        try await eventually("outbox drained") { await node.outboxCounters().pending == 0 }
        #expect(await node.outboxCounters().dropped == 0)
        await node.shutdown(deadline: .seconds(2))
        await subscriber.stop()
    }

    @Test func fullOutboxDropsOldestAndReportsIt() async throws {
        let broker = try MosquittoBroker(.init(persistence: true))
        // Subscribed with a persistent session before the outage, so it cannot miss the backlog.
        let (subscriber, seen) = try await makeSubscriber(broker, filters: ["deepinfant/n3/#"],
                                                          clientID: "drop-observer", cleanSession: false)
        broker.stop()
        let outboxPath = try TestFiles.temporaryDirectory("node").appendingPathComponent("outbox.sqlite").path
        let topics = Topics(nodeID: "n3")
        let node = try NodePublisher(settings: testSettings(broker, clientID: "n3"), topics: topics,
                                     outbox: try Outbox(path: outboxPath, bound: 5), discovery: nil,
                                     discoverySettle: .zero, infoRefresh: nil)
        try await node.start()
        for seq in 0..<8 { try await node.publishEvent(makeEvent(seq: seq)) }
        #expect(await node.outboxCounters() == (pending: 5, dropped: 3))
        // The newest five survive and are what gets sent once the broker is back.
        try broker.start()
        let messages = try await seen.wait(timeout: .seconds(5), "5 events and info") { messages in
            receivedEvents(messages, topic: topics.event).count >= 5
        }
        #expect(receivedEvents(messages, topic: topics.event).map(\.seq) == [3, 4, 5, 6, 7])
        await node.publishInfo(InfoPayload(nodeID: "n3", softwareVersion: "0", model: .init(name: "m", version: "1", labels: []),
                                           audioDevice: "-", startedAt: Date(), uptimeS: 0, configHash: "-"))
        let withInfo = try await seen.wait("info") { !$0.filter { $0.topic == topics.info }.isEmpty }
        let info = try PayloadJSON.decode(InfoPayload.self, from: withInfo.first { $0.topic == topics.info }!.payload)
        #expect(info.outboxDropped == 3)
        await node.shutdown(deadline: .seconds(2))
        await subscriber.stop()
    }
}

final class CommandCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var collected: [NodeCommand] = []
    private var task: Task<Void, Never>?

    init(_ stream: AsyncStream<NodeCommand>) {
        task = Task { [weak self] in
            for await command in stream {
                guard let self else { return }
                self.lock.withLock { self.collected.append(command) }
            }
        }
    }

    deinit { task?.cancel() }
    var commands: [NodeCommand] { lock.withLock { collected } }
    func clear() { lock.withLock { collected = [] } }
}
