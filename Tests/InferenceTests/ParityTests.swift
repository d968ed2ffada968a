import Testing
@testable import Inference

extension InferenceTestSuites {
    /// The Swift engine against PyTorch (training/make_test_models.py): max |Δp| <= 1e-4 on every golden
    /// input, for frame counts that are a full window (94), not multiples of 8 (37, 13, 50, 17) and the
    /// minimum (8), with both matrix-product backends.
    @Suite struct ParityTests {
        static let cases: [(model: String, golden: String)] = [
            ("tiny.safetensors", "tiny-golden-94.safetensors"), ("tiny.safetensors", "tiny-golden-37.safetensors"),
            ("tiny.safetensors", "tiny-golden-13.safetensors"), ("tiny.safetensors", "tiny-golden-8.safetensors"),
            ("medium.safetensors", "medium-golden-94.safetensors"), ("medium.safetensors", "medium-golden-50.safetensors"),
            ("medium.safetensors", "medium-golden-17.safetensors"),
        ]

        @Test(arguments: cases, MatMulBackend.allCases)
        func matchesPyTorch(_ c: (model: String, golden: String), backend: MatMulBackend) throws {
            let model = try Fixture.model(c.model)
            let golden = try Fixture.golden(c.golden)
            #expect(golden.nMels == model.metadata.architecture.nMels)
            let engine = CRNNEngine(model: model, backend: backend)
            var worst: Float = 0
            for (x, expected) in zip(golden.inputs, golden.probs) {
                let p = try engine.probabilities(features: x, frames: golden.frames)
                #expect(p.count == expected.count)
                for (a, b) in zip(p, expected) { worst = max(worst, abs(a - b)) }
            }
            #expect(worst <= 1e-4, "max |Δp| = \(worst)")
            #expect(!golden.inputs.isEmpty)
        }

        /// The self-test run by the loader is itself a parity check against the exporter; make sure it is
        /// really compared (a perturbed expectation must fail).
        @Test func selfTestDetectsMismatch() throws {
            var m = try EditableModel(fixture: "tiny.safetensors")
            guard case var .object(st) = m.meta, case var .object(selftest)? = st["selftest"],
                  case var .array(expected)? = selftest["expected"], case let .number(first) = expected[0],
                  case let .number(second) = expected[1] else {
                Issue.record("unexpected metadata layout"); return
            }
            expected[0] = .number(first + 0.001)
            expected[1] = .number(second - 0.001)
            selftest["expected"] = .array(expected)
            st["selftest"] = .object(selftest)
            m.meta = .object(st)
            do {
                _ = try m.load()
                Issue.record("self-test mismatch not detected")
            } catch {
                guard case let .selfTestFailed(delta, tolerance) = error else { Issue.record("wrong error \(error)"); return }
                #expect(delta > tolerance && delta < 0.0011)
            }
        }
    }
}
