import Foundation
import Testing
@testable import Inference

extension InferenceTestSuites {
    @Suite struct EngineTests {
        /// The allocation counter itself works (otherwise the zero-allocation test below proves nothing).
        @Test func allocationCounterCounts() throws {
            try #require(AllocationCounter.isAvailable)
            var kept: [[Int]] = []
            let n = AllocationCounter.count {
                for i in 0..<10 { kept.append([Int](repeating: i, count: 100 + i)) }
            }
            #expect(n >= 10)
            #expect(kept.count == 10)
        }

        /// After the first call, an inference makes no heap allocation (buffers are allocated in init).
        @Test(arguments: MatMulBackend.allCases)
        func noAllocationPerInference(backend: MatMulBackend) throws {
            try #require(AllocationCounter.isAvailable)
            let model = try ModelBundle.embeddedDefault()
            let engine = CRNNEngine(model: model, backend: backend)
            let frames = model.metadata.window.frames
            let input = [Float](repeating: -30, count: frames * 64)
            var out = [Float](repeating: 0, count: engine.classCount)
            try input.withUnsafeBufferPointer { x in
                try out.withUnsafeMutableBufferPointer { o in
                    // Warm-up with both shapes: OpenBLAS sets up its buffers on the first call of a size.
                    try engine.probabilities(features: x, frames: frames, into: o)
                    try engine.logProbabilities(features: UnsafeBufferPointer(rebasing: x[0..<(37 * 64)]), frames: 37, into: o)
                    let n = try AllocationCounter.count { () throws(InferenceError) in
                        for _ in 0..<5 {
                            try engine.probabilities(features: x, frames: frames, into: o)
                            try engine.logProbabilities(features: UnsafeBufferPointer(rebasing: x[0..<(37 * 64)]), frames: 37, into: o)
                        }
                    }
                    #expect(n == 0, "\(n) allocations in 10 inferences")
                }
            }
            #expect(abs(out.map { expf($0) }.reduce(0, +) - 1) < 1e-4)
        }

        @Test func backendsAgree() throws {
            let model = try ModelBundle.embeddedDefault()
            let a = CRNNEngine(model: model, backend: .openBLAS), b = CRNNEngine(model: model, backend: .swift)
            let pa = try a.probabilities(features: model.selfTestInput, frames: model.selfTestFrames)
            let pb = try b.probabilities(features: model.selfTestInput, frames: model.selfTestFrames)
            #expect(zip(pa, pb).allSatisfy { abs($0 - $1) < 1e-5 })
            #expect(zip(pa, model.metadata.selftest.expected).allSatisfy { abs(Double($0) - $1) < 1e-4 })
        }

        @Test func refusesBadInputs() throws {
            let model = try Fixture.model("tiny.safetensors")   // two conv blocks: at least 4 frames
            let engine = CRNNEngine(model: model, maxFrames: 94)
            #expect(engine.minFrames == 4)
            #expect(throws: InferenceError.tooFewFrames(frames: 3, minimum: 4)) {
                try engine.probabilities(features: [Float](repeating: -20, count: 3 * 64), frames: 3)
            }
            #expect(throws: InferenceError.tooManyFrames(frames: 95, maximum: 94)) {
                try engine.probabilities(features: [Float](repeating: -20, count: 95 * 64), frames: 95)
            }
            #expect(throws: InferenceError.melMismatch(expected: 64, actual: 40)) {
                try engine.probabilities(features: [Float](repeating: -20, count: 10 * 40), frames: 10)
            }
            var x = [Float](repeating: -20, count: 10 * 64)
            x[70] = .nan
            #expect(throws: InferenceError.nonFiniteInput(index: 70)) { try engine.probabilities(features: x, frames: 10) }
            // The smallest legal input works.
            let p = try engine.probabilities(features: [Float](repeating: -20, count: 4 * 64), frames: 4)
            #expect(abs(p.reduce(0, +) - 1) < 1e-5)
        }

        @Test func windowStarts() {
            #expect(RecordingClassifier.windowStarts(frames: 50, window: 94, hop: 31) == [0])
            #expect(RecordingClassifier.windowStarts(frames: 94, window: 94, hop: 31) == [0])
            #expect(RecordingClassifier.windowStarts(frames: 125, window: 94, hop: 31) == [0, 31])
            #expect(RecordingClassifier.windowStarts(frames: 130, window: 94, hop: 31) == [0, 31, 36])
            #expect(RecordingClassifier.windowStarts(frames: 313, window: 94, hop: 31) == [0, 31, 62, 93, 124, 155, 186, 217, 219])
        }

        /// Aggregation is softmax(mean of per-window log-probabilities), computed here independently.
        @Test func aggregatesMeanLogProbabilities() throws {
            let model = try Fixture.model("tiny.safetensors")
            let golden = try Fixture.golden("tiny-golden-94.safetensors")
            // A 130-frame recording: windows at 0, 31 and 36 (the tail window).
            let long = golden.inputs[0] + Array(golden.inputs[1].prefix(36 * 64))
            let classifier = RecordingClassifier(model: model)
            let r = try classifier.classify(features: long, nMels: 64)
            #expect(r.windows == 3 && r.frames == 130)
            let engine = CRNNEngine(model: model)
            var meanLog = [Double](repeating: 0, count: 5)
            for s in [0, 31, 36] {
                let p = try engine.probabilities(features: Array(long[(s * 64)..<((s + 94) * 64)]), frames: 94)
                for i in 0..<5 { meanLog[i] += log(Double(p[i])) / 3 }
            }
            let z = meanLog.map { exp($0) }.reduce(0, +)
            let expected = meanLog.map { exp($0) / z }
            #expect(zip(r.probabilities, expected).allSatisfy { abs(Double($0) - $1) < 1e-5 })
            let best = expected.indices.max { expected[$0] < expected[$1] }!
            #expect(r.label == model.labels[best])
            #expect(abs(Double(r.confidence) - expected[best]) < 1e-5)

            // Shorter than a window: one shorter window, identical to the engine on all frames.
            let short = try classifier.classify(features: golden.inputs[2].prefix(37 * 64).map { $0 }, nMels: 64)
            let direct = try engine.probabilities(features: Array(golden.inputs[2].prefix(37 * 64)), frames: 37)
            #expect(short.windows == 1 && short.frames == 37)
            #expect(zip(short.probabilities, direct).allSatisfy { abs($0 - $1) < 1e-5 })
        }
    }
}
