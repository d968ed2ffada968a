import Foundation
import Testing
@testable import Inference

extension InferenceTestSuites {
    /// Loading real model files, and each way a file can be refused (one specific `ModelError` each).
    @Suite struct ModelLoadingTests {
        @Test func loadsFixturesAndCountsParameters() throws {
            let tiny = try Fixture.model("tiny.safetensors")
            #expect(tiny.metadata.labels == ["belly_pain", "burping", "discomfort", "hungry", "tired"])
            #expect(tiny.metadata.architecture.convChannels == [4, 8])
            #expect(tiny.metadata.calibration?.temperature == 1.5)
            #expect(tiny.parameterCount == 12_061)          // PyTorch: sum(p.numel() for p in model.parameters())
            let medium = try Fixture.model("medium.safetensors")
            #expect(medium.metadata.task == "cry")
            #expect(medium.metadata.architecture.pooling == "last")
            #expect(medium.parameterCount == 52_270)
            #expect(medium.runSelfTest().passed)
        }

        @Test func embeddedDefaultModelLoads() throws {
            let m = try ModelBundle.embeddedDefault()
            // The shipped, trained reason model (training/REPORT.md): 3 conv blocks, ~207k parameters.
            #expect(m.metadata.task == "reason")
            #expect(m.metadata.labels == ["belly_pain", "burping", "discomfort", "hungry", "tired"])
            #expect(m.metadata.architecture.convChannels == [16, 32, 64])
            #expect(m.metadata.window.frames == 94)
            #expect(m.parameterCount == 206_901)
            #expect(m.parameterCount < 1_000_000)
            #expect(!m.metadata.version.contains("untrained"))
            let st = m.runSelfTest()
            #expect(st.passed && st.maxDelta <= 1e-4)
            // The features it declares are ones the front end accepts.
            try m.metadata.features.logMelParameters.validate()
            // The embedded cry detector too, with the gate threshold chosen on out-of-fold predictions.
            let cry = try ModelBundle.embeddedCryDetector()
            #expect(cry.metadata.task == "cry" && cry.labels == ["not_cry", "cry"])
            #expect(cry.runSelfTest().passed)
            #expect(cry.metadata.gate.map { $0.threshold > 0 && $0.threshold < 1 } == true)
            #expect(cry.metadata.features.logMelParameters == m.metadata.features.logMelParameters)
        }

        @Test func unreadableFile() {
            do {
                _ = try ModelBundle.load(path: "/nonexistent/model.safetensors")
                Issue.record("loaded a missing file")
            } catch {
                guard case .unreadable(path: "/nonexistent/model.safetensors", _) = error else { Issue.record("wrong error \(error)"); return }
            }
        }

        @Test func containerErrors() throws {
            let good = try Fixture.bytes("tiny.safetensors")
            expectLoadError(.truncated(reason: "5 bytes, need at least 8 for the header length")) {
                try ModelBundle.load(bytes: [1, 2, 3, 4, 5])
            }
            var huge = good
            for i in 0..<8 { huge[i] = 0xFF }
            expectLoadError(.invalidHeaderLength(declared: UInt64.max, fileSize: good.count)) { try ModelBundle.load(bytes: huge) }
            let cut = Array(good.prefix(100))
            do {
                _ = try ModelBundle.load(bytes: cut)
                Issue.record("truncated file loaded")
            } catch {
                guard case .truncated = error else { Issue.record("wrong error \(error)"); return }
            }
            func withHeader(_ json: String) -> [UInt8] {
                var out: [UInt8] = []
                withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { out += $0 }
                return out + Array(json.utf8)
            }
            do {
                _ = try ModelBundle.load(bytes: withHeader("{\"a\": [1, 2"))
                Issue.record("bad JSON loaded")
            } catch {
                guard case .headerNotJSON = error else { Issue.record("wrong error \(error)"); return }
            }
            expectLoadError(.headerNotObject) { try ModelBundle.load(bytes: withHeader("[1, 2, 3]")) }
            expectLoadError(.missingMetadata(key: "__metadata__.deepinfant")) { try ModelBundle.load(bytes: withHeader("{}")) }
            expectLoadError(.invalidHeaderEntry(key: "__metadata__.deepinfant", reason: "value must be a string")) {
                try ModelBundle.load(bytes: withHeader("{\"__metadata__\": {\"deepinfant\": 3}}"))
            }
            expectLoadError(.unsupportedDType(tensor: "x", dtype: "Q4")) {
                try ModelBundle.load(bytes: withHeader("{\"x\": {\"dtype\": \"Q4\", \"shape\": [1], \"data_offsets\": [0, 1]}}") + [0])
            }
            do {
                _ = try ModelBundle.load(bytes: withHeader("{\"x\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4]}}") + [0, 0, 0, 0])
                Issue.record("size mismatch loaded")
            } catch {
                guard case .invalidDataOffsets(tensor: "x", _) = error else { Issue.record("wrong error \(error)"); return }
            }
        }

