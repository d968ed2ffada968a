import Foundation

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
        port = try Self.freePort()
        let conf = "listener \(port) 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location \(directory.path)/\n"
        try conf.write(to: directory.appendingPathComponent("mosquitto.conf"), atomically: true, encoding: .utf8)
        try start()
    }

    deinit { stop() }

    var url: String { "mqtt://127.0.0.1:\(port)" }

    func start() throws {
        pid = try ChildProcess.spawn("/usr/sbin/mosquitto", ["-c", directory.appendingPathComponent("mosquitto.conf").path])
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, !Self.canConnect(port) { usleep(10_000) }
    }

    /// SIGTERM (mosquitto saves its persistence file) and wait.
    func stop() {
        guard let pid else { return }
        kill(pid, SIGTERM)
        ChildProcess.wait(pid)
        self.pid = nil
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
    private let pid: pid_t
    private let output: String

    init(port: Int, filter: String) throws {
        output = FileManager.default.temporaryDirectory.appendingPathComponent("sub-\(UUID().uuidString.prefix(8)).log").path
        // A persistent session (-c) at QoS 1: the broker keeps what arrives while this subscriber is
        // reconnecting after a broker restart, as a home-automation client's session would.
        pid = try ChildProcess.spawn("/usr/bin/mosquitto_sub", ["-h", "127.0.0.1", "-p", "\(port)", "-t", filter, "-v", "-q", "1", "-c",
                                                            "-i", "test-sub-\(UUID().uuidString.prefix(6))"], outputPath: output)
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

/// posix_spawn with a clean signal mask: Foundation's `Process` passes on the spawning thread's mask, and
/// Swift's worker threads block SIGTERM, so a child started that way would ignore SIGTERM.
enum ChildProcess {
    static func spawn(_ executable: String, _ arguments: [String], outputPath: String = "/dev/null") throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let envp = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in envp { free(pointer) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EINVAL) }
        return pid
    }

    /// Waits for the child; returns its exit status (or 128 + signal).
    @discardableResult
    static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
