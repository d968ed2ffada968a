import Foundation
import Inference

/// Installed reason models in `<state_dir>/models/`: each file named by its SHA-256, plus `installed.json`
/// naming the current and the previous one. Replacing `installed.json` (atomically) is the single commit
/// point of an install or a rollback, so a power cut leaves either the old or the new choice, and the file
/// it names is always complete (written and fsynced before).
///
/// `current == nil` means "the model from the config file (or the embedded default)".
public struct ModelStore: Sendable {
    public struct Entry: Codable, Sendable, Equatable {
        public var sha256: String
        public var version: String
        public var name: String
        public init(sha256: String, version: String, name: String) {
            self.sha256 = sha256
            self.version = version
            self.name = name
        }
    }

    public struct State: Codable, Sendable, Equatable {
        public var current: Entry?
        public var previous: Entry?
        public init(current: Entry? = nil, previous: Entry? = nil) {
            self.current = current
            self.previous = previous
        }
    }

    public let directory: String

    public init(stateDir: String) { directory = stateDir + "/models" }

    var statePath: String { directory + "/installed.json" }

    public func path(of entry: Entry) -> String { directory + "/\(entry.sha256).safetensors" }

    /// The recorded choice; empty when nothing was ever installed.
    public func state() throws -> State {
        guard FileManager.default.fileExists(atPath: statePath) else { return State() }
        return try JSONDecoder().decode(State.self, from: Data(contentsOf: URL(fileURLWithPath: statePath)))
    }

    /// Writes the model file (unless already there), then commits `state`, then removes model files that
    /// neither current nor previous names.
    public func commit(_ state: State, writing bytes: [UInt8]? = nil, for entry: Entry? = nil) throws {
        if let bytes, let entry, !FileManager.default.fileExists(atPath: path(of: entry)) {
            try AtomicFile.write(bytes, to: path(of: entry), mode: 0o644)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try AtomicFile.write(Array(try encoder.encode(state)) + [0x0A], to: statePath, mode: 0o644)
        let keep = Set([state.current, state.previous].compactMap { $0.map { $0.sha256 + ".safetensors" } })
        for file in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        where file.hasSuffix(".safetensors") && !keep.contains(file) {
            try? FileManager.default.removeItem(atPath: directory + "/" + file)
        }
    }

    /// Loads and fully validates (self-test included) a stored model.
    public func load(_ entry: Entry) throws(ModelError) -> ModelBundle {
        try ModelBundle.load(path: path(of: entry))
    }

    /// The model `run` should start with: the installed current model when there is one and it still
    /// validates, else nil (use the configured one). A broken store is logged by the caller, never fatal.
    public func currentModel() -> Result<ModelBundle, any Error>? {
        do {
            guard let entry = try state().current else { return nil }
            return .success(try load(entry))
        } catch {
            return .failure(error)
        }
    }
}
