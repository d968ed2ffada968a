import Agent
import Control
import Foundation
import Gate
import Inference
import Logging
import Messaging
import TestSupport
import Testing

/// A real mosquitto on a free loopback port, for one test.
final class Broker: @unchecked Sendable {
    let port: Int
    let directory: URL
    private let pid: pid_t

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("deepinfant-control-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        port = try LoopbackPort.free()
        let conf = "listener \(port) 127.0.0.1\nallow_anonymous true\nmessage_size_limit 0\n"
        try conf.write(to: directory.appendingPathComponent("mosquitto.conf"), atomically: true, encoding: .utf8)
        pid = try ChildProcess.spawn("/usr/sbin/mosquitto", ["-c", directory.appendingPathComponent("mosquitto.conf").path])
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, !LoopbackPort.accepts(port) { usleep(10_000) }
    }

    deinit {
        kill(pid, SIGTERM)
        ChildProcess.wait(pid)
        try? FileManager.default.removeItem(at: directory)
    }

    var url: String { "mqtt://127.0.0.1:\(port)" }

    func settings(_ clientID: String) -> MQTTSettings {
        MQTTSettings(host: "127.0.0.1", port: port, clientID: clientID,
                     backoff: MQTTBackoff(initial: .milliseconds(100), cap: .milliseconds(400), multiplier: 2, jitter: 0.5))
    }
}

/// Collects every message on the subscribed filters (a real client of the broker).
final class Recorder: @unchecked Sendable {
    let client: MQTTClient
    private let lock = NSLock()
    private var collected: [MQTTMessage] = []
    private var task: Task<Void, Never>?

    init(_ broker: Broker, filters: [String]) async throws {
        client = try MQTTClient(settings: broker.settings("rec-\(UUID().uuidString.prefix(8))"))
        let stream = client.messages
        task = Task { [weak self] in
            for await m in stream {
                guard let self else { return }
                self.lock.withLock { self.collected.append(m) }
            }
        }
        for f in filters { try client.subscribe(f, qos: .atLeastOnce) }
        client.start()
        try await client.waitUntilConnected(timeout: .seconds(5))
        try await Task.sleep(for: .milliseconds(100))
    }

    func stop() async {
        task?.cancel()
        await client.stop()
    }

    var messages: [MQTTMessage] { lock.withLock { collected } }

    func wait(timeout: Duration = .seconds(10), _ what: String, until condition: ([MQTTMessage]) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(messages) { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw Failure("timed out waiting for \(what)")
    }
}

struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// The fixture models and variants made from them by rewriting the safetensors header or the data.
enum Fixtures {
    static let directory = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    static func bytes(_ name: String) -> [UInt8] { [UInt8](try! Data(contentsOf: directory.appendingPathComponent(name))) }
    /// A tiny reason model (version 0.0.0-test) and a cry detector with the same front end.
    static let reason = bytes("tiny.safetensors")
    static let cry = bytes("medium.safetensors")

    static func split(_ bytes: [UInt8]) -> (header: [String: Any], data: [UInt8]) {
        let n = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let header = try! JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as! [String: Any]
        return (header, Array(bytes[(8 + n)...]))
    }

    static func join(_ header: [String: Any], _ data: [UInt8]) -> [UInt8] {
        var json = [UInt8](try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        while json.count % 8 != 0 { json.append(0x20) }
        var n = UInt64(json.count)
        var out: [UInt8] = []
        for _ in 0..<8 { out.append(UInt8(n & 0xFF)); n >>= 8 }
        return out + json + data
    }

    /// Rewrites the `deepinfant` metadata document.
    static func withMetadata(_ bytes: [UInt8], _ edit: (inout [String: Any]) -> Void) -> [UInt8] {
        var (header, data) = split(bytes)
        var meta = header["__metadata__"] as! [String: String]
        var doc = try! JSONSerialization.jsonObject(with: Data(meta["deepinfant"]!.utf8)) as! [String: Any]
        edit(&doc)
        meta["deepinfant"] = String(decoding: try! JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys]), as: UTF8.self)
        header["__metadata__"] = meta
        return join(header, data)
    }

