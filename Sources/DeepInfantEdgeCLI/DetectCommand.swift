import ArgumentParser
import Capture
import Foundation
import Gate
import Inference

/// `detect`: runs the cry gate (activity + cry detector + episodes + reason) over audio files, exactly as
/// the live agent would on the same audio.
struct DetectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Find infant-cry segments in audio files, with the reason of each file's cries.",
        discussion: """
        With --json, one object per file and line:
          {"file": "...", "cry": true, "segments": [{"start": 0.4, "end": 6.1, "confidence": 0.93}], "reason": "hungry"}
        `reason` is present when a cry was found (`unknown` when no reason is likely). A file that cannot be read
        gives {"file": "...", "error": "..."}; the exit status is then non-zero, after all files were tried.
        """
    )

    @Argument(help: "Audio files (WAV, FLAC, OGG; any rate) or directories of them.") var files: [String]
    @Option(help: "Reason model file (default: the embedded model).") var model: String?
    @Option(name: .customLong("cry-model"), help: "Cry detector model file: a cry head on YAMNet embeddings or a CRNN cry detector (default: the embedded one of --detector).") var cryModel: String?
    @Option(help: "Stage-2 detector when no --cry-model is given: yamnet (default) or crnn.") var detector: String = "yamnet"
    @Option(help: "YAMNet body model file (default: the embedded one).") var yamnet: String?
    @Option(name: .customLong("min-cry-patches"), help: "YAMNet patches in a row that start an episode (default: the gate's).") var minCryPatches: Int?
    @Option(help: "Cry probability threshold (default: the cry model's recommended one).") var threshold: Double?
    @Option(name: .customLong("min-cry-windows"), help: "Cry windows in a row that start an episode (default: the gate's).") var minCryWindows: Int?
    @Flag(help: "One JSON object per line.") var json = false

    func run() throws {
        let reason = try model.map { try ModelBundle.load(path: $0) } ?? ModelBundle.embeddedDefault()
        guard detector == "yamnet" || detector == "crnn" else { throw ValidationError("--detector must be yamnet or crnn") }
        let body = try yamnet.map { try YAMNetModel.load(path: $0) }
        let cry: CryDetectorModel = try cryModel.map { try CryDetectorModel.load(cryModel: $0, body: body) }
            ?? (detector == "crnn" ? .crnn(ModelBundle.embeddedCryDetector()) : .yamnet(body: body ?? YAMNetModel.embedded(), head: EmbeddingHead.embedded()))
        var settings = GateSettings()
        if let minCryPatches { settings.minCryPatches = minCryPatches }
        if let threshold { settings.cryThreshold = threshold }
        if let minCryWindows { settings.minCryWindows = minCryWindows }
        var failed = false
        for file in AudioInputs.expand(files) {
            do {
                let result = try Self.detect(file: file, cry: cry, reason: reason, settings: settings)
                print(json ? result.jsonLine : result.text)
            } catch {
                failed = true
                let message = "\(error)"
                print(json ? JSONLine.encode(["file": file, "error": message]) : "\(file): error: \(message)")
            }
        }
        if failed { throw ExitCode(1) }
    }

    struct Result {
        var file: String
        var segments: [(start: Double, end: Double, confidence: Double)]
        var estimate: ReasonEstimate?

        var jsonLine: String {
            var o: [String: Any] = ["file": file, "cry": !segments.isEmpty,
                                    "segments": segments.map { ["start": round3($0.start), "end": round3($0.end), "confidence": round3($0.confidence)] }]
            if let estimate {
                o["reason"] = estimate.reason
                o["confidence"] = estimate.confidence
                o["probabilities"] = estimate.probabilities
            }
            return JSONLine.encode(o)
        }

        var text: String {
            guard let estimate else { return "\(file): no cry" }
            let segs = segments.map { String(format: "%.1f–%.1f s (%.2f)", $0.start, $0.end, $0.confidence) }.joined(separator: ", ")
            return "\(file): cry at \(segs); reason \(estimate.reason) (\(String(format: "%.2f", estimate.confidence)))"
        }
    }

    static func detect(file: String, cry: CryDetectorModel, reason: ModelBundle, settings: GateSettings) throws -> Result {
        // Decoded block by block: an hour-long recording costs a block of memory, not the whole signal.
        let reader = try AudioFileReader(path: file)
        let gate = try CryGate(detector: cry, reasonModel: reason, settings: settings)
        var events: [GateEvent] = []
        var total = 0
        let t0 = Date()
        while let block = reader.next(frames: 1600) {
            events += gate.process(block, startIndex: Int64(total), timestamp: t0.addingTimeInterval(Double(total) / 16_000))
            total += block.count
        }
        events += gate.finish()
        var result = Result(file: file, segments: [], estimate: nil)
        var longest = -1
        for case let .cryEnded(_, _, _, _, windows, _, estimate) in events {
            if windows > longest { longest = windows; result.estimate = estimate }
        }
        var starts: [Double] = []
        for e in events {
            switch e {
            case let .cryStarted(_, _, t, _, _, _): starts.append(t)
            case let .cryEnded(_, _, _, duration, _, confidence, _):
                let s = starts.last ?? 0
                result.segments.append((s, min(s + duration, Double(total) / 16_000), confidence))
            default: break
            }
        }
        return result
    }
}

func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }

enum JSONLine {
    static func encode(_ object: [String: Any]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
