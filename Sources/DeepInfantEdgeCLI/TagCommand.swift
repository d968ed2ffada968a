import ArgumentParser
import Capture
import Features
import Foundation
import Inference

/// `tag`: what the node hears, as AudioSet classes per 0.975 s patch (YAMNet). Answers "why did it
/// fire?" and is how anyone checks the Swift port against TFLite (`training/yamnet_parity.py`).
struct TagCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tag",
        abstract: "AudioSet classes (YAMNet) per 0.975 s patch of audio files.",
        discussion: """
        Patches start every 0.48 s; the last one is zero-padded so trailing audio is never ignored (YAMNet's
        reference code does the same). With --json, one object per file and line:
          {"file": "...", "patches": [{"start": 0.0, "end": 0.975, "top": [["Baby cry, infant cry", 0.81], ...]}]}
        A file that cannot be read gives {"file": "...", "error": "..."}; the exit status is then non-zero,
        after all files were tried. --embeddings DIR also writes DIR/<file name without extension>.npy,
        float32 [patches, 1024].
        """
    )

    @Argument(help: "Audio files (WAV, FLAC, OGG; any rate) or directories of them.") var files: [String]
    @Option(help: "Classes per patch, highest scores first.") var top: Int = 5
    @Option(help: "YAMNet model file (default: the embedded one).") var model: String?
    @Option(help: "Also write each file's patch embeddings as DIR/<stem>.npy.") var embeddings: String?
    @Flag(help: "One JSON object per line.") var json = false

    func validate() throws {
        guard top >= 1 else { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
        let body = try model.map { try YAMNetModel.load(path: $0) } ?? YAMNetModel.embedded()
        let engine = YAMNetEngine(model: body)
        if let embeddings { try FileManager.default.createDirectory(atPath: embeddings, withIntermediateDirectories: true) }
        var failed = false
        for file in AudioInputs.expand(files) {
            do {
                let patches = try Self.tag(file: file, engine: engine, top: top, embeddingsDir: embeddings)
                if json {
                    let o: [String: Any] = ["file": file, "patches": patches.map { p in
                        ["start": round3(p.start), "end": round3(p.end), "top": p.top.map { [$0.label, round4($0.score)] as [Any] }] as [String: Any]
                    }]
                    print(JSONLine.encode(o))
                } else {
                    print(file)
                    for p in patches {
                        let classes = p.top.map { "\($0.label) " + String(format: "%.2f", $0.score) }.joined(separator: ", ")
                        print(String(format: "  %6.2f–%6.2f s  ", p.start, p.end) + classes)
                    }
                }
            } catch {
                failed = true
                print(json ? JSONLine.encode(["file": file, "error": "\(error)"]) : "\(file): error: \(error)")
            }
        }
        if failed { throw ExitCode(1) }
    }

    struct Patch {
        var start: Double
        var end: Double
        var top: [(label: String, score: Double)]
    }

    static func tag(file: String, engine: YAMNetEngine, top: Int, embeddingsDir: String?) throws -> [Patch] {
        var samples = try AudioFile.read(path: file)
        let fe = engine.model.frontEnd
        let starts = fe.offlinePatchStarts(forSamples: samples.count)
        let needed = (starts.last ?? 0) + fe.patchSamples
        if samples.count < needed { samples += [Float](repeating: 0, count: needed - samples.count) }
        let labels = engine.model.labels
        var patches: [Patch] = []
        var embeddings: [Float] = []
        samples.withUnsafeBufferPointer { s in
            for start in starts {
                engine.run(samples: s.baseAddress! + start)
                let scores = engine.scoreBuffer
                let best = scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }.prefix(top)
                patches.append(Patch(start: Double(start) / 16_000, end: Double(start + fe.patchSamples) / 16_000,
                                     top: best.map { (labels[$0], Double(scores[$0])) }))
                embeddings += engine.embeddingBuffer
            }
        }
        if let dir = embeddingsDir {
            let stem = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
            let data = NPYFile.encode(NPYFile.Array(shape: [starts.count, engine.model.embeddingDimension], values: embeddings))
            try data.write(to: URL(fileURLWithPath: dir).appendingPathComponent(stem + ".npy"))
        }
        return patches
    }
}

func round4(_ x: Double) -> Double { (x * 10_000).rounded() / 10_000 }
