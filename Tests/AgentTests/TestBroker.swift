import Foundation
import TestSupport

/// A real mosquitto on a free loopback port for one test, and a real subscriber (mosquitto_sub -v)
/// recording what a home-automation client would see.
final class TestBroker: @unchecked Sendable {
    let port: Int
    let directory: URL
    private var pid: pid_t?

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("deepinfant-agent-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // mosquitto started as root drops to the mosquitto user: it must be able to write its persistence file.
        chmod(directory.path, 0o777)
        port = try LoopbackPort.free()
        let conf = "listener \(port) 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location \(directory.path)/\n"
        try conf.write(to: directory.appendingPathComponent("mosquitto.conf"), atomically: true, encoding: .utf8)
        try start()
    }

    deinit { stop() }

    var url: String { "mqtt://127.0.0.1:\(port)" }

    func start() throws {
        pid = try ChildProcess.spawn("/usr/sbin/mosquitto", ["-c", directory.appendingPathComponent("mosquitto.conf").path])
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, !LoopbackPort.accepts(port) { usleep(10_000) }
    }

    /// SIGTERM (mosquitto saves its persistence file) and wait.
    func stop() {
        guard let pid else { return }
        kill(pid, SIGTERM)
        ChildProcess.wait(pid)
        self.pid = nil
    }
}

/// `mosquitto_sub -v` on a topic filter, collecting "topic payload" lines.
final class Subscriber: @unchecked Sendable {
    private let pid: pid_t
    private let output: String

    init(port: Int, filter: String) throws {
        output = FileManager.default.temporaryDirectory.appendingPathComponent("sub-\(UUID().uuidString.prefix(8)).log").path
        // A persistent session (-c) at QoS 1: the broker keeps what arrives while this subscriber is
        // reconnecting after a broker restart, as a home-automation client's session would.
        pid = try ChildProcess.spawn("/usr/bin/mosquitto_sub", ["-h", "127.0.0.1", "-p", "\(port)", "-t", filter, "-v", "-q", "1", "-c",
                                                            "-i", "test-sub-\(UUID().uuidString.prefix(6))"], outputPath: output, stderrToOutput: false)
        usleep(200_000)
    }

    deinit {
        kill(pid, SIGTERM)
        ChildProcess.wait(pid)
    }

    /// (topic, payload) pairs received so far.
    var messages: [(topic: String, payload: String)] {
        let buffer = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        return buffer.split(separator: "\n").map { line in
            let parts = line.split(separator: " ", maxSplits: 1)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }
    }

    func events() -> [[String: Any]] {
        messages.filter { $0.topic.hasSuffix("/event") }.compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.payload.utf8)) as? [String: Any]
        }
    }

    /// Waits until `condition` holds on the messages (polling), up to `timeout` seconds.
    func wait(timeout: Double, _ condition: ([(topic: String, payload: String)]) -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition(messages) { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition(messages)
    }
}
