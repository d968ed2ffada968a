import ArgumentParser
import Capture
import Features
import Foundation
import Inference

/// `classify FILE...`: why is the baby crying, per recording. Each file is read (any rate, resampled to
/// 16 kHz mono), turned into log-mel features with the model's own feature parameters, and classified
/// over sliding windows (`RecordingClassifier`: softmax of the mean per-window log-probabilities).
/// A file that cannot be read or classified is reported and skipped; the exit code is 1 if any failed.
struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Classify the cry reason in audio files."
    )

    @OptionGroup var model: ModelOptions
    @Flag(help: "Print one JSON object per file and line.") var json = false
    @Argument(help: ArgumentHelp("Audio files (WAV, FLAC, OGG).", valueName: "file")) var files: [String]

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
        var failures = 0
        for file in files {
            do {
                let samples = try AudioFile.read(path: file, targetRate: bundle.metadata.features.sampleRate)
                let features = extractor.compute(samples)
                let r = try classifier.classify(features: features.values, nMels: features.nMels)
                print(json ? Self.jsonLine(file: file, result: r) : Self.textLine(file: file, result: r))
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

    /// `{"file": …, "reason": …, "confidence": …, "probabilities": {label: p, …}}` in that key order,
    /// probabilities in the model's label order.
    static func jsonLine(file: String, result r: RecordingClassifier.Result) -> String {
        let probs = zip(r.labels, r.probabilities).map { "\(quote($0)):\(number($1))" }.joined(separator: ",")
        return "{\"file\":\(quote(file)),\"reason\":\(quote(r.label)),\"confidence\":\(number(r.confidence)),\"probabilities\":{\(probs)}}"
    }

    static func textLine(file: String, result r: RecordingClassifier.Result) -> String {
        let probs = zip(r.labels, r.probabilities).map { "\($0) \(String(format: "%.3f", $1))" }.joined(separator: ", ")
        return "\(file): \(r.label) (\(String(format: "%.1f", 100 * r.confidence))%) [\(probs)] over \(r.windows) window\(r.windows == 1 ? "" : "s")"
    }

    static func quote(_ s: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        let data = (try? encoder.encode(s)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func number(_ v: Float) -> String { String(format: "%.6g", Double(v)) }
}
