import Agent
import ArgumentParser
import Capture
import Foundation
import Gate
import Inference

/// `bench pipeline`: CPU cost of the gate (activity + features + cry CRNN + reason CRNN + episodes) per
/// second of audio, for silence, background sounds and continuous crying — the figures that decide whether
/// a Raspberry Pi idles cool.
struct BenchPipelineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "CPU time per second of audio for silence, background (speech, dog) and continuous crying."
    )

    @Option(help: "Seconds of audio per scenario.") var seconds = 120.0
    @Option(help: "Cry recording to loop (default: samples/cry-hungry.flac).") var cry = "samples/cry-hungry.flac"
    @Option(help: "Background recordings to loop, comma-separated.") var background = "samples/speech.flac,samples/dog.flac"
    @Option(help: "Cry detectors to compare, comma-separated (yamnet, crnn).") var detectors = "yamnet,crnn"
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let reasonModel = try ModelBundle.embeddedDefault()
        let kinds = detectors.split(separator: ",").map(String.init)
        guard !kinds.isEmpty, kinds.allSatisfy({ $0 == "yamnet" || $0 == "crnn" }) else { throw ValidationError("--detectors: yamnet and/or crnn") }
        let models = try kinds.map { try CryDetectorModel.embedded(kind: $0) }
        let n = Int(seconds * 16_000)
        func loop(_ files: [String]) throws -> [Float] {
            var one: [Float] = []
            for f in files { one += try AudioFile.read(path: f) + [Float](repeating: 0, count: 8000) }
            var out: [Float] = []
            out.reserveCapacity(n)
            while out.count < n { out += one.prefix(n - out.count) }
            return out
        }
        var state: UInt32 = 7
        let scenarios: [(String, [Float])] = [
            ("silence", [Float](repeating: 0, count: n)),
            ("room_noise", (0..<n).map { _ in state = state &* 1_664_525 &+ 1_013_904_223; return 0.003 * (Float(state >> 8) / Float(1 << 24) - 0.5) }),
            ("background", try loop(background.split(separator: ",").map(String.init))),
            ("crying", try loop([cry])),
        ]
        var rows: [[String: Any]] = []
        for (name, audio) in scenarios { for model in models {
            let gate = try CryGate(detector: model, reasonModel: reasonModel)
            var events = 0
            let cpu0 = Self.cpuSeconds(), wall0 = Date()
            var i = 0
            let t0 = Date()
            while i < audio.count {
                let end = min(audio.count, i + 1600)
                events += gate.process(Array(audio[i..<end]), startIndex: Int64(i), timestamp: t0).count
                i = end
            }
            events += gate.finish().count
            let cpu = Self.cpuSeconds() - cpu0, wall = Date().timeIntervalSince(wall0)
            rows.append(["scenario": name, "detector": model.kind, "audio_s": seconds, "cpu_s": cpu, "wall_s": wall,
                         "realtime_factor": seconds / max(cpu, 1e-9), "core_percent_at_1x": 100 * cpu / seconds,
                         "cry_windows": gate.cryWindowsAnalysed, "reason_windows": gate.reasonWindowsAnalysed, "events": events])
        } }
        if json {
            let data = try JSONSerialization.data(withJSONObject: ["scenarios": rows, "peak_rss_mb": ProcessMemory.peakMB()], options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("scenario     detector  audio   cpu      x real time   % of one core   cry/reason windows   events")
        for r in rows {
            let label = (r["scenario"] as! String).padding(toLength: 12, withPad: " ", startingAt: 0) + " "
                + (r["detector"] as! String).padding(toLength: 8, withPad: " ", startingAt: 0)
            print(label + String(format: " %5.0f s %7.3f s %10.0fx %12.3f %%    %6d / %-6d       %d",
                         r["audio_s"] as! Double, r["cpu_s"] as! Double, r["realtime_factor"] as! Double,
                         r["core_percent_at_1x"] as! Double, r["cry_windows"] as! Int, r["reason_windows"] as! Int, r["events"] as! Int))
        }
        print(String(format: "peak RSS %.1f MB (includes the %.0f s test signals held in memory)", ProcessMemory.peakMB(), seconds * 4))
    }

    static func cpuSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
