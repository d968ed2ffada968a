import ArgumentParser
import Capture
import Features
import Foundation
import Gate
import Inference

/// `classify FILE...`: why is the baby crying, per recording. Each file is read (any rate, resampled to
/// 16 kHz mono), turned into log-mel features with the model's own feature parameters, and classified
/// over sliding windows (`RecordingClassifier`: softmax of the mean per-window log-probabilities).
/// The reason model answers for any sound, a dog included, so the cry gate's detector (as `detect` runs
/// it) first says whether the recording holds a cry: without one the reason is `unknown` and `cry` false.
/// A file that cannot be read or classified is reported and skipped; the exit code is 1 if any failed.
struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Classify the cry reason in audio files.",
        discussion: """
        With --json, one object per file and line:
          {"file": "...", "cry": true, "reason": "hungry", "confidence": 0.81, "probabilities": {"hungry": 0.81, ...}}
        `cry`: whether the cry gate's detector (YAMNet + the cry head, as `detect`) finds a cry in the recording; when
        it does not, or when no reason reaches the node's 0.45 (gate.reason_min_confidence), `reason` is "unknown"
        (`probabilities` and `confidence` stay what the reason model says of the whole recording). --assume-cry skips the check (the recordings are known to be cries). A directory stands for
        the audio files under it (by extension); a named file that is not audio gives {"file": "...", "error": "..."}
        and, after all files were tried, a non-zero exit status.
        """
    )

    @OptionGroup var model: ModelOptions
    @Flag(help: "Print one JSON object per file and line.") var json = false
    @Flag(name: .customLong("assume-cry"), help: "Do not check for a cry first (the recordings are cries).") var assumeCry = false
    @Argument(help: ArgumentHelp("Audio files (WAV, FLAC, OGG) or directories of them.", valueName: "file")) var files: [String]

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one audio file") }
    }

    func run() throws {
        let bundle = try model.load()
        let extractor: LogMelExtractor
        do { extractor = try LogMelExtractor(parameters: bundle.metadata.features.logMelParameters) } catch {
            throw CLIError(message: "model features: \(error.description)")
        }
        let classifier = RecordingClassifier(model: bundle)
        let cryDetector = try assumeCry ? nil : CryDetectorModel.embedded(kind: "yamnet")
        var failures = 0
        for file in AudioInputs.expand(files) {
            do {
                let samples = try AudioFile.read(path: file, targetRate: bundle.metadata.features.sampleRate)
                let features = extractor.compute(samples)
                let r = try classifier.classify(features: features.values, nMels: features.nMels)
                let cry = try cryDetector.map { !(try DetectCommand.detect(file: file, cry: $0, reason: bundle, settings: GateSettings()).segments.isEmpty) }
                print(json ? Self.jsonLine(file: file, result: r, cry: cry) : Self.textLine(file: file, result: r, cry: cry))
            } catch {
                failures += 1
                let message = "\(error)"
                if json {
                    print("{\"file\":\(Self.quote(file)),\"error\":\(Self.quote(message))}")
                } else {
                    FileHandle.standardError.write(Data("\(file): error: \(message)\n".utf8))
                }
            }
        }
        if failures > 0 { throw ExitCode(1) }
    }

    /// `{"file": …, "cry": …, "reason": …, "confidence": …, "probabilities": {label: p, …}}` in that key
    /// order, probabilities in the model's label order; `cry` only when it was checked (nil: --assume-cry).
    static func jsonLine(file: String, result r: RecordingClassifier.Result, cry: Bool? = nil) -> String {
        let probs = zip(r.labels, r.probabilities).map { "\(quote($0)):\(number($1))" }.joined(separator: ",")
        let reason = cry == false || Double(r.confidence) < GateSettings().reasonMinConfidence ? ReasonEstimate.unknown : r.label
        let cryField = cry.map { "\"cry\":\($0)," } ?? ""
        return "{\"file\":\(quote(file)),\(cryField)\"reason\":\(quote(reason)),\"confidence\":\(number(r.confidence)),\"probabilities\":{\(probs)}}"
    }

    static func textLine(file: String, result r: RecordingClassifier.Result, cry: Bool? = nil) -> String {
        let probs = zip(r.labels, r.probabilities).map { "\($0) \(String(format: "%.3f", $1))" }.joined(separator: ", ")
        let label = Double(r.confidence) < GateSettings().reasonMinConfidence ? "\(ReasonEstimate.unknown) (top \(r.label))" : r.label
        let answer = "\(label) (\(String(format: "%.1f", 100 * r.confidence))%) [\(probs)] over \(r.windows) window\(r.windows == 1 ? "" : "s")"
        return cry == false ? "\(file): no cry heard (as a cry it would be: \(answer))" : "\(file): \(answer)"
    }

    static func quote(_ s: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        let data = (try? encoder.encode(s)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func number(_ v: Float) -> String { String(format: "%.6g", Double(v)) }
}
