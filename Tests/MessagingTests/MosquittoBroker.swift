import Foundation
import TestSupport
import Glibc
@testable import Messaging

/// A real mosquitto broker for one test, on a free 127.0.0.1 port, with a generated config in a temporary
/// directory. Stop/start keep the port and the persistence file, so a test can take the broker away and bring
/// it back mid-stream.
final class MosquittoBroker: @unchecked Sendable {
    struct Options {
        var allowAnonymous = true
        /// user -> password; written with mosquitto_passwd.
        var users: [String: String] = [:]
        var aclFile: String?
        /// Serve TLS instead of plain TCP with this certificate and key.
        var tlsCertFile: String?
        var tlsKeyFile: String?
        /// Keep sessions and queued messages across stop/start.
        var persistence = true
    }

    private(set) var port: Int = 0
    let directory: URL
    let options: Options
    private var pid: pid_t?

    init(_ options: Options = Options()) throws {
        self.options = options
        self.directory = try TestFiles.temporaryDirectory("broker")
        // mosquitto started as root drops to the `mosquitto` user, which must be able to write its log and
        // persistence file here.
        chmod(directory.path, 0o777)
        // Another process can take the free port before mosquitto binds it: try a few ports.
        var lastError: (any Error)?
        for _ in 0..<3 {
            port = try LoopbackPort.free()
            try writeConfig()
            do {
                try start()
                return
            } catch {
                lastError = error
            }
        }
        throw lastError!
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    var configPath: String { directory.appendingPathComponent("mosquitto.conf").path }
    var logPath: String { directory.appendingPathComponent("mosquitto.log").path }

    private func writeConfig() throws {
        var lines = [
            "listener \(port) 127.0.0.1",
            "allow_anonymous \(options.allowAnonymous)",
            "log_dest file \(logPath)",
            "log_type error", "log_type warning", "log_type notice", "log_type information",
            "connection_messages true",
        ]
        if options.persistence {
            lines += ["persistence true", "persistence_location \(directory.path)/", "autosave_interval 3600"]
        }
        if !options.users.isEmpty {
            let passwordFile = directory.appendingPathComponent("passwd").path
            _ = FileManager.default.createFile(atPath: passwordFile, contents: Data())
            for (user, password) in options.users.sorted(by: { $0.key < $1.key }) {
                try TestFiles.run("/usr/bin/mosquitto_passwd", ["-b", passwordFile, user, password])
            }
            lines.append("password_file \(passwordFile)")
        }
        if let aclFile = options.aclFile {
            // mosquitto started as root reads the ACL after dropping to its own user, which cannot enter a
            // checkout under a private (0700) folder: give it a copy in the broker's world-readable directory.
            let copy = directory.appendingPathComponent("acl").path
            try? FileManager.default.removeItem(atPath: copy)
            try FileManager.default.copyItem(atPath: aclFile, toPath: copy)
            chmod(copy, 0o644)
            lines.append("acl_file \(copy)")
        }
        if let cert = options.tlsCertFile, let key = options.tlsKeyFile {
            lines += ["certfile \(cert)", "keyfile \(key)"]
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    func start() throws {
        guard pid == nil else { return }
        pid = try ChildProcess.spawn("/usr/sbin/mosquitto", ["-c", configPath])
        // Ready when the port accepts TCP connections.
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if LoopbackPort.accepts(port) { return }
            if let pid, ChildProcess.hasExited(pid) {
                self.pid = nil
                break
            }
            usleep(10_000)
        }
        if let pid {
            kill(pid, SIGKILL)
            ChildProcess.wait(pid)
            self.pid = nil
        }
        throw TestFailure("mosquitto did not come up on port \(port): \(log)")
    }

    /// SIGTERM (mosquitto saves its persistence file) and wait for the exit.
    func stop() {
        guard let pid else { return }
        self.pid = nil
        kill(pid, SIGTERM)
        ChildProcess.wait(pid)
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

enum TestFiles {
    static func temporaryDirectory(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("deepinfant-mqtt-tests", isDirectory: true)
            .appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Runs a tool to completion; throws with its output when it fails.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let output = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw TestFailure("\(executable) \(arguments.joined(separator: " ")) failed: \(output)")
        }
        return output
    }
}

/// A certificate authority and a server certificate for 127.0.0.1/localhost, made with openssl.
struct TestPKI {
    let directory: URL
    var caFile: String { directory.appendingPathComponent("ca.crt").path }
    var otherCAFile: String { directory.appendingPathComponent("other-ca.crt").path }
    var serverCert: String { directory.appendingPathComponent("server.crt").path }
    var serverKey: String { directory.appendingPathComponent("server.key").path }

    init(subjectAltName: String = "IP:127.0.0.1,DNS:localhost") throws {
        directory = try TestFiles.temporaryDirectory("pki")
        let dir = directory.path
        let openssl = "/usr/bin/openssl"
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try TestFiles.run(openssl, ["req", "-x509"] + ec + ["-keyout", "\(dir)/ca.key", "-out", "\(dir)/ca.crt",
                                                         "-days", "2", "-subj", "/CN=DeepInfant Test CA"])
        try TestFiles.run(openssl, ["req", "-x509"] + ec + ["-keyout", "\(dir)/other-ca.key", "-out",
                                                         "\(dir)/other-ca.crt", "-days", "2", "-subj", "/CN=Other CA"])
        try TestFiles.run(openssl, ["req"] + ec + ["-keyout", "\(dir)/server.key", "-out", "\(dir)/server.csr",
                                                "-subj", "/CN=localhost"])
        try "subjectAltName=\(subjectAltName)\n".write(toFile: "\(dir)/san.ext", atomically: true,
                                                                 encoding: .utf8)
        try TestFiles.run(openssl, ["x509", "-req", "-in", "\(dir)/server.csr", "-CA", "\(dir)/ca.crt", "-CAkey",
                                    "\(dir)/ca.key", "-CAcreateserial", "-out", "\(dir)/server.crt", "-days", "2",
                                    "-extfile", "\(dir)/san.ext"])
        // The broker drops root privileges before reading the key.
        chmod(serverKey, 0o644)
    }
}

/// Fast reconnects so that outage tests finish in seconds.
let testBackoff = MQTTBackoff(initial: .milliseconds(100), cap: .milliseconds(400), multiplier: 2, jitter: 0.5)

func testSettings(_ broker: MosquittoBroker, clientID: String = "t-\(UUID().uuidString.prefix(8))",
                  username: String? = nil, password: String? = nil, tls: MQTTTLSSettings? = nil,
                  protocolVersion: MQTTProtocolVersion = .v311, cleanSession: Bool = true) -> MQTTSettings {
    MQTTSettings(host: "127.0.0.1", port: broker.port, clientID: clientID, username: username, password: password,
                 tls: tls, keepalive: 10, protocolVersion: protocolVersion, backoff: testBackoff,
                 cleanSession: cleanSession)
}

/// Collects messages from a stream in the background so a test can wait for a condition on them.
final class MessageCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var collected: [MQTTMessage] = []
    private var arrivals: [ContinuousClock.Instant] = []
    private var task: Task<Void, Never>?

    init(_ stream: AsyncStream<MQTTMessage>) {
        task = Task { [weak self] in
            for await message in stream {
                guard let self else { return }
                let now = ContinuousClock.now
                self.lock.withLock {
                    self.collected.append(message)
                    self.arrivals.append(now)
                }
            }
        }
    }

    deinit { task?.cancel() }

    var messages: [MQTTMessage] { lock.withLock { collected } }

    func messages(on topic: String) -> [MQTTMessage] { messages.filter { $0.topic == topic } }

    /// When the first message on `topic` was taken off the stream.
    func arrival(of topic: String) -> ContinuousClock.Instant? {
        lock.withLock { collected.firstIndex { $0.topic == topic }.map { arrivals[$0] } }
    }

    /// Polls until `condition` holds on the collected messages, or fails after `timeout`.
    @discardableResult
    func wait(timeout: Duration = .seconds(5), _ what: String = "condition",
              until condition: ([MQTTMessage]) -> Bool) async throws -> [MQTTMessage] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let snapshot = messages
            if condition(snapshot) { return snapshot }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestFailure("timed out waiting for \(what); got \(messages.count) messages: "
                          + messages.suffix(5).map { "\($0.topic)=\($0.text.prefix(80))" }.joined(separator: ", "))
    }
}

/// Waits until `condition` holds, polling.
func eventually(timeout: Duration = .seconds(5), _ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw TestFailure("timed out waiting for \(what)")
}

/// A subscriber client for assertions: connected and subscribed to `filters` before it returns; a probe
/// round-trip proves the subscription is active.
func makeSubscriber(_ broker: MosquittoBroker, filters: [String], clientID: String? = nil,
                    username: String? = nil, password: String? = nil, cleanSession: Bool = true,
                    tls: MQTTTLSSettings? = nil, probeTopic: String? = nil) async throws -> (MQTTClient, MessageCollector) {
    let id = clientID ?? "sub-\(UUID().uuidString.prefix(8))"
    let client = try MQTTClient(settings: testSettings(broker, clientID: id, username: username, password: password,
                                                       tls: tls, cleanSession: cleanSession))
    let collector = MessageCollector(client.messages)
    for filter in filters { try client.subscribe(filter, qos: .exactlyOnce) }
    let probe = probeTopic ?? "probe/\(id)"
    try client.subscribe(probe, qos: .atLeastOnce)
    client.start()
    try await client.waitUntilConnected(timeout: .seconds(5))
    try await client.publish(topic: probe, text: "ping", qos: .atLeastOnce)
    try await collector.wait(timeout: .seconds(5), "probe") { $0.contains { $0.topic == probe } }
    return (client, collector)
}