    static func reason(version: String) -> [UInt8] { withMetadata(reason) { $0["version"] = version } }

    /// A NaN in a conv weight.
    static func withNaN(_ bytes: [UInt8]) -> [UInt8] {
        var (header, data) = split(bytes)
        let offsets = (header["blocks.1.conv.weight"] as! [String: Any])["data_offsets"] as! [Int]
        let nan = Float.nan.bitPattern
        for i in 0..<4 { data[offsets[0] + 4 + i] = UInt8((nan >> (8 * UInt32(i))) & 0xFF) }
        return join(header, data)
    }

    /// `dense.0.weight` declared [16, 8] instead of [8, 16] (same byte count, wrong shape).
    static func withWrongShape(_ bytes: [UInt8]) -> [UInt8] {
        var (header, data) = split(bytes)
        var t = header["dense.0.weight"] as! [String: Any]
        t["shape"] = [16, 8]
        header["dense.0.weight"] = t
        return join(header, data)
    }

    /// A self-test expectation the weights do not reproduce.
    static func withWrongSelfTest(_ bytes: [UInt8]) -> [UInt8] {
        withMetadata(bytes) { doc in
            var st = doc["selftest"] as! [String: Any]
            st["expected"] = [0.96, 0.01, 0.01, 0.01, 0.01]
            doc["selftest"] = st
        }
    }

    /// Not a safetensors file any more: the header length points past the end.
    static func corrupt(_ bytes: [UInt8]) -> [UInt8] {
        var b = bytes
        b[6] = 0x7F
        return b
    }
}

/// A node for one test: broker, state directory, signing keys, an agent streaming a generated recording in
/// real time, and its control service; plus a fleet controller to talk to it over the broker.
final class TestNode: @unchecked Sendable {
    let broker: Broker
    let id: String
    let config: AgentConfig
    let agent: Agent
    let control: ControlService
    let keyDirectory: URL
    let signingKey: String
    var runTask: Task<Void, any Error>?
    let fleet: FleetController

    static let cryModel = try! ModelBundle.load(bytes: Fixtures.cry, source: "fixture:medium")
    static let reasonModel = try! ModelBundle.load(bytes: Fixtures.reason, source: "fixture:tiny")

