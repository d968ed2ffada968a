import Foundation

/// A real mosquitto on a free loopback port for one test, and a real subscriber (mosquitto_sub -v)
/// recording what a home-automation client would see.
final class TestBroker: @unchecked Sendable {
    let port: Int
    let directory: URL
    private var process: Process?

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("deepinfant-agent-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        port = try Self.freePort()
        let conf = "listener \(port) 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location \(directory.path)/\n"
        try conf.write(to: directory.appendingPathComponent("mosquitto.conf"), atomically: true, encoding: .utf8)
        try start()
    }

    deinit { stop() }

    var url: String { "mqtt://127.0.0.1:\(port)" }

    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/mosquitto")
        p.arguments = ["-c", directory.appendingPathComponent("mosquitto.conf").path]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, !Self.canConnect(port) { usleep(10_000) }
    }

    func stop() {
        guard let p = process else { return }
        p.terminate()
        p.waitUntilExit()
        process = nil
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
    }
}

/// `mosquitto_sub -v` on a topic filter, collecting "topic payload" lines.
final class Subscriber: @unchecked Sendable {
    private let process = Process()
    private let pipe = Pipe()
    private let lock = NSLock()
    private var buffer = ""

    init(port: Int, filter: String) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/mosquitto_sub")
        // A persistent session (-c) at QoS 1: the broker keeps what arrives while this subscriber is
        // reconnecting after a broker restart, as a home-automation client's session would.
        process.arguments = ["-h", "127.0.0.1", "-p", "\(port)", "-t", filter, "-v", "-q", "1", "-c",
                             "-i", "test-sub-\(UUID().uuidString.prefix(6))"]
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        pipe.fileHandleForReading.readabilityHandler = { [weak self] h in
            let data = h.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.lock(); self.buffer += String(decoding: data, as: UTF8.self); self.lock.unlock()
        }
        try process.run()
        usleep(200_000)
    }

    deinit {
        process.terminate()
        process.waitUntilExit()
    }

    /// (topic, payload) pairs received so far.
    var messages: [(topic: String, payload: String)] {
        lock.lock(); defer { lock.unlock() }
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