        @Test func missingAndExtraTensors() throws {
            var m = try EditableModel(fixture: "tiny.safetensors")
            m.tensors["out.bias"] = nil
            expectLoadError(.missingTensor(name: "out.bias")) { try m.load() }

            m = try EditableModel(fixture: "tiny.safetensors")
            m.tensors["blocks.0.bn.num_batches_tracked"] = ([], [3])
            expectLoadError(.unexpectedTensor(name: "blocks.0.bn.num_batches_tracked")) { try m.load() }

            m = try EditableModel(fixture: "tiny.safetensors")
            m.tensors["selftest.input"] = nil
            expectLoadError(.missingTensor(name: "selftest.input")) { try m.load() }

            // The optional conv bias may be absent (crnn.py uses bias=False); the self-test then fails
            // because the fixture was exported with one, which proves the bias is really used.
            m = try EditableModel(fixture: "tiny.safetensors")
            m.tensors["blocks.0.conv.bias"] = nil
            do {
                _ = try m.load()
                Issue.record("loaded without a bias the self-test depends on")
            } catch {
                guard case .selfTestFailed = error else { Issue.record("wrong error \(error)"); return }
            }
        }

        @Test func shapeMismatchAgainstArchitecture() throws {
            var m = try EditableModel(fixture: "tiny.safetensors")
            m.tensors["lstm.weight_hh_l1"] = ([64, 15], [Float](repeating: 0, count: 64 * 15))
            expectLoadError(.shapeMismatch(tensor: "lstm.weight_hh_l1", expected: [64, 16], actual: [64, 15])) { try m.load() }

            m = try EditableModel(fixture: "tiny.safetensors")
            m.set("architecture.lstm_hidden", .number(32))
            expectLoadError(.shapeMismatch(tensor: "lstm.weight_ih_l0", expected: [128, 128], actual: [64, 128])) { try m.load() }

            m = try EditableModel(fixture: "tiny.safetensors")
            m.set("architecture.n_mels", .number(32))
            m.set("features.n_mels", .number(32))
            expectLoadError(.shapeMismatch(tensor: "selftest.input", expected: [94, 32], actual: [94, 64])) { try m.load() }
        }