    init(id: String = "nursery", seconds: Double = 120, levelInterval: Double = 10, trust: Bool = true, bursts: Bool = false,
         edit: (inout AgentConfig) -> Void = { _ in }) async throws {
        broker = try Broker()
        self.id = id
        let audio = try Self.sharedWAV(seconds: seconds, bursts: bursts)
        keyDirectory = broker.directory.appendingPathComponent("keys")
        try FileManager.default.createDirectory(at: keyDirectory, withIntermediateDirectories: true)
        let key = try SigningKeys.generate(directory: keyDirectory.path)
        signingKey = keyDirectory.appendingPathComponent("signing.key").path
        var c = AgentConfig()
        c.node.id = id
        c.node.stateDir = broker.directory.appendingPathComponent("state").path
        c.mqtt.broker = broker.url
        c.mqtt.username = "node"
        c.mqtt.password = "hunter2"
        c.audio.input = audio.path
        c.audio.realTime = true
        c.gate.levelIntervalSeconds = levelInterval
        c.log.level = "warning"
        edit(&c)
        config = c
        agent = Agent(config: c, cryModel: Self.cryModel, reasonModel: Self.reasonModel)
        var quiet = Logger(label: "deepinfant.control")
        quiet.logLevel = .warning
        control = try ControlService(agent: agent, config: c, trustedKeys: trust ? [key] : [], publisher: try agent.publisher(),
                                     logger: quiet)
        await control.start()
        let agent = self.agent
        runTask = Task { try await agent.run() }
        fleet = try FleetController(settings: broker.settings("fleet-\(UUID().uuidString.prefix(6))"))
        try await fleet.connect()
        let deadline = ContinuousClock.now + .seconds(10)
        let publisher = try agent.publisher()
        while true {
            let connected = await publisher.isConnected
            if agent.control.isRunning && connected { break }
            guard ContinuousClock.now < deadline else { throw Failure("the agent did not start") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Stops the agent (as SIGTERM would) and the controller.
    func stop() async throws {
        runTask?.cancel()
        try await runTask?.value
        await control.stop()
        await fleet.disconnect()
    }

    /// Sends a command over the broker and returns this node's answer.
    func send(_ command: String, _ payload: [UInt8], timeout: Duration = .seconds(10)) async throws -> CommandResult {
        let outcomes = try await fleet.send(command, payload: { id in Self.withRequestID(payload, id) }, to: .node(id), timeout: timeout)
        guard let result = outcomes.first?.result else { throw Failure("no answer to cmd/\(command)") }
        return result
    }

    func send(_ command: String, json: String) async throws -> CommandResult { try await send(command, Array(json.utf8)) }

    /// Adds `request_id` when the payload is a JSON object (anything else goes as it is).
    static func withRequestID(_ payload: [UInt8], _ id: String) -> [UInt8] {
        guard case var .object(members)? = try? JSONDecoder().decode(JSONValue.self, from: Data(payload)) else { return payload }
        members["request_id"] = .string(id)
        return Array(try! JSONEncoder().encode(JSONValue.object(members)))
    }

    func envelope(_ bytes: [UInt8], version: String? = nil, key: String? = nil) throws -> ModelEnvelope {
        let bundleVersion = version ?? (try? ModelBundle.load(bytes: bytes, verifySelfTest: false).metadata.version) ?? "9.9.9"
        return try ModelEnvelope.sign(modelBytes: bytes, name: nil, version: bundleVersion,
                                      key: try SigningKeys.loadPrivate(path: key ?? signingKey))
    }

    /// What must not change when a command is refused.
    struct Snapshot: Equatable {
        var gate: GateSettings?
        var modelVersion: String
        var modelSource: String
        var override: Data?
        var installed: Data?
        var config: AgentConfig
    }

    func snapshot() async -> Snapshot {
        let state = URL(fileURLWithPath: config.node.stateDir)
        return Snapshot(gate: agent.control.gateSettings,
                        modelVersion: agent.control.reasonModel?.metadata.version ?? "-",
                        modelSource: agent.control.reasonModel?.source ?? "-",
                        override: try? Data(contentsOf: state.appendingPathComponent("config.override.json")),
                        installed: try? Data(contentsOf: state.appendingPathComponent("models/installed.json")),
                        config: await control.effectiveConfig)
    }

    /// One recording per length for the whole test run (generating it is the slow part of starting a node).
    static func sharedWAV(seconds: Double, bursts: Bool) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("deepinfant-control-\(bursts ? "bursts" : "noise")-\(getpid())-\(Int(seconds)).wav")
        if !FileManager.default.fileExists(atPath: url.path) { try writeWAV(url, seconds: seconds, bursts: bursts) }
        return url
    }

    /// Low-level noise (16-bit mono WAV, 16 kHz), so the pipeline runs without waking the cry detector much.
    /// With `bursts`, loud noise for 0.6 s of every second, so the activity detector wakes the cry detector.
    static func writeWAV(_ url: URL, seconds: Double, bursts: Bool = false) throws {
        let n = Int(seconds * 16_000)
        var data = Data(capacity: 44 + 2 * n)
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        data.append(contentsOf: Array("RIFF".utf8)); u32(UInt32(36 + 2 * n)); data.append(contentsOf: Array("WAVE".utf8))
        data.append(contentsOf: Array("fmt ".utf8)); u32(16); u16(1); u16(1); u32(16_000); u32(32_000); u16(2); u16(16)
        data.append(contentsOf: Array("data".utf8)); u32(UInt32(2 * n))
        var g = SystemRandomNumberGenerator()
        var samples = [Int16](repeating: 0, count: n)
        for i in 0..<n {
            let loud = bursts && (i % 16_000) < 9_600
            samples[i] = loud ? Int16.random(in: -8000...8000, using: &g) : Int16.random(in: -40...40, using: &g)
        }
        samples.withUnsafeBytes { data.append(contentsOf: $0) }
        try data.write(to: url)
    }
}
