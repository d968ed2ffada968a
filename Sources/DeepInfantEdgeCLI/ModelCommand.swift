import ArgumentParser
import Foundation
import Inference

/// `--model FILE`, shared by the commands that run a model; without it the embedded default is used.
struct ModelOptions: ParsableArguments {
    @Option(name: .customLong("model"), help: ArgumentHelp("Model file (.safetensors); default: the model embedded with the executable.", valueName: "file"))
    var path: String?

    /// Loads and validates the model; a bad file is a clean error (exit code 1), never a crash.
    func load(verifySelfTest: Bool = true) throws -> ModelBundle {
        try Self.load(path: path, verifySelfTest: verifySelfTest)
    }

    static func load(path: String?, verifySelfTest: Bool) throws -> ModelBundle {
        do {
            if let path { return try ModelBundle.load(path: path, verifySelfTest: verifySelfTest) }
            return try ModelBundle.embeddedDefault(verifySelfTest: verifySelfTest)
        } catch {
            throw CLIError(message: "model \(path ?? "(embedded)"): \(error.description)")
        }
    }
}

/// An error whose message is printed as is (ArgumentParser prints `Error: <description>`, exit code 1).
struct CLIError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// `model`: model-file tools.
struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Inspect model files.",
        subcommands: [ModelInspectCommand.self, ModelKeygenCommand.self, ModelSignCommand.self, ModelVerifyCommand.self]
    )
}

/// `model inspect FILE`: metadata, parameter count and the self-test result of a model file.
/// A file that fails validation prints the reason and exits 1; a failing self-test is reported (and
/// also exits 1) so an operator sees expected vs actual probabilities.
struct ModelInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print a model file's metadata, parameter count and self-test result."
    )

    @Argument(help: ArgumentHelp("Model file (.safetensors); omit for the embedded default model.", valueName: "file"))
    var file: String?

    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let model = try ModelOptions.load(path: file, verifySelfTest: false)
        let st = model.runSelfTest()
        let m = model.metadata
        if json {
            let selftest: [String: Any] = ["passed": st.passed, "max_delta": st.maxDelta.isFinite ? st.maxDelta : -1,
                                           "tolerance": st.tolerance, "expected": st.expected, "actual": st.actual]
            let meta = (try? JSONSerialization.jsonObject(with: Data(m.jsonText().utf8))) ?? [:]
            let obj: [String: Any] = ["file": model.source, "bytes": model.byteCount, "parameters": model.parameterCount,
                                      "metadata": meta, "selftest": selftest]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            let a = m.architecture, f = m.features, w = m.window
            print("file:         \(model.source) (\(model.byteCount) bytes)")
            print("model:        \(m.name) \(m.version) (task \(m.task), format \(m.format) v\(m.formatVersion))")
            print("labels:       \(m.labels.joined(separator: ", "))")
            print("architecture: \(a.type) conv \(a.convChannels) k\(a.kernel) pool \(a.pool), lstm \(a.lstmLayers)x\(a.lstmHidden) (\(a.pooling) pooling), dense \(a.dense), \(a.nClasses) classes")
            print("parameters:   \(model.parameterCount)")
            print("features:     \(f.sampleRate) Hz, n_fft \(f.nFft), hop \(f.hopLength), \(f.nMels) mels \(f.fmin)-\(f.fmax) Hz, norm (x - \(f.normMean)) / \(f.normStd)")
            print("window:       \(w.frames) frames (\(w.seconds) s), hop \(w.hopFrames) frames (\(w.hopSeconds) s), aggregation \(m.aggregation)")
            if let c = m.calibration { print("calibration:  \(c.method) T=\(c.temperature) (folded into \(c.foldedInto ?? "-"))") }
            if let t = m.training { print("training:     \(t.jsonText)") }
            let fmt = { (v: [Double]) in v.map { String(format: "%.6f", $0) }.joined(separator: " ") }
            print("self-test:    \(st.passed ? "PASS" : "FAIL") max |Δp| \(String(format: "%.2e", st.maxDelta)) (tolerance \(st.tolerance))")
            print("  expected    \(fmt(st.expected))")
            print("  actual      \(fmt(st.actual))")
        }
        if !st.passed { throw ExitCode(1) }
    }
}