        @Test func unsupportedDType() throws {
            let m = try EditableModel(fixture: "tiny.safetensors")
            var raw: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])] = m.tensors.map { k, v in
                (k, "F32", v.shape, v.values.flatMap { f in withUnsafeBytes(of: f.bitPattern.littleEndian) { Array($0) } })
            }
            let i = try #require(raw.firstIndex { $0.name == "out.bias" })
            raw[i] = ("out.bias", "F16", [5], [UInt8](repeating: 0, count: 10))
            let bytes = SafeTensorsWriter.encodeRaw(tensors: raw, metadata: ["deepinfant": m.meta.jsonText])
            expectLoadError(.unsupportedDType(tensor: "out.bias", dtype: "F16")) { try ModelBundle.load(bytes: bytes) }
        }

        @Test func nonFiniteWeights() throws {
            var m = try EditableModel(fixture: "tiny.safetensors")
            m.tensors["dense.0.weight"]!.values[17] = .nan
            expectLoadError(.nonFiniteWeight(tensor: "dense.0.weight", index: 17)) { try m.load() }
            m = try EditableModel(fixture: "tiny.safetensors")
            m.tensors["blocks.1.conv.weight"]!.values[3] = -.infinity
            expectLoadError(.nonFiniteWeight(tensor: "blocks.1.conv.weight", index: 3)) { try m.load() }
            m = try EditableModel(fixture: "tiny.safetensors")
            m.tensors["blocks.0.bn.running_var"]!.values[2] = -1
            expectLoadError(.nonFiniteWeight(tensor: "blocks.0.bn.running_var", index: 2)) { try m.load() }
        }

        @Test(arguments: [
            ("features.power", JSONValue.number(1), "power"),
            ("features.sample_rate", .number(22050), "sample_rate"),
            ("features.n_fft", .number(1000), "n_fft"),
            ("features.hop_length", .number(4096), "hop_length"),
            ("features.fmax", .number(9000), "fmax"),
            ("features.mel_htk", .bool(true), "mel_htk"),
            ("features.mel_norm", .null, "mel_norm"),
            ("features.window", .string("hamming"), "window"),
            ("features.center", .bool(false), "center"),
            ("features.pad_mode", .string("reflect"), "pad_mode"),
            ("features.db_top_db", .number(80), "db_top_db"),
            ("features.norm_std", .number(0), "norm_std"),
            ("features.n_mels", .number(40), "n_mels"),
        ])
        func unsupportedFeatures(path: String, value: JSONValue, key: String) throws {
            var m = try EditableModel(fixture: "tiny.safetensors")
            m.set(path, value)
            do {
                _ = try m.load()
                Issue.record("loaded with \(path) = \(value)")
            } catch {
                switch error {
                case let .unsupportedFeatures(k, _): #expect(k == key)
                case let .missingMetadata(k): #expect(k == path)  // mel_norm: null reads as missing
                default: Issue.record("wrong error \(error)")
                }
            }
        }

        @Test func metadataErrorsNameTheKey() throws {
            var m = try EditableModel(fixture: "tiny.safetensors")
            m.set("labels", nil)
            expectLoadError(.missingMetadata(key: "labels")) { try m.load() }

            m = try EditableModel(fixture: "tiny.safetensors")
            m.set("window.hop_frames", .string("31"))
            do { _ = try m.load(); Issue.record("loaded") } catch {
                guard case .invalidMetadata(key: "window.hop_frames", _) = error else { Issue.record("wrong error \(error)"); return }
            }

            m = try EditableModel(fixture: "tiny.safetensors")
            m.set("labels", .array([.string("a"), .string("b")]))
            expectLoadError(.invalidMetadata(key: "labels", reason: "2 labels for 5 classes")) { try m.load() }

            let cases: [(String, JSONValue, String)] = [
                ("format_version", .number(2), "format_version"),
                ("format", .string("other"), "format"),
                ("architecture.type", .string("transformer"), "architecture.type"),
                ("architecture.pooling", .string("max"), "architecture.pooling"),
                ("window.frames", .number(3), "window.frames"),
                ("window.seconds", .number(10), "window.seconds"),
                ("aggregation", .string("vote"), "aggregation"),
                ("calibration.folded_into", .null, "calibration.folded_into"),
                ("selftest.tolerance", .number(0.5), "selftest.tolerance"),
                ("task", .string("sleep"), "task"),
            ]
            for (path, value, key) in cases {
                var e = try EditableModel(fixture: "tiny.safetensors")
                e.set(path, value)
                do { _ = try e.load(); Issue.record("loaded with \(path) = \(value)") } catch {
                    guard case .invalidMetadata(key: key, _) = error else { Issue.record("\(path): wrong error \(error)"); continue }
                }
            }
        }

        @Test func errorMessagesNameTheCulprit() {
            #expect(ModelError.missingTensor(name: "lstm.bias_hh_l1").description.contains("lstm.bias_hh_l1"))
            #expect(ModelError.shapeMismatch(tensor: "out.weight", expected: [5, 64], actual: [4, 64]).description
                == "tensor out.weight: shape [4, 64] does not match the architecture's [5, 64]")
            #expect(ModelError.unsupportedFeatures(key: "power", reason: "x").description.contains("power"))
        }
    }
}
