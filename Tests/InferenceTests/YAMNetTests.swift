import Features
import Foundation
import Testing
@testable import Inference

/// The YAMNet port: the converted model file, its front end and body against the NumPy reference of
/// the same weights (`training/make_yamnet_fixtures.py` → `Fixtures/yamnet-golden.safetensors`,
/// max |Δ| ≤ 1e-4 on embeddings and scores), and the cry head on its embeddings. The comparison with
/// the TFLite interpreter on the shared recordings is `training/yamnet_parity.py` (it needs ../shared).
extension InferenceTestSuites {
    @Suite struct YAMNetTests {
        static let body = try! YAMNetModel.embedded()

        struct GoldenCase {
            var waveform: [Float]
            var logmel: [Float]
            var embeddings: [[Float]]
            var scores: [[Float]]
        }

        static func golden(_ prefix: String) throws -> GoldenCase {
            let f = try SafeTensorsFile(contentsOf: Fixture.path("yamnet-golden.safetensors"))
            let e = try f.floats("\(prefix).embeddings"), s = try f.floats("\(prefix).scores")
            let n = try #require(f.tensors["\(prefix).embeddings"]).shape[0]
            return GoldenCase(waveform: try f.floats("\(prefix).waveform"), logmel: try f.floats("\(prefix).logmel"),
                              embeddings: (0..<n).map { Array(e[($0 * 1024)..<(($0 + 1) * 1024)]) },
                              scores: (0..<n).map { Array(s[($0 * 521)..<(($0 + 1) * 521)]) })
        }

        @Test("the embedded YAMNet body loads, passes its self-test, and names its classes and licence")
        func embeddedBody() throws {
            let m = Self.body
            #expect(m.labels.count == 521 && m.labels[20] == "Baby cry, infant cry" && m.labels[0] == "Speech")
            #expect(m.embeddingDimension == 1024 && m.metadata.architecture.layers.count == 27)
            #expect(m.runSelfTest().passed)
            #expect(m.frontEnd.patchSamples == 15_600 && m.frontEnd.patchHopSamples == 7_680)
            guard case let .object(p)? = m.metadata.provenance, case let .string(licence)? = p["license"] else {
                Issue.record("provenance.license missing"); return
            }
            #expect(licence == "Apache-2.0")
            // 3.75 M parameters, stored as int8: the file is about a quarter of its float size.
            #expect(m.parameterCount > 3_600_000 && m.byteCount < 5_000_000)
        }

        @Test("front end and body match the NumPy reference on a real cry and a tone (max |Δ| ≤ 1e-4)", arguments: ["cry", "tone"])
        func goldenParity(_ name: String) throws {
            let g = try Self.golden(name)
            let engine = YAMNetEngine(model: Self.body)
            let fe = engine.frontEnd
            let logmel = fe.frames(of: g.waveform)
            #expect(logmel.values.count == g.logmel.count)
            let dLog = zip(logmel.values, g.logmel).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .infinity
            #expect(dLog <= 1e-4, "log-mel max relative |Δ| \(dLog)")
            let starts = Self.body.frontEnd.offlinePatchStarts(forSamples: g.waveform.count)
            #expect(starts.count == g.embeddings.count)
            var dEmb: Float = 0, dScore: Float = 0
            for (i, start) in starts.enumerated() {
                var patch = Array(g.waveform[start..<min(g.waveform.count, start + 15_600)])
                patch += [Float](repeating: 0, count: 15_600 - patch.count)
                let out = engine.analyse(waveform: patch)
                dEmb = max(dEmb, zip(out.embedding, g.embeddings[i]).map { abs($0 - $1) }.max()!)
                dScore = max(dScore, zip(out.scores, g.scores[i]).map { abs($0 - $1) }.max()!)
            }
            #expect(dEmb <= 1e-4, "embedding max |Δ| \(dEmb)")
            #expect(dScore <= 1e-4, "score max |Δ| \(dScore)")
            if name == "cry" {
                // The recording is a cry: YAMNet's own "Baby cry, infant cry" (20) must be among its top classes.
                let out = engine.analyse(waveform: Array(g.waveform[0..<15_600]))
                let rank = out.scores.indices.sorted { out.scores[$0] > out.scores[$1] }.firstIndex(of: 20)!
                #expect(rank < 3, "Baby cry ranks \(rank)")
            }
        }

