import Foundation
import TestSupport
import Glibc
import Testing
@testable import Messaging

/// The environment that turns `outboxChildProcess` from a skipped test into the child agent of
/// `eventsSurviveSIGKILLWhileTheBrokerIsDown`.
private enum ChildEnvironment {
    static let database = "DEEPINFANT_OUTBOX_CHILD_DB"
    static let port = "DEEPINFANT_OUTBOX_CHILD_PORT"
    static let mode = "DEEPINFANT_OUTBOX_CHILD_MODE"      // produce | drain
    static let first = "DEEPINFANT_OUTBOX_CHILD_FIRST"
    static let count = "DEEPINFANT_OUTBOX_CHILD_COUNT"
    static let node = "kid"

    static var isChild: Bool { ProcessInfo.processInfo.environment[database] != nil }
}

@Suite("Crash recovery with a child process")
struct CrashRecoveryTests {
    /// Runs only inside the child process: a node that produces events (then waits to be killed) or drains its
    /// outbox and exits. It re-uses this test binary, so it exercises exactly the code under test.
    @Test(.enabled(if: ChildEnvironment.isChild, "runs only as the child of the SIGKILL test"))
    func outboxChildProcess() async throws {
        let environment = ProcessInfo.processInfo.environment
        let database = try #require(environment[ChildEnvironment.database])
        let port = try #require(environment[ChildEnvironment.port].flatMap(Int.init))
        let mode = environment[ChildEnvironment.mode] ?? "produce"
        let first = environment[ChildEnvironment.first].flatMap(Int.init) ?? 0
        let count = environment[ChildEnvironment.count].flatMap(Int.init) ?? 0
        let topics = Topics(nodeID: ChildEnvironment.node)
        let settings = MQTTSettings(host: "127.0.0.1", port: port, clientID: ChildEnvironment.node, keepalive: 5,
                                    backoff: testBackoff)
        let node = try NodePublisher(settings: settings, topics: topics, outbox: try Outbox(path: database, bound: 1000),
                                     discovery: nil, discoverySettle: .zero, infoRefresh: nil)
        try await node.start()
        if mode == "produce" {
            for seq in first..<(first + count) {
                try await node.publishEvent(makeEvent(seq: seq, episode: "ep-crash"))
                say("PERSISTED \(seq)")
                try await Task.sleep(for: .milliseconds(10))
            }
            say("PRODUCED")
            try await Task.sleep(for: .seconds(60))   // waiting for SIGKILL
        } else {
            let deadline = ContinuousClock.now + .seconds(15)
            while await node.outboxCounters().pending > 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            let left = await node.outboxCounters().pending
            await node.shutdown(deadline: .seconds(2))
            say(left == 0 ? "DRAINED" : "NOT DRAINED \(left)")
        }
    }

    @Test(.enabled(if: !ChildEnvironment.isChild))
    func eventsSurviveSIGKILLWhileTheBrokerIsDown() async throws {
        let broker = try MosquittoBroker(.init(persistence: true))
        let (observer, seen) = try await makeSubscriber(broker, filters: ["deepinfant/kid/#"],
                                                        clientID: "crash-observer", cleanSession: false)
        let directory = try TestFiles.temporaryDirectory("crash")
        let database = directory.appendingPathComponent("outbox.sqlite").path
        let topics = Topics(nodeID: ChildEnvironment.node)

        func child(_ mode: String, first: Int = 0, count: Int = 0, log: String) throws -> (pid_t, String) {
            let output = directory.appendingPathComponent(log).path
            let pid = try ChildProcess.spawn(CommandLine.arguments[0],
                                             ["--testing-library", "swift-testing", "--filter", "outboxChildProcess"],
                                             environment: [ChildEnvironment.database: database,
                                                           ChildEnvironment.port: String(broker.port),
                                                           ChildEnvironment.mode: mode,
                                                           ChildEnvironment.first: String(first),
                                                           ChildEnvironment.count: String(count)],
                                             outputPath: output)
            return (pid, output)
        }
        func output(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        func killChild(_ pid: pid_t) {
            kill(pid, SIGKILL)
            ChildProcess.wait(pid)
        }

        // 1. Broker up: events 0..<10 flow; SIGKILL → the broker publishes the Last Will (offline).
        let (first, firstLog) = try child("produce", first: 0, count: 10, log: "first.log")
        do {
            try await seen.wait(timeout: .seconds(15), "events 0..<10") { messages in
                Set(receivedEvents(messages, topic: topics.event).map(\.seq)).isSuperset(of: 0..<10)
            }
        } catch {
            killChild(first)
            throw TestFailure("\(error); child output: \(output(firstLog))")
        }
        killChild(first)
        try await seen.wait(timeout: .seconds(5), "Last Will offline") { messages in
            messages.last { $0.topic == topics.status }?.text == "offline"
        }

        // 2. Broker down: events 10..<25 are produced, then the agent is SIGKILLed before it could send them.
        broker.stop()
        let (second, secondLog) = try child("produce", first: 10, count: 15, log: "second.log")
        try await eventually(timeout: .seconds(15), "child persisted events 10..<25") {
            output(secondLog).contains("PRODUCED")
        }
        killChild(second)
        #expect(try Outbox(path: database, bound: 1000).count() >= 15)

        // 3. Broker back, observer reconnected; a restarted agent sends the backlog in order.
        try broker.start()
        try await observer.waitUntilConnected(timeout: .seconds(5))
        let (third, thirdLog) = try child("drain", log: "third.log")
        try await eventually(timeout: .seconds(20), "restarted agent drained its outbox") { ChildProcess.hasExited(third) }
        #expect(output(thirdLog).contains("DRAINED"), "\(output(thirdLog).suffix(2000))")

        let messages = try await seen.wait(timeout: .seconds(5), "all 25 events") { messages in
            Set(receivedEvents(messages, topic: topics.event).map(\.seq)) == Set(0..<25)
        }
        let events = receivedEvents(messages, topic: topics.event)
        let duplicates = checkDelivery(events, expected: 0..<25)
        #expect(events.allSatisfy { $0.episodeID == "ep-crash" })
        print("SIGKILL test: 25 events delivered in order across a crash and an outage, \(duplicates) duplicates")
        #expect(try Outbox(path: database, bound: 1000).count() == 0)
        await observer.stop()
    }
}

/// Writes a line straight to file descriptor 1, unbuffered, so the parent sees it before a SIGKILL.
private func say(_ text: String) {
    let line = text + "\n"
    _ = line.withCString { write(1, $0, strlen($0)) }
}
