import Agent
import Control
import Foundation
import Inference
import Messaging
import Testing
import TestSupport


/// Payloads that must each be refused: random bytes, truncations, wrong types, out-of-range values, unknown
/// and local-only keys (configs, often next to a valid change that must not be applied either), and byte or
/// field mutations of a validly signed envelope whose version is below the running one (models).
struct CommandFuzzer {
    var rng: SeededGenerator
    let validPatch = Array(#"{"gate":{"cry_threshold":0.77,"hangover_s":5}}"#.utf8)
    let envelope: ModelEnvelope
    let envelopeBytes: [UInt8]

    init(seed: UInt64, envelope: ModelEnvelope) throws {
        rng = SeededGenerator(seed: seed)
        self.envelope = envelope
        envelopeBytes = try envelope.encoded()
    }

    mutating func randomBytes(max: Int) -> [UInt8] {
        (0..<Int.random(in: 0...max, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    mutating func wrongValue(for value: JSONValue) -> JSONValue {
        let pick = Int.random(in: 0..<4, using: &rng)
        switch value {
        case .number:
            return [.string("x\(pick)"), .bool(true), .array([.number(1)]), .object(["a": .number(1)]), .number(1e9), .number(-1e9)][Int.random(in: 0..<6, using: &rng)]
        case .string:
            return [.number(Double(pick)), .bool(false), .array([]), .object([:])][pick]
        case .bool:
            return [.number(1), .string("true"), .array([.bool(true)]), .object([:])][pick]
        default:
            return .number(Double(pick))
        }
    }

    mutating func config() -> [UInt8] {
        switch Int.random(in: 0..<5, using: &rng) {
        case 0:
            while true {
                let b = randomBytes(max: 200)
                if case .object? = try? JSONDecoder().decode(JSONValue.self, from: Data(b)) { continue }
                return b
            }
        case 1:
            return Array(validPatch.prefix(Int.random(in: 0..<validPatch.count, using: &rng)))
        default:
            // A valid change next to an invalid one: neither may be applied.
            let sections = ConfigPatch.knownKeys.keys.filter { $0 != "control" && $0 != "model" }.sorted()
            var patch: [String: JSONValue] = ["gate": .object(["cry_threshold": .number(0.77)])]
            let section = sections.randomElement(using: &rng)!
            guard case let .object(defaults)? = { () -> JSONValue? in
                var full = AgentConfig()
                full.node.id = "x"; full.audio.input = "x"; full.mqtt.username = "x"; full.mqtt.password = "x"
                full.mqtt.caFile = "x"; full.mqtt.certFile = "x"; full.mqtt.keyFile = "x"; full.gate.cryThreshold = 0.5
                if case let .object(s) = ConfigDocument.encode(full) { return s[section] }
                return nil
            }() else { return [] }
            var members: [String: JSONValue] = { if case let .object(m)? = patch[section] { return m } else { return [:] } }()
            switch Int.random(in: 0..<3, using: &rng) {
            case 0:
                let key = defaults.keys.filter { !(section == "node" && $0 == "state_dir") }.sorted().randomElement(using: &rng)!
                members[key] = wrongValue(for: defaults[key]!)
            case 1:
                members["unknown_\(Int.random(in: 0...999, using: &rng))"] = .number(1)
            default:
                patch[["control", "model"].randomElement(using: &rng)!] = .object([:])
            }
            patch[section] = .object(members)
            return Array(try! JSONEncoder().encode(JSONValue.object(patch)))
        }
    }

    mutating func model() -> [UInt8] {
        switch Int.random(in: 0..<5, using: &rng) {
        case 0:
            return randomBytes(max: 400)
        case 1:
            return Array(envelopeBytes.prefix(Int.random(in: 0..<envelopeBytes.count, using: &rng)))
        case 2:
            var b = envelopeBytes
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            return b
        default:
            var e = envelope
            switch Int.random(in: 0..<7, using: &rng) {
            case 0: e.signature = Data((0..<64).map { _ in UInt8.random(in: 0...255, using: &rng) }).base64EncodedString()
            case 1: e.sha256 = String(repeating: "0", count: 64)
            case 2: e.size = Int.random(in: -10...(ModelEnvelope.maxModelBytes * 2), using: &rng)
            case 3: e.keyID = "0123456789abcdef"
            case 4: e.version = "9.\(Int.random(in: 0...99, using: &rng))"
            case 5:
                var m = [UInt8](Data(base64Encoded: e.model!)!)
                m[Int.random(in: 0..<m.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                e.model = Data(m).base64EncodedString()
            default:
                break  // the valid envelope itself: refused as a downgrade
            }
            return try! e.encoded()
        }
    }
}

extension NodeTests {
    @Test("fuzz: 10,000 mutated config and model payloads through the handler and 300 over the broker, all refused, nothing changes")
    func fuzz() async throws {
        let node = try await TestNode()
        let recorder = try await Recorder(node.broker, filters: ["deepinfant/nursery/result"])
        _ = try await node.send("model", try node.envelope(Fixtures.reason(version: "2.0.0")).encoded())
        _ = try await node.send("config", json: #"{"gate": {"cry_threshold": 0.6}}"#)
        let before = await node.snapshot()
        let seed = UInt64.random(in: 0...UInt64.max)
        var fuzzer = try CommandFuzzer(seed: seed, envelope: try node.envelope(Fixtures.reason(version: "1.0.0")))

        let started = ContinuousClock.now
        var refused = 0
        for i in 0..<10_000 {
            let (name, payload) = i % 3 == 2 ? ("model", fuzzer.model()) : ("config", fuzzer.config())
            let r = await node.control.process(NodeCommand(name: name, payload: payload, group: false, topic: "deepinfant/nursery/cmd/\(name)"))
            if r.ok {
                Issue.record("seed \(seed), payload \(i) accepted: \(String(decoding: payload.prefix(300), as: UTF8.self))")
                break
            }
            refused += 1
        }
        let elapsed = ContinuousClock.now - started
        #expect(refused == 10_000)
        #expect(await node.snapshot() == before, "seed \(seed)")
        print("fuzz: 10,000 payloads in \(elapsed)")

        // Over the broker, as the subscriber sees them (raw publishes, group topic too).
        let resultsBefore = recorder.messages.count
        for i in 0..<300 {
            let (name, payload) = i % 2 == 1 ? ("model", fuzzer.model()) : ("config", fuzzer.config())
            let topic = i % 10 == 0 ? "deepinfant/all/cmd/\(name)" : "deepinfant/nursery/cmd/\(name)"
            try await node.fleet.client.publish(topic: topic, payload: payload, qos: .atLeastOnce)
        }
        // ~5 s alone; the full test suite runs beside it in CI.
        try await recorder.wait(timeout: .seconds(180), "300 results") { $0.count >= resultsBefore + 300 }
        let answers = recorder.messages.dropFirst(resultsBefore).compactMap { try? CommandResult.decode($0.payload) }
        #expect(answers.count == 300)
        #expect(answers.allSatisfy { !$0.ok }, "seed \(seed)")
        #expect(await node.snapshot() == before, "seed \(seed)")
        // Still running and answering.
        #expect(node.agent.control.isRunning)
        let ping = try await node.send("ping", json: "{}")
        #expect(ping.ok && ping.model?.version == "2.0.0")
        await recorder.stop()
        try await node.stop()
    }
}
