import Agent
import Foundation
import Inference

/// Installed models of one model slot: the reason slot in `<state_dir>/models/` (where it always was),
/// the others in `<state_dir>/models/<slot>/` (`models/cry/`, `models/yamnet/`). Each file is named by its
/// SHA-256, plus `installed.json` naming the current and the previous one. Replacing `installed.json` (atomically) is the single commit
/// point of an install or a rollback, so a power cut leaves either the old or the new choice, and the file
/// it names is always complete (written and fsynced before).
///
/// `current == nil` means "the model from the config file (or the embedded default)".
/// The slots are independent: each has its own commit point, so an install touches one slot only.
public struct ModelStore: Sendable {
    public struct Entry: Codable, Sendable, Equatable {
        public var sha256: String
        public var version: String
        public var name: String
        /// The model file's `architecture.type` (`crnn`, `embedding_head`, `yamnet`); absent in entries
        /// written before model slots (all reason models).
        public var kind: String?
        public init(sha256: String, version: String, name: String, kind: String? = nil) {
            self.sha256 = sha256
            self.version = version
            self.name = name
            self.kind = kind
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
    public let slot: ModelSlot

    public init(stateDir: String, slot: ModelSlot = .reason) {
        self.slot = slot
        directory = slot == .reason ? stateDir + "/models" : stateDir + "/models/\(slot.rawValue)"
    }

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

    /// Loads and fully validates (self-test included) a stored reason model.
    public func load(_ entry: Entry) throws(ModelError) -> ModelBundle {
        try ModelBundle.load(path: path(of: entry))
    }

    /// Loads and fully validates (self-test included) a stored model of any kind.
    public func loadAny(_ entry: Entry) throws(ModelError) -> AnyModel {
        try AnyModel.load(path: path(of: entry))
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

    /// ``currentModel()`` for any kind (the cry and yamnet slots).
    public func currentAnyModel() -> Result<AnyModel, any Error>? {
        do {
            guard let entry = try state().current else { return nil }
            return .success(try loadAny(entry))
        } catch {
            return .failure(error)
        }
    }
}
