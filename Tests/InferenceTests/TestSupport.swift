import Foundation
import Testing
@testable import Inference

/// Root of all Inference suites, run one test at a time: the zero-allocation check must not share
/// OpenBLAS with other threads (its buffer pool allocates when several threads call it at once, which
/// the agent, with one inference thread, never does).
@Suite(.serialized) enum InferenceTestSuites {}

/// Fixture files live next to this source file (Tests/InferenceTests/Fixtures), made by
/// training/make_test_models.py from PyTorch.
enum Fixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

    static func path(_ name: String) -> String { "\(directory)/\(name)" }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(name))))
    }

    static func model(_ name: String) throws -> ModelBundle {
        try ModelBundle.load(path: path(name))
    }

    /// Golden parity pairs: raw dB `inputs` [N, frames, n_mels] and PyTorch `probs` [N, classes].
    struct Golden {
        var frames: Int
        var nMels: Int
        var inputs: [[Float]]
        var probs: [[Float]]
    }

    static func golden(_ name: String) throws -> Golden {
        let f = try SafeTensorsFile(contentsOf: path(name))
        let xi = try #require(f.tensors["inputs"]), pi = try #require(f.tensors["probs"])
        let x = try f.floats("inputs"), p = try f.floats("probs")
        let (n, frames, mels) = (xi.shape[0], xi.shape[1], xi.shape[2])
        let classes = pi.shape[1]
        return Golden(frames: frames, nMels: mels,
                      inputs: (0..<n).map { Array(x[($0 * frames * mels)..<(($0 + 1) * frames * mels)]) },
                      probs: (0..<n).map { Array(p[($0 * classes)..<(($0 + 1) * classes)]) })
    }
}

/// A model file taken apart into editable pieces and put back together, for targeted corruption.
struct EditableModel {
    var tensors: [String: (shape: [Int], values: [Float])]
    var meta: JSONValue

    init(fixture name: String) throws {
        let f = try SafeTensorsFile(bytes: try Fixture.bytes(name))
        var t: [String: (shape: [Int], values: [Float])] = [:]
        for (k, info) in f.tensors { t[k] = (info.shape, try f.floats(k)) }
        tensors = t
        meta = try JSONDecoder().decode(JSONValue.self, from: Data(try #require(f.metadata["deepinfant"]).utf8))
    }

    /// Sets (or with nil removes) the metadata value at a dotted path, e.g. "features.power".
    mutating func set(_ path: String, _ value: JSONValue?) {
        func edit(_ v: JSONValue, _ keys: ArraySlice<Substring>) -> JSONValue {
            guard let k = keys.first, case var .object(o) = v else { return v }
            if keys.count == 1 {
                o[String(k)] = value
            } else {
                o[String(k)] = edit(o[String(k)] ?? .object([:]), keys.dropFirst())
            }
            return .object(o)
        }
        meta = edit(meta, ArraySlice(path.split(separator: ".")))
    }

    var bytes: [UInt8] {
        SafeTensorsWriter.encode(tensors: tensors.map { ($0.key, $0.value.shape, $0.value.values) },
                                 metadata: ["deepinfant": meta.jsonText])
    }

    func load() throws(ModelError) -> ModelBundle { try ModelBundle.load(bytes: bytes) }
}

/// Expects loading to fail with exactly `expected`.
func expectLoadError(_ expected: ModelError, _ load: () throws -> ModelBundle,
                     sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try load()
        Issue.record("loaded, expected \(expected)", sourceLocation: sourceLocation)
    } catch {
        #expect(error as? ModelError == expected, sourceLocation: sourceLocation)
    }
}

