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
    private var pid: pid_t

    /// `extra`: more mosquitto.conf lines (a bridge).
    init(extra: String = "") throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("deepinfant-control-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        port = try LoopbackPort.free()
        let conf = "listener \(port) 127.0.0.1\nallow_anonymous true\nmessage_size_limit 0\n" + extra
        try conf.write(to: directory.appendingPathComponent("mosquitto.conf"), atomically: true, encoding: .utf8)
        pid = try Self.start(directory, port)
    }

    private static func start(_ directory: URL, _ port: Int) throws -> pid_t {
        let pid = try ChildProcess.spawn("/usr/sbin/mosquitto", ["-c", directory.appendingPathComponent("mosquitto.conf").path])
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, !LoopbackPort.accepts(port) { usleep(10_000) }
        return pid
    }

    /// Stops the broker (it forgets sessions and retained messages: no persistence).
    func stopBroker() {
        kill(pid, SIGTERM)
        ChildProcess.wait(pid)
    }

    /// Starts it again on the same port.
    func startBroker() throws { pid = try Self.start(directory, port) }

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

    /// The embedded YAMNet body (loading it dequantises 3.7 M weights: once per test run).
    static let body = try! YAMNetModel.embedded()
    static let bodyBytes = EmbeddedModel.yamnet.bytes

    /// The body with other metadata (a re-labelled version, another name, a broken self-test).
    static func body(version: String = "1.0.0", name: String = "yamnet", wrongSelfTest: Bool = false) -> [UInt8] {
        withMetadata(bodyBytes) { doc in
            doc["version"] = version
            doc["name"] = name
            if wrongSelfTest, var st = doc["selftest"] as? [String: Any], var expected = st["expected"] as? [Double] {
                expected[20] = expected[20] > 0.5 ? 0.0 : 1.0
                st["expected"] = expected
                doc["selftest"] = st
            }
        }
    }

    /// A logistic cry head as the spec writes it (docs/model-format-yamnet.md), with zero weights: it gives
    /// p(cry) = sigmoid(`bias`) for every embedding, so a test can tell which head the gate runs by what it
    /// reports (-20: never a cry; +20: every scored patch is one).
    static func head(version: String, bias: Float = -20, name: String = "test-cry-head", bodyName: String = "yamnet",
                     inputDim: Int = 1024, threshold: Double = 0.6, wrongSelfTest: Bool = false) -> [UInt8] {
        let p = 1 / (1 + exp(-Double(bias)))
        let expected = wrongSelfTest ? [p, 1 - p] : [1 - p, p]
        let meta: JSONValue = .object([
            "format": .string("deepinfant-model"), "format_version": .number(1), "name": .string(name),
            "version": .string(version), "task": .string("cry"), "labels": .array([.string("not_cry"), .string("cry")]),
            "architecture": .object(["type": .string("embedding_head"), "input": .string("yamnet"), "input_dim": .number(Double(inputDim)),
                                     "hidden": .array([]), "activation": .string("relu"), "n_classes": .number(2)]),
            "body": .object(["name": .string(bodyName), "version": .string("1.0.0")]),
            "gate": .object(["threshold": .number(threshold)]),
            "selftest": .object(["input_tensor": .string("selftest.input"), "expected": .array(expected.map { .number($0) }),
                                 "tolerance": .number(1e-4)]),
        ])
        let d = inputDim
        return SafeTensorsWriter.encode(tensors: [
            ("norm.mean", [d], [Float](repeating: 0, count: d)), ("norm.scale", [d], [Float](repeating: 1, count: d)),
            ("out.weight", [2, d], [Float](repeating: 0, count: 2 * d)), ("out.bias", [2], [0, bias]),
            ("selftest.input", [d], (0..<d).map { Float($0 % 7) * 0.1 }),
        ], metadata: ["deepinfant": meta.jsonText])
    }

    /// A yamnet node's cry detector: the embedded body and a test head that never fires.
    static let yamnetDetector = CryDetectorModel.yamnet(body: body, head: try! EmbeddingHead.load(bytes: head(version: "1.0.0"), source: "fixture:head"))

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
    private(set) var agent: Agent
    private(set) var control: ControlService
    let keyDirectory: URL
    let signingKey: String
    var runTask: Task<Void, any Error>?
    let fleet: FleetController
    /// The configured cry detector (what a slot with nothing installed runs).
    let detector: CryDetectorModel
    private let trustedKey: SigningKeys.TrustedKey?

    static let cryModel = try! ModelBundle.load(bytes: Fixtures.cry, source: "fixture:medium")
    static let reasonModel = try! ModelBundle.load(bytes: Fixtures.reason, source: "fixture:tiny")

    /// `detector`: the node's cry detector (default: the CRNN fixture, a crnn node; `Fixtures.yamnetDetector`
    /// for a yamnet node).
    /// `broker`: share one broker between nodes (each keeps its own state directory; they trust one key).
    /// `audio`: a recording to stream in real time instead of the generated one.
    init(id: String = "nursery", seconds: Double = 120, levelInterval: Double = 10, trust: Bool = true, bursts: Bool = false,
         detector: CryDetectorModel? = nil, startPipeline: Bool = true, broker shared: Broker? = nil, audio recording: URL? = nil,
         commandQueue: Int = ControlService.queuedCommands, edit: (inout AgentConfig) -> Void = { _ in }) async throws {
        broker = try shared ?? Broker()
        self.id = id
        let audio = try recording ?? Self.sharedWAV(seconds: seconds, bursts: bursts)
        keyDirectory = broker.directory.appendingPathComponent("keys")
        try FileManager.default.createDirectory(at: keyDirectory, withIntermediateDirectories: true)
        signingKey = keyDirectory.appendingPathComponent("signing.key").path
        let key = FileManager.default.fileExists(atPath: signingKey)
            ? try SigningKeys.loadPublic(path: keyDirectory.appendingPathComponent("signing.pub").path)
            : try SigningKeys.generate(directory: keyDirectory.path)
        var c = AgentConfig()
        c.node.id = id
        c.node.stateDir = broker.directory.appendingPathComponent(shared == nil ? "state" : "state-\(id)").path
        c.mqtt.broker = broker.url
        c.mqtt.username = "node"
        c.mqtt.password = "hunter2"
        c.audio.input = audio.path
        c.audio.realTime = true
        c.gate.levelIntervalSeconds = levelInterval
        c.log.level = "warning"
        edit(&c)
        config = c
        self.detector = detector ?? .crnn(Self.cryModel)
        trustedKey = trust ? key : nil
        agent = Agent(config: c, cryDetector: self.detector, reasonModel: Self.reasonModel)
        control = try ControlService(agent: agent, config: c, trustedKeys: trust ? [key] : [], publisher: try agent.publisher(),
                                     commandQueue: commandQueue, logger: Self.quietLogger)
        await control.start()
        fleet = try FleetController(settings: broker.settings("fleet-\(UUID().uuidString.prefix(6))"))
        try await fleet.connect()
        if startPipeline { try await self.startPipeline() }
    }

    /// Starts the agent's pipeline (the init does unless told not to) and waits until it runs.
    func startPipeline() async throws {
        let agent = self.agent
        runTask = Task { try await agent.run() }
        try await waitUntilRunning()
    }

    static var quietLogger: Logger {
        var quiet = Logger(label: "deepinfant.control")
        quiet.logLevel = .warning
        return quiet
    }

    private func waitUntilRunning() async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        let publisher = try agent.publisher()
        while true {
            let connected = await publisher.isConnected
            if agent.control.isRunning && connected { break }
            guard ContinuousClock.now < deadline else { throw Failure("the agent did not start") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Stops the agent (as SIGTERM would) and starts a new one on the same state directory the way `run`
    /// does: the installed model of every slot (`ControlService.startupModels`), the configured ones as the
    /// baselines.
    func restart() async throws {
        runTask?.cancel()
        try await runTask?.value
        await control.stop()
        let models = ControlService.startupModels(stateDir: config.node.stateDir, configured: (detector, Self.reasonModel),
                                                  logger: Self.quietLogger)
        agent = Agent(config: config, cryDetector: models.cry, reasonModel: models.reason)
        control = try ControlService(agent: agent, config: config, trustedKeys: trustedKey.map { [$0] } ?? [],
                                     publisher: try agent.publisher(), baselineModel: Self.reasonModel,
                                     baselineCryDetector: detector, logger: Self.quietLogger)
        await control.start()
        let agent = self.agent
        runTask = Task { try await agent.run() }
        try await waitUntilRunning()
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
        let bundleVersion = version ?? (try? AnyModel.load(bytes: bytes, verifySelfTest: false).version) ?? "9.9.9"
        return try ModelEnvelope.sign(modelBytes: bytes, name: nil, version: bundleVersion,
                                      key: try SigningKeys.loadPrivate(path: key ?? signingKey))
    }

    /// What must not change when a command is refused.
    struct Snapshot: Equatable {
        var gate: GateSettings?
        var modelVersion: String
        var modelSource: String
        /// The cry detector's models (`cry` slot, and the body on a yamnet node): name, version, source.
        var cryModels: [String]
        var override: Data?
        var installed: Data?
        var cryInstalled: Data?
        var yamnetInstalled: Data?
        var config: AgentConfig
    }

    func snapshot() async -> Snapshot {
        let state = URL(fileURLWithPath: config.node.stateDir)
        func read(_ path: String) -> Data? { try? Data(contentsOf: state.appendingPathComponent(path)) }
        return Snapshot(gate: agent.control.gateSettings,
                        modelVersion: agent.control.reasonModel?.metadata.version ?? "-",
                        modelSource: agent.control.reasonModel?.source ?? "-",
                        cryModels: (agent.control.cryDetector?.models ?? []).map { "\($0.name) \($0.version) \($0.source)" },
                        override: read("config.override.json"),
                        installed: read("models/installed.json"),
                        cryInstalled: read("models/cry/installed.json"),
                        yamnetInstalled: read("models/yamnet/installed.json"),
                        config: await control.effectiveConfig)
    }

    /// The cry head the gate runs (yamnet node).
    var runningHead: EmbeddingHead? {
        if case let .yamnet(_, head)? = agent.control.cryDetector { return head }
        return nil
    }

    var runningBody: YAMNetModel? { agent.control.cryDetector?.body }

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
