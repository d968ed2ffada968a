import Agent
import ArgumentParser
import Control
import Foundation
import Gate
import Inference

/// `model keygen --out DIR`: a fresh Ed25519 key pair for signing model updates.
struct ModelKeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Create a model signing key pair: DIR/signing.key (private, 0600) and DIR/signing.pub.",
        discussion: "Keep signing.key on the machine that signs releases; copy signing.pub to the nodes ([control] trusted_keys or run --trusted-key)."
    )

    @Option(help: ArgumentHelp("Directory for signing.key and signing.pub (created 0700 if missing).", valueName: "dir"))
    var out: String

    func run() throws {
        if !FileManager.default.fileExists(atPath: out) {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        do {
            let key = try SigningKeys.generate(directory: out)
            print("private key: \(out)/signing.key (mode 0600)")
            print("public key:  \(key.source)")
            print("key id:      \(key.id)")
        } catch {
            throw CLIError(message: "\(error)")
        }
    }
}

/// `model sign MODEL --key PRIVATE`: validates the model (self-test included) and writes its signed envelope.
struct ModelSignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Sign a model file: writes the cmd/model envelope (JSON with the model in base64), or a detached signature.",
        discussion: "The signature covers the model's SHA-256 and its metadata version. The model must pass all model-file checks and its self-test."
    )

    @Argument(help: ArgumentHelp("Model file (.safetensors).", valueName: "model")) var model: String
    @Option(help: ArgumentHelp("Private key file (model keygen's signing.key).", valueName: "file")) var key: String
    @Option(help: ArgumentHelp("Output file; default MODEL.envelope.json (MODEL.sig.json with --detached).", valueName: "file")) var out: String?
    @Flag(help: "Write only the signature (no model bytes); `model verify SIG --model MODEL` checks it.") var detached = false

    func run() throws {
        let bytes: [UInt8]
        do { bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: model))) } catch {
            throw CLIError(message: "cannot read \(model): \(error.localizedDescription)")
        }
        guard bytes.count <= ModelEnvelope.maxModelBytes else {
            throw CLIError(message: "\(model) is \(bytes.count) bytes; nodes accept at most \(ModelEnvelope.maxModelBytes)")
        }
        let any: AnyModel
        do { any = try AnyModel.load(bytes: bytes, source: model) } catch { throw CLIError(message: "refusing to sign: \(error)") }
        do {
            let privateKey = try SigningKeys.loadPrivate(path: key)
            let envelope = try ModelEnvelope.sign(modelBytes: bytes, name: any.name, version: any.version,
                                                  key: privateKey, embedModel: !detached)
            let path = out ?? model + (detached ? ".sig.json" : ".envelope.json")
            try AtomicFile.write(try envelope.encoded() + [0x0A], to: path)
            print("signed \(any.name) \(any.version) (\(any.architectureType), task \(any.task); sha256 \(envelope.sha256), key \(envelope.keyID ?? "-")) -> \(path)")
        } catch {
            throw CLIError(message: "\(error)")
        }
    }
}

/// `model verify ENVELOPE --trusted-key PUB`: the checks a node makes before installing, against the models
/// a node runs (the embedded ones, or `--running` files, with `--detector`).
struct ModelVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a signed envelope (or a detached signature with --model) against trusted public keys, then the model itself.",
        discussion: """
        The same checks as a node (ModelAcceptance): signature, hash, size, model-file checks, version and name, \
        the model slot it goes to (reason, cry, yamnet), whether it fits the node's other models (front end; a cry \
        head's body name and embedding size), self-test. The node is one running the embedded models with \
        --detector (yamnet: YAMNet body + cry head; crnn: the CRNN cry detector); --running FILE replaces the \
        embedded model of that file's slot. Exit status 0 when a node would install it; 1 with the reason otherwise.
        """
    )

    @Argument(help: ArgumentHelp("Envelope (model sign's output) or detached signature file.", valueName: "file")) var file: String
    @Option(name: .customLong("trusted-key"), help: ArgumentHelp("Public key file; repeatable.", valueName: "file")) var trustedKeys: [String] = []
    @Option(help: ArgumentHelp("The model file, for a detached signature.", valueName: "file")) var model: String?
    @Option(help: ArgumentHelp("The node's cry detector (gate.detector): yamnet or crnn.", valueName: "kind")) var detector = "yamnet"
    @Option(help: ArgumentHelp("A model the node runs instead of the embedded one of its slot (repeatable).", valueName: "file"))
    var running: [String] = []

    func validate() throws {
        guard ["yamnet", "crnn"].contains(detector) else { throw ValidationError("--detector must be yamnet or crnn") }
    }

    func run() throws {
        do {
            guard !trustedKeys.isEmpty else { throw CLIError(message: "give at least one --trusted-key") }
            let keys = try SigningKeys.loadTrusted(paths: trustedKeys)
            let envelope = try ModelEnvelope.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: file))))
            let detached = try model.map { [UInt8](try Data(contentsOf: URL(fileURLWithPath: $0))) }
            let bytes = try envelope.verify(trusted: keys, detachedModel: detached)
            let node = try nodeProfile()
            let accepted = try ModelAcceptance.check(bytes: bytes, envelope: envelope, node: node, source: model ?? file)
            var against = "a \(node.detector) node"
            if let b = node.body, let h = node.head { against += " (body \(b.name) \(b.version), cry head \(h.name) \(h.version))" }
            print("OK: \(accepted.model.name) \(accepted.model.version) (\(accepted.model.architectureType)) for the \(accepted.slot) slot, sha256 \(envelope.sha256), signed by \(envelope.keyID ?? "a trusted key"); \(against) would accept it (slot, fit, self-test)")
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError(message: "verification failed: \(error)")
        }
    }

    /// The node the checks are made against: the embedded models of `--detector`, replaced by `--running`.
    func nodeProfile() throws -> NodeProfile {
        var reason: ModelBundle?, cry: ModelBundle?, body: YAMNetModel?, head: EmbeddingHead?
        for path in running {
            switch try AnyModel.load(path: path) {
            case let .crnn(m) where m.metadata.task == "reason": reason = m
            case let .crnn(m): cry = m
            case let .yamnet(m): body = m
            case let .head(m): head = m
            }
        }
        func embedded<M>(_ what: String, _ load: () throws -> M) throws -> M {
            do { return try load() } catch { throw CLIError(message: "the embedded \(what) cannot be loaded (\(error)); give it with --running FILE") }
        }
        let r = try reason ?? embedded("reason model") { try ModelBundle.embeddedDefault() }
        if detector == "crnn" {
            let c = try cry ?? embedded("CRNN cry detector") { try ModelBundle.embeddedCryDetector() }
            return NodeProfile(detector: .crnn(c), reason: r)
        }
        let b = try body ?? embedded("YAMNet body") { try YAMNetModel.embedded() }
        let h = try head ?? embedded("cry head") { try EmbeddingHead.embedded() }
        return NodeProfile(detector: .yamnet(body: b, head: h), reason: r)
    }
}
