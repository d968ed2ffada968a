import ArgumentParser
import Control
import Foundation
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
        let bundle: ModelBundle
        do { bundle = try ModelBundle.load(bytes: bytes, source: model) } catch { throw CLIError(message: "refusing to sign: \(error)") }
        do {
            let privateKey = try SigningKeys.loadPrivate(path: key)
            let envelope = try ModelEnvelope.sign(modelBytes: bytes, name: bundle.metadata.name, version: bundle.metadata.version,
                                                  key: privateKey, embedModel: !detached)
            let path = out ?? model + (detached ? ".sig.json" : ".envelope.json")
            try AtomicFile.write(try envelope.encoded() + [0x0A], to: path)
            print("signed \(bundle.metadata.name) \(bundle.metadata.version) (sha256 \(envelope.sha256), key \(envelope.keyID ?? "-")) -> \(path)")
        } catch {
            throw CLIError(message: "\(error)")
        }
    }
}

/// `model verify ENVELOPE --trusted-key PUB`: the checks a node makes before installing.
struct ModelVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a signed envelope (or a detached signature with --model) against trusted public keys, then the model itself.",
        discussion: "Exit status 0 when the signature, hash, size, model-file checks and self-test all pass; 1 with the reason otherwise."
    )

    @Argument(help: ArgumentHelp("Envelope (model sign's output) or detached signature file.", valueName: "file")) var file: String
    @Option(name: .customLong("trusted-key"), help: ArgumentHelp("Public key file; repeatable.", valueName: "file")) var trustedKeys: [String] = []
    @Option(help: ArgumentHelp("The model file, for a detached signature.", valueName: "file")) var model: String?

    func run() throws {
        do {
            guard !trustedKeys.isEmpty else { throw CLIError(message: "give at least one --trusted-key") }
            let keys = try SigningKeys.loadTrusted(paths: trustedKeys)
            let envelope = try ModelEnvelope.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: file))))
            let detached = try model.map { [UInt8](try Data(contentsOf: URL(fileURLWithPath: $0))) }
            let bytes = try envelope.verify(trusted: keys, detachedModel: detached)
            // A node's checks, against the front end of the embedded cry detector (which every node runs
            // unless its config names another one).
            let frontEnd = try ModelBundle.embeddedCryDetector().metadata.features.logMelParameters
            let bundle = try ModelAcceptance.check(bytes: bytes, envelope: envelope, frontEnd: frontEnd, source: model ?? file)
            print("OK: \(bundle.metadata.name) \(bundle.metadata.version), sha256 \(envelope.sha256), signed by \(envelope.keyID ?? "a trusted key"), a node would accept it (task, front end, self-test)")
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError(message: "verification failed: \(error)")
        }
    }
}
