import Foundation
import Glibc
import Testing
@testable import Messaging

@Suite("MQTT client against a real mosquitto")
struct ClientTests {
    @Test(arguments: [MQTTProtocolVersion.v311, .v5])
    func publishesAndReceivesWithEveryQoSAndRetain(version: MQTTProtocolVersion) async throws {
        let broker = try MosquittoBroker()
        let (subscriber, collector) = try await makeSubscriber(broker, filters: ["rt/#"])
        let publisher = try MQTTClient(settings: testSettings(broker, protocolVersion: version))
        publisher.start()
        try await publisher.waitUntilConnected(timeout: .seconds(5))
        for qos in [MQTTQoS.atMostOnce, .atLeastOnce, .exactlyOnce] {
            try await publisher.publish(topic: "rt/q\(qos.rawValue)", text: "hello \(qos.rawValue)", qos: qos)
        }
        try await publisher.publish(topic: "rt/retained", text: "kept", qos: .atLeastOnce, retain: true)
        let received = try await collector.wait(timeout: .seconds(5), "3 QoS messages + retained") { messages in
            messages.filter { $0.topic.hasPrefix("rt/") }.count >= 4
        }
        #expect(Set(received.filter { $0.topic.hasPrefix("rt/q") }.map(\.text)) == ["hello 0", "hello 1", "hello 2"])
        #expect(received.first { $0.topic == "rt/q2" }?.qos == .exactlyOnce)

        // A late subscriber gets the retained message, flagged as retained.
        let (late, lateCollector) = try await makeSubscriber(broker, filters: ["rt/retained"])
        let retained = try await lateCollector.wait(timeout: .seconds(5), "retained") { !$0.filter { $0.topic == "rt/retained" }.isEmpty }
        #expect(retained.first { $0.topic == "rt/retained" }.map { $0.retain && $0.text == "kept" } == true)

        // Unsubscribe: nothing more arrives for the filter.
        try subscriber.unsubscribe("rt/#")
        try await Task.sleep(for: .milliseconds(100))
        try await publisher.publish(topic: "rt/after", text: "x", qos: .atLeastOnce)
        try await Task.sleep(for: .milliseconds(200))
        #expect(collector.messages(on: "rt/after").isEmpty)

        await publisher.stop()
        await subscriber.stop()
        await late.stop()
        #expect(publisher.state == .stopped)
    }

    @Test func measuresPublishToReceiveLatencyOnLoopback() async throws {
        let broker = try MosquittoBroker()
        let (subscriber, collector) = try await makeSubscriber(broker, filters: ["lat/#"])
        let publisher = try MQTTClient(settings: testSettings(broker))
        publisher.start()
        try await publisher.waitUntilConnected(timeout: .seconds(5))
        var latencies: [Double] = []
        for index in 0..<50 {
            let start = ContinuousClock.now
            // Not awaiting the PUBACK: the clock stops when the subscriber has the message.
            try publisher.enqueue(topic: "lat/\(index)", payload: Array("\(index)".utf8), qos: .atLeastOnce)
            try await collector.wait(timeout: .seconds(2), "message \(index)") { $0.contains { $0.topic == "lat/\(index)" } }
            let arrival = try #require(collector.arrival(of: "lat/\(index)"))
            latencies.append((arrival - start).seconds * 1000)
        }
        latencies.sort()
        let median = latencies[latencies.count / 2]
        let p95 = latencies[Int(Double(latencies.count) * 0.95)]
        print(String(format: "MQTT loopback QoS1 publish->receive latency: median %.2f ms, p95 %.2f ms, max %.2f ms",
                     median, p95, latencies.last!))
        #expect(median < 100)
        await publisher.stop()
        await subscriber.stop()
    }

    @Test func reconnectsAfterTheBrokerRestartsAndResubscribes() async throws {
        let broker = try MosquittoBroker(.init(persistence: false))
        let client = try MQTTClient(settings: testSettings(broker))
        let collector = MessageCollector(client.messages)
        let states = StateRecorder(client.connectionStates())
        try client.subscribe("re/#", qos: .atLeastOnce)
        client.start()
        try await client.waitUntilConnected(timeout: .seconds(5))
        broker.stop()
        try await eventually("disconnected") { client.state != .connected }
        try await Task.sleep(for: .milliseconds(600))
        try broker.start()
        try await client.waitUntilConnected(timeout: .seconds(5))
        // The subscription was renewed on the new connection.
        try await client.publish(topic: "re/x", text: "again", qos: .atLeastOnce)
        try await collector.wait(timeout: .seconds(3), "message after reconnect") { !$0.filter { $0.topic == "re/x" }.isEmpty }
        // The recorder drains the state stream on its own task: on a loaded machine the second `connected`
        // can arrive a moment after the client reports it (seen once in CI).
        try await eventually("the second connected state recorded") { states.states.filter { $0 == .connected }.count >= 2 }
        let recorded = states.states
        #expect(recorded.filter { $0 == .connected }.count == 2)
        // The outage produced disconnected states carrying the network error and a backoff delay.
        let outage = recorded.compactMap { state -> (MQTTError?, Duration?)? in
            if case let .disconnected(error, retryIn) = state { return (error, retryIn) }
            return nil
        }
        #expect(!outage.isEmpty)
        #expect(outage.allSatisfy { $0.0 != nil && ($0.1 ?? .zero) <= testBackoff.cap })
        await client.stop()
    }
}

extension ClientTests {
    /// A listener whose accept queue is full drops SYNs, so a blocking connect() hangs like one to a host that
    /// has vanished from the network. stop() must not wait for the kernel to give up.
    @Test func stopReturnsWhileAConnectIsHanging() async throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        listen(listener, 0)
        let port = Int(UInt16(bigEndian: address.sin_port))
        var fillers: [Int32] = []
        defer { fillers.forEach { close($0) } }
        for _ in 0..<3 {   // fill the accept queue (backlog 0 admits one or two)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) } }
            fillers.append(fd)
        }
        try await Task.sleep(for: .milliseconds(100))
        let client = try MQTTClient(settings: MQTTSettings(host: "127.0.0.1", port: port, clientID: "hang", backoff: testBackoff))
        client.start()
        try await Task.sleep(for: .milliseconds(300))
        #expect(client.state == .connecting(attempt: 0))
        let start = ContinuousClock.now
        await client.stop(timeout: .milliseconds(500))
        #expect(ContinuousClock.now - start < .seconds(2))
    }
}

/// Records every connection state in the background.
final class StateRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [MQTTConnectionState] = []
    private var task: Task<Void, Never>?

    init(_ stream: AsyncStream<MQTTConnectionState>) {
        task = Task { [weak self] in
            for await state in stream {
                guard let self else { return }
                self.lock.withLock { self.recorded.append(state) }
            }
        }
    }

    deinit { task?.cancel() }

    var states: [MQTTConnectionState] { lock.withLock { recorded } }

    var errors: [MQTTError] {
        states.compactMap { if case let .disconnected(error, _) = $0 { return error } else { return nil } }
    }
}