        @Test("a changed weight, a missing tensor or a wrong layer list is refused with its name")
        func corruptBody() throws {
            let bytes = EmbeddedModel.yamnet.bytes
            let file = try SafeTensorsFile(bytes: bytes)
            // Negate the first conv's first filter (it feeds every later layer): the self-test catches it.
            let t = try #require(file.tensors["layers.0.weight"])
            var flipped = bytes
            for i in 0..<9 { flipped[file.dataStart + t.dataRange.lowerBound + i] = UInt8(bitPattern: 0 &- Int8(bitPattern: flipped[file.dataStart + t.dataRange.lowerBound + i])) }
            do {
                _ = try YAMNetModel.load(bytes: flipped)
                Issue.record("a changed weight was accepted")
            } catch {
                guard case .selfTestFailed = error else { Issue.record("expected a self-test failure, got \(error)"); return }
            }
            // Drop a tensor / edit the metadata, rebuilding the container.
            func rebuild(dropping drop: String? = nil, meta edit: (inout [String: JSONValue]) -> Void = { _ in }) throws -> [UInt8] {
                var tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])] = []
                for (name, info) in file.tensors where name != drop {
                    let r = (file.dataStart + info.dataRange.lowerBound)..<(file.dataStart + info.dataRange.upperBound)
                    tensors.append((name, info.dtype, info.shape, Array(bytes[r])))
                }
                guard case var .object(m) = try JSONDecoder().decode(JSONValue.self, from: Data(file.metadata["deepinfant"]!.utf8)) else { throw ModelError.headerNotObject }
                edit(&m)
                return SafeTensorsWriter.encodeRaw(tensors: tensors, metadata: ["deepinfant": JSONValue.object(m).jsonText])
            }
            do { _ = try YAMNetModel.load(bytes: rebuild(dropping: "layers.3.bias")); Issue.record("missing tensor accepted") } catch {
                #expect(error as? ModelError == .missingTensor(name: "layers.3.bias"))
            }
            let wrongTask = try rebuild { $0["task"] = .string("cry") }
            do { _ = try YAMNetModel.load(bytes: wrongTask); Issue.record("task cry accepted") } catch { #expect("\(error)".contains("task")) }
            let badLayers = try rebuild { m in
                guard case var .object(a)? = m["architecture"], case var .array(layers)? = a["layers"] else { return }
                layers.removeLast()
                a["layers"] = .array(layers)
                m["architecture"] = .object(a)
            }
            do { _ = try YAMNetModel.load(bytes: badLayers); Issue.record("a short layer list was accepted") } catch {
                #expect("\(error)".contains("embedding_dim") || "\(error)".contains("layers"))
            }
            // The untouched rebuild loads (the edits above are what was refused).
            if case .yamnet = try AnyModel.load(bytes: rebuild()) {} else { Issue.record("AnyModel did not load the rebuilt body as YAMNet") }
        }

        /// A logistic head `p(cry) = sigmoid(w · (x − mean) · scale + b)` written as the spec says.
        static func logisticHead(w: [Float], b: Float, mean: [Float], scale: [Float], selfTest: [Float], expected: [Double],
                                 labels: [String] = ["not_cry", "cry"]) -> [UInt8] {
            let meta: JSONValue = .object([
                "format": .string("deepinfant-model"), "format_version": .number(1), "name": .string("test-head"),
                "version": .string("0.0.1"), "task": .string("cry"), "labels": .array(labels.map { .string($0) }),
                "architecture": .object(["type": .string("embedding_head"), "input": .string("yamnet"), "input_dim": .number(Double(w.count)),
                                         "hidden": .array([]), "activation": .string("relu"), "n_classes": .number(2)]),
                "body": .object(["name": .string("yamnet"), "version": .string("1.0.0")]),
                "gate": .object(["threshold": .number(0.6)]),
                "selftest": .object(["input_tensor": .string("selftest.input"), "expected": .array(expected.map { .number($0) }),
                                     "tolerance": .number(1e-4)]),
            ])
            let d = w.count
            return SafeTensorsWriter.encode(tensors: [
                ("norm.mean", [d], mean), ("norm.scale", [d], scale),
                ("out.weight", [2, d], [Float](repeating: 0, count: d) + w), ("out.bias", [2], [0, b]),
                ("selftest.input", [d], selfTest),
            ], metadata: ["deepinfant": meta.jsonText])
        }

        @Test("a logistic cry head computes sigmoid(w·x + b) on standardised embeddings; bad heads are refused")
        func logisticHead() throws {
            let d = 1024
            let w = (0..<d).map { Float(($0 % 7) - 3) * 0.01 }
            let mean = (0..<d).map { Float($0 % 5) * 0.1 }, scale = (0..<d).map { 1 + Float($0 % 3) }
            let x = (0..<d).map { Float(($0 * 37) % 11) * 0.05 }
            var z = Double(0.25)
            for i in 0..<d { z += Double(w[i] * (x[i] - mean[i]) * scale[i]) }
            let p = 1 / (1 + exp(-z))
            let head = try EmbeddingHead.load(bytes: Self.logisticHead(w: w, b: 0.25, mean: mean, scale: scale, selfTest: x, expected: [1 - p, p]))
            #expect(head.metadata.gate?.threshold == 0.6)
            let got = x.withUnsafeBufferPointer { head.cryProbability(embedding: $0) }
            #expect(abs(got - p) < 1e-5)
            // A wrong expectation fails the self-test; wrong labels are refused by name.
            #expect(throws: ModelError.self) { try EmbeddingHead.load(bytes: Self.logisticHead(w: w, b: 0.25, mean: mean, scale: scale, selfTest: x, expected: [p, 1 - p])) }
            do { _ = try EmbeddingHead.load(bytes: Self.logisticHead(w: w, b: 0.25, mean: mean, scale: scale, selfTest: x, expected: [1 - p, p], labels: ["a", "b"])) } catch {
                #expect("\(error)".contains("labels"))
            }
            if case .head = try AnyModel.load(bytes: Self.logisticHead(w: w, b: 0.25, mean: mean, scale: scale, selfTest: x, expected: [1 - p, p])) {} else {
                Issue.record("AnyModel did not recognise the head")
            }
        }
    }
}
