import Agent
import ArgumentParser
import Foundation
import Inference

/// `bench model`: per-window inference latency (p50/p99, one thread), heap allocations per inference
/// and peak RSS. The input is deterministic (the model's self-test features, repeated to `--frames`),
/// so `training/bench_model.py` runs PyTorch and ONNX Runtime on exactly the same weights and input.
struct BenchModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Per-window latency, allocations and peak RSS of the CRNN engine (build with -c release)."
    )

    @OptionGroup var model: ModelOptions
    @Option(help: "Frames per window (default: the model's window).") var frames: Int?
    @Option(help: "Timed inferences.") var iterations = 300
    @Option(help: "Untimed inferences first.") var warmup = 30
    @Option(help: "Matrix-product backend: openblas or swift.") var backend: String = MatMulBackend.openBLAS.rawValue
    @Flag(help: "Bench the YAMNet body instead (front end + body per 0.975 s patch; --model then names a YAMNet file).") var yamnet = false
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        if yamnet { return try runYAMNet() }
        guard let backend = MatMulBackend(rawValue: backend) else {
            throw ValidationError("--backend must be one of \(MatMulBackend.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let rssBefore = ProcessMemory.peakMB()
        let bundle = try model.load()
        let arch = bundle.metadata.architecture
        let n = frames ?? bundle.metadata.window.frames
        let engine = CRNNEngine(model: bundle, maxFrames: n, backend: backend)
        let input = Self.benchInput(bundle, frames: n)
        var probs = [Float](repeating: 0, count: engine.classCount)
        var times = [Double](repeating: 0, count: max(1, iterations))
        var allocations: UInt64 = 0
        let clock = ContinuousClock()
        try input.withUnsafeBufferPointer { x in
            try probs.withUnsafeMutableBufferPointer { p in
                for _ in 0..<max(1, warmup) { try engine.probabilities(features: x, frames: n, into: p) }
                let before = AllocationCounter.current
                try times.withUnsafeMutableBufferPointer { t in
                    for i in 0..<t.count {
                        let start = clock.now
                        try engine.probabilities(features: x, frames: n, into: p)
                        let d = clock.now - start
                        t[i] = Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) * 1e-15
                    }
                }
                allocations = AllocationCounter.current - before
            }
        }
        let sorted = times.sorted()
        func pct(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int((q * Double(sorted.count - 1)).rounded()))] }
        let result: [String: Any] = [
            "engine": "swift", "backend": backend.rawValue, "threads": 1,
            "model": bundle.source, "model_version": bundle.metadata.version, "parameters": bundle.parameterCount,
            "frames": n, "n_mels": arch.nMels, "iterations": times.count,
            "p50_ms": pct(0.5), "p99_ms": pct(0.99), "mean_ms": times.reduce(0, +) / Double(times.count), "min_ms": sorted[0],
            "allocations_per_inference": AllocationCounter.isAvailable ? Double(allocations) / Double(times.count) : -1,
            "peak_rss_mb": ProcessMemory.peakMB(), "peak_rss_before_load_mb": rssBefore,
            "ru_maxrss_mb": ProcessMemory.maxRSSMB(),
            "probabilities": probs.map(Double.init),
        ]
        if json {
            let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(String(format: "model %@ %@ (%d parameters), %d x %d window, %@ backend, 1 thread",
                         bundle.metadata.name, bundle.metadata.version, bundle.parameterCount, n, arch.nMels, backend.rawValue))
            print(String(format: "latency: p50 %.3f ms, p99 %.3f ms, mean %.3f ms, min %.3f ms over %d inferences",
                         pct(0.5), pct(0.99), times.reduce(0, +) / Double(times.count), sorted[0], times.count))
            print(AllocationCounter.isAvailable
                  ? "allocations per inference: \(Double(allocations) / Double(times.count))"
                  : "allocations per inference: not measurable on this C library")
            print(String(format: "peak RSS: %.1f MB (%.1f MB before loading the model)", ProcessMemory.peakMB(), rssBefore))
        }
    }

    /// Per-patch latency of YAMNet (log-mel front end + body + classifier) on the model's self-test
    /// waveform; `training/bench_yamnet.py` runs the TFLite interpreter on the same waveform.
    func runYAMNet() throws {
        let rssBefore = ProcessMemory.peakMB()
        let body: YAMNetModel
        do { body = try model.path.map { try YAMNetModel.load(path: $0) } ?? YAMNetModel.embedded() } catch {
            throw CLIError(message: "model \(model.path ?? "(embedded YAMNet)"): \(error)")
        }
        let engine = YAMNetEngine(model: body)
        var times = [Double](repeating: 0, count: max(1, iterations))
        let clock = ContinuousClock()
        var allocations: UInt64 = 0
        body.selfTestInput.withUnsafeBufferPointer { x in
            for _ in 0..<max(1, warmup) { engine.run(samples: x.baseAddress!) }
            let before = AllocationCounter.current
            for i in 0..<times.count {
                let start = clock.now
                engine.run(samples: x.baseAddress!)
                let d = clock.now - start
                times[i] = Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) * 1e-15
            }
            allocations = AllocationCounter.current - before
        }
        let sorted = times.sorted()
        func pct(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int((q * Double(sorted.count - 1)).rounded()))] }
        let result: [String: Any] = [
            "engine": "swift", "model": body.source, "model_name": body.metadata.name, "model_version": body.metadata.version,
            "parameters": body.parameterCount, "threads": 1, "iterations": times.count, "patch_samples": body.frontEnd.patchSamples,
            "p50_ms": pct(0.5), "p99_ms": pct(0.99), "mean_ms": times.reduce(0, +) / Double(times.count), "min_ms": sorted[0],
            "allocations_per_inference": AllocationCounter.isAvailable ? Double(allocations) / Double(times.count) : -1,
            "peak_rss_mb": ProcessMemory.peakMB(), "peak_rss_before_load_mb": rssBefore,
            "embedding_head": Array(engine.embeddingBuffer.prefix(4)).map(Double.init),
            "baby_cry_score": Double(engine.scoreBuffer[20]),
        ]
        if json {
            let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("YAMNet \(body.metadata.version) (\(body.parameterCount) parameters), one 0.975 s patch incl. front end, 1 thread")
            print(String(format: "latency: p50 %.3f ms, p99 %.3f ms, mean %.3f ms, min %.3f ms over %d patches",
                         pct(0.5), pct(0.99), times.reduce(0, +) / Double(times.count), sorted[0], times.count))
            print(String(format: "peak RSS: %.1f MB (%.1f MB before loading the model)", ProcessMemory.peakMB(), rssBefore))
        }
    }

    /// `frames` × n_mels raw dB features: the self-test input, frame t taken from `t % selfTestFrames`
    /// (training/bench_model.py builds the same).
    static func benchInput(_ m: ModelBundle, frames: Int) -> [Float] {
        let mels = m.metadata.architecture.nMels
        var x = [Float](repeating: 0, count: frames * mels)
        for t in 0..<frames {
            let s = t % m.selfTestFrames
            for k in 0..<mels { x[t * mels + k] = m.selfTestInput[s * mels + k] }
        }
        return x
    }
}
