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
        subcommands: [ModelInspectCommand.self, ModelKeygenCommand.self, ModelSignCommand.self, ModelVerifyCommand.self, ModelTrainHeadCommand.self]
    )
}

/// `model inspect FILE`: metadata, parameter count and the self-test result of a model file of any kind
/// (reason or cry CRNN, YAMNet body, cry head). A file that fails validation prints the reason and exits 1;
/// a failing self-test is reported (and also exits 1) so an operator sees expected vs actual outputs.
/// It also prints what an exporter needs (sha256 of the file, input, output, how the node answers).
struct ModelInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print a model file's metadata, parameter count and self-test result (CRNN, YAMNet body or cry head)."
    )

    @Argument(help: ArgumentHelp("Model file (.safetensors); omit for the embedded default reason model.", valueName: "file"))
    var file: String?

    @Option(help: ArgumentHelp("A model shipped in the executable instead of a file: reason, cry-crnn, yamnet or cry-head.", valueName: "name"))
    var embedded: String?

    @Flag(help: "Print one JSON object.") var json = false

    static let embeddedNames: [String: EmbeddedModel] = ["reason": .reason, "cry-crnn": .cryCRNN, "yamnet": .yamnet, "cry-head": .cryHead]

    func validate() throws {
        if file != nil, embedded != nil { throw ValidationError("give a file or --embedded, not both") }
        if let embedded, Self.embeddedNames[embedded] == nil {
            throw ValidationError("--embedded must be one of \(Self.embeddedNames.keys.sorted().joined(separator: ", "))")
        }
    }

    func run() throws {
        let any: AnyModel
        let fileBytes: [UInt8]
        if let file {
            do { any = try AnyModel.load(path: file, verifySelfTest: false) } catch {
                throw CLIError(message: "model \(file): \(error.description)")
            }
            fileBytes = (FileManager.default.contents(atPath: file)).map { [UInt8]($0) } ?? []
        } else {
            let which = embedded.flatMap { Self.embeddedNames[$0] } ?? .reason
            fileBytes = which.bytes
            do { any = try AnyModel.load(bytes: fileBytes, source: which.source, verifySelfTest: false) } catch {
                throw CLIError(message: "model \(which.source): \(error.description)")
            }
        }
        let sha256 = ModelInterface.sha256(fileBytes)
        let interface = ModelInterface.of(any)
        let st = any.runSelfTest()
        let (source, bytes, parameters) = switch any {
        case let .crnn(m): (m.source, m.byteCount, m.parameterCount)
        case let .yamnet(m): (m.source, m.byteCount, m.parameterCount)
        case let .head(m): (m.source, m.byteCount, m.parameterCount)
        }
        if json {
            let selftest: [String: Any] = ["passed": st.passed, "max_delta": st.maxDelta.isFinite ? st.maxDelta : -1,
                                           "tolerance": st.tolerance, "expected": st.expected, "actual": st.actual]
            let metaText: String = switch any {
            case let .crnn(m): m.metadata.jsonText()
            case let .yamnet(m): Self.snakeJSON(m.metadata)
            case let .head(m): Self.snakeJSON(m.metadata)
            }
            let meta = (try? JSONSerialization.jsonObject(with: Data(metaText.utf8))) ?? [:]
            let obj: [String: Any] = ["file": source, "bytes": bytes, "sha256": sha256, "parameters": parameters, "kind": any.architectureType,
                                      "input": interface.input, "output": interface.output, "metadata": meta, "selftest": selftest]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("file:         \(source) (\(bytes) bytes)")
            print("sha256:       \(sha256)")
            switch any {
            case let .crnn(model):
                let m = model.metadata
                let a = m.architecture, f = m.features, w = m.window
                print("model:        \(m.name) \(m.version) (kind crnn, task \(m.task), format \(m.format) v\(m.formatVersion))")
                print("labels:       \(m.labels.joined(separator: ", "))")
                print("architecture: \(a.type) conv \(a.convChannels) k\(a.kernel) pool \(a.pool), lstm \(a.lstmLayers)x\(a.lstmHidden) (\(a.pooling) pooling), dense \(a.dense), \(a.nClasses) classes")
                print("parameters:   \(parameters)")
                print("features:     \(f.sampleRate) Hz, n_fft \(f.nFft), hop \(f.hopLength), \(f.nMels) mels \(f.fmin)-\(f.fmax) Hz, norm (x - \(f.normMean)) / \(f.normStd)")
                print("window:       \(w.frames) frames (\(w.seconds) s), hop \(w.hopFrames) frames (\(w.hopSeconds) s), aggregation \(m.aggregation)")
                if let c = m.calibration { print("calibration:  \(c.method) T=\(c.temperature) (folded into \(c.foldedInto ?? "-"))") }
                if let g = m.gate { print("gate:         threshold \(g.threshold)") }
                if let t = m.training { print("training:     \(t.jsonText)") }
            case let .yamnet(model):
                let m = model.metadata, a = m.architecture, f = m.features
                print("model:        \(m.name) \(m.version) (kind yamnet, task \(m.task), format \(m.format) v\(m.formatVersion))")
                print("labels:       \(m.labels.count) (\(m.labels.prefix(3).map { "\"\($0)\"" }.joined(separator: ", ")), ...)")
                print("architecture: \(a.type) \(a.layers.count) layers (\(a.activation), \(a.padding) padding), embedding \(a.embeddingDim), \(a.nClasses) classes")
                print("parameters:   \(parameters)")
                print("features:     \(f.type) \(f.sampleRate) Hz, window \(f.windowLength), hop \(f.hopLength), n_fft \(f.nFft), \(f.nMels) mels \(f.fmin)-\(f.fmax) Hz, patch \(f.patchFrames) frames, hop \(f.patchHopFrames)")
                if case let .object(p)? = m.provenance {
                    func text(_ k: String) -> String? { if case let .string(v)? = p[k] { v } else { nil } }
                    print("licence:      \(text("license") ?? "(not stated)")")
                    if let source = text("source") { print("source:       \(source)") }
                    if let file = text("file") { print("converted:    \(file)" + (text("sha256").map { " (sha256 \($0))" } ?? "")) }
                    if let notice = text("notice") { print("notice:       \(notice)") }
                } else {
                    print("licence:      (no provenance in the file)")
                }
            case let .head(model):
                let m = model.metadata, a = m.architecture
                print("model:        \(m.name) \(m.version) (kind embedding_head, task \(m.task), format \(m.format) v\(m.formatVersion))")
                print("labels:       \(m.labels.joined(separator: ", "))")
                print("architecture: \(a.type) on \(a.input) embeddings (\(a.inputDim)), hidden \(a.hidden), \(a.nClasses) classes")
                print("body:         \(m.body.name) \(m.body.version)")
                print("parameters:   \(parameters)")
                if let g = m.gate { print("gate:         threshold \(g.threshold)") }
                if let t = m.training { print("training:     \(t.jsonText)") }
            }
            interface.lines.forEach { print($0) }
            let fmt = { (v: [Double]) in
                (v.count > 8 ? Array(v.prefix(8)) : v).map { String(format: "%.6f", $0) }.joined(separator: " ") + (v.count > 8 ? " ... (\(v.count))" : "")
            }
            print("self-test:    \(st.passed ? "PASS" : "FAIL") max |Δ| \(String(format: "%.2e", st.maxDelta)) (tolerance \(st.tolerance))")
            print("  expected    \(fmt(st.expected))")
            print("  actual      \(fmt(st.actual))")
        }
        if !st.passed { throw ExitCode(1) }
    }

    /// A metadata document as the file spells it (snake_case keys).
    static func snakeJSON<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
