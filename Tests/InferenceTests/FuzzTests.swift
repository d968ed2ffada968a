import Foundation
import Testing
import TestSupport
@testable import Inference

extension InferenceTestSuites {
    /// Seeded random mutations of a real model file: every input must produce a `ModelError` or a valid
    /// model (a crash fails the whole test run). Also checks that the mutations reach past the container
    /// into metadata, tensor and self-test validation, so the fuzzing is not only exercising one guard.
    @Suite struct FuzzTests {
        @Test func byteMutationsNeverCrash() throws {
            let base = try Fixture.bytes("tiny.safetensors")
            var headerLength = 0
            for i in 0..<8 { headerLength |= Int(base[i]) << (8 * i) }
            var rng = SeededGenerator(seed: 0xDEE9_1A4F)
            var kinds: [String: Int] = [:]
            var valid = 0
            let iterations = 3000
            for _ in 0..<iterations {
                var b = base
                switch Int.random(in: 0..<9, using: &rng) {
                case 0, 1, 2:  // flip bytes inside the JSON header (most of the parser's surface)
                    for _ in 0..<Int.random(in: 1...4, using: &rng) {
                        b[Int.random(in: 8..<(8 + headerLength), using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                    }
                case 3:  // replace a digit in the header with another digit (shapes, offsets, numbers)
                    let digits = (8..<(8 + headerLength)).filter { (48...57).contains(b[$0]) }
                    if let i = digits.randomElement(using: &rng) { b[i] = UInt8.random(in: 48...57, using: &rng) }
                case 4:  // truncate
                    b = Array(b.prefix(Int.random(in: 0..<b.count, using: &rng)))
                case 5:  // corrupt the header length
                    b[Int.random(in: 0..<8, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                case 6:  // corrupt tensor data (can create NaN/Inf or break the self-test)
                    for _ in 0..<Int.random(in: 1...8, using: &rng) {
                        b[Int.random(in: (8 + headerLength)..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                    }
                case 7:  // insert or delete a run of bytes somewhere
                    let i = Int.random(in: 0..<b.count, using: &rng)
                    if Bool.random(using: &rng) {
                        b.insert(contentsOf: (0..<Int.random(in: 1...16, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: i)
                    } else {
                        b.removeSubrange(i..<min(b.count, i + Int.random(in: 1...16, using: &rng)))
                    }
                default:  // swap two header bytes
                    let i = Int.random(in: 8..<(8 + headerLength), using: &rng), j = Int.random(in: 8..<(8 + headerLength), using: &rng)
                    b.swapAt(i, j)
                }
                do {
                    let m = try ModelBundle.load(bytes: b)
                    #expect(m.runSelfTest().passed)
                    valid += 1
                } catch {
                    kinds[Self.kind(error), default: 0] += 1
                }
            }
            #expect(valid + kinds.values.reduce(0, +) == iterations)
            // The mutations reached many different checks.
            #expect(kinds.count >= 8, "error kinds: \(kinds)")
            #expect(kinds["nonFiniteWeight", default: 0] + kinds["selfTestFailed", default: 0] > 0)
        }

        /// Structured mutations of the metadata document: random values at random keys.
        @Test func metadataMutationsNeverCrash() throws {
            let base = try EditableModel(fixture: "tiny.safetensors")
            let paths = ["format", "format_version", "name", "task", "labels", "architecture", "architecture.conv_channels",
                         "architecture.lstm_hidden", "architecture.dense", "architecture.n_mels", "architecture.n_classes",
                         "architecture.pooling", "architecture.kernel", "features", "features.n_fft", "features.hop_length",
                         "features.n_mels", "features.fmin", "features.fmax", "features.norm_std", "window", "window.frames",
                         "window.hop_frames", "window.seconds", "calibration", "calibration.temperature", "selftest",
                         "selftest.expected", "selftest.tolerance", "selftest.input_tensor", "training", "aggregation"]
            var rng = SeededGenerator(seed: 42)
            func randomValue(_ depth: Int = 0) -> JSONValue {
                switch Int.random(in: 0..<9, using: &rng) {
                case 0: return .null
                case 1: return .bool(Bool.random(using: &rng))
                case 2: return .number(Double(Int.random(in: -3...200, using: &rng)))
                case 3: return .number(([0, -1, 1e12, 1e300, -0.5, 3.5, 2048, 94, 1_099_511_627_776] as [Double]).randomElement(using: &rng)!)
                case 4: return .string(["", "crnn", "mean", "x", "selftest.input", "out.weight"].randomElement(using: &rng)!)
                case 5, 6: return depth > 2 ? .null : .array((0..<Int.random(in: 0...6, using: &rng)).map { _ in randomValue(depth + 1) })
                default: return depth > 2 ? .null : .object(["a": randomValue(depth + 1)])
                }
            }
            var outcomes: [String: Int] = [:]
            for _ in 0..<600 {
                var m = base
                for _ in 0..<Int.random(in: 1...2, using: &rng) { m.set(paths.randomElement(using: &rng)!, randomValue()) }
                do {
                    _ = try m.load()
                    outcomes["valid", default: 0] += 1
                } catch {
                    outcomes[Self.kind(error), default: 0] += 1
                }
            }
            #expect(outcomes.values.reduce(0, +) == 600)
            #expect(outcomes.count >= 4, "\(outcomes)")
        }

        /// 513 nested arrays stop Foundation's JSON scanner (the process dies instead of throwing): a header or a
        /// metadata document that deep is refused before it is parsed.
        @Test func deeplyNestedJSONIsRefused() throws {
            let deep = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
            var header = Array("{\"x\": \(deep)}".utf8)
            while header.count % 8 != 0 { header.append(0x20) }
            var file: [UInt8] = (0..<8).map { UInt8((header.count >> (8 * $0)) & 0xFF) }
            file += header
            #expect(throws: ModelError.self) { try ModelBundle.load(bytes: file) }
            #expect(throws: ModelError.headerNotJSON(reason: "nested deeper than 64 levels")) { _ = try SafeTensorsFile(bytes: file) }

            // The metadata document is a string inside the header, which the header's check does not look into.
            let m = try EditableModel(fixture: "tiny.safetensors")
            guard case var .object(doc) = m.meta else { Issue.record("metadata is not an object"); return }
            doc["training"] = .array([])
            let text = JSONValue.object(doc).jsonText
            #expect(text.contains("\"training\":[]"))
            let bytes = SafeTensorsWriter.encode(tensors: m.tensors.map { ($0.key, $0.value.shape, $0.value.values) },
                                                 metadata: ["deepinfant": text.replacingOccurrences(of: "\"training\":[]", with: "\"training\":" + deep)])
            #expect(throws: ModelError.invalidMetadata(key: "deepinfant", reason: "not valid JSON: nested deeper than 64 levels")) {
                try ModelBundle.load(bytes: bytes)
            }
        }

        static func kind(_ e: any Error) -> String {
            String(String(describing: Mirror(reflecting: e).children.first?.label ?? "\(e)").prefix(40))
        }
    }
}
