import Agent
import ArgumentParser
import Capture
import Features
import Foundation

/// `bench features`: log-mel throughput on ten minutes of audio, streaming in 100 ms chunks as the agent
/// does. Peers: `training/bench_features.py` runs librosa on the same audio in the same run.
struct BenchFeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "Frames/s, real-time factor and peak RSS of the log-mel front end."
    )

    @Option(help: "Audio file to use instead of 10 minutes of generated audio (noise + tones).")
    var input: String?

    @Option(help: "Seconds of generated audio.") var seconds = 600.0
    @Option(help: "Repetitions; the best is reported.") var repeats = 3
    @Option(name: .customLong("chunk"), help: "Streaming chunk size in samples.") var chunk = 1600
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var feature: FeatureOptions

    func run() throws {
        let parameters = try feature.parameters()
        let samples = try input.map { try AudioFile.read(path: $0) } ?? BenchAudio.generate(seconds: seconds)
        let extractor = try LogMelExtractor(parameters: parameters)
        let audioSeconds = Double(samples.count) / Double(parameters.sampleRate)
        var best = Double.infinity, frames = 0
        var out = FeatureMatrix(nMels: parameters.nMels)
        for _ in 0..<max(1, repeats) {
            extractor.reset()
            out.values.removeAll(keepingCapacity: true)
            let clock = ContinuousClock()
            let elapsed = clock.measure {
                var i = 0
                samples.withUnsafeBufferPointer { s in
                    while i < s.count {
                        let end = min(s.count, i + chunk)
                        extractor.process(UnsafeBufferPointer(rebasing: s[i..<end]), into: &out)
                        i = end
                    }
                }
                extractor.finish(into: &out)
            }
            frames = out.frames
            best = min(best, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
        }
        let result: [String: Any] = [
            "audio_seconds": audioSeconds, "frames": frames, "seconds": best,
            "frames_per_second": Double(frames) / best, "realtime_factor": audioSeconds / best,
            "peak_rss_mb": ProcessMemory.peakMB(),
            "n_mels": parameters.nMels, "n_fft": parameters.nFFT, "hop": parameters.hopLength, "chunk": chunk,
        ]
        if json {
            let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(String(format: "log-mel: %.0f s of audio, %d frames in %.3f s: %.0f frames/s, %.0fx real time, peak RSS %.1f MB",
                         audioSeconds, frames, best, Double(frames) / best, audioSeconds / best, ProcessMemory.peakMB()))
        }
    }
}

/// Deterministic benchmark audio: pink-ish noise plus sweeping tones, the same every run (and the same
/// as `training/bench_features.py` reads back from `--write-audio`).
enum BenchAudio {
    static func generate(seconds: Double, sampleRate: Int = 16_000) -> [Float] {
        let n = Int(seconds * Double(sampleRate))
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var out = [Float](repeating: 0, count: n)
        var lowpass: Float = 0
        for i in 0..<n {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let white = Float(Int64(bitPattern: state >> 11) - (1 << 52)) / Float(1 << 52)
            lowpass = 0.95 * lowpass + 0.05 * white
            let t = Double(i) / Double(sampleRate)
            let tone = 0.2 * sin(2 * Double.pi * (300 + 200 * sin(0.1 * t)) * t)
            out[i] = 0.3 * lowpass + 0.05 * white + Float(tone)
        }
        return out
    }
}
