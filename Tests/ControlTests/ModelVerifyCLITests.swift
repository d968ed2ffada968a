import Foundation
import Testing

/// `deepinfant-edge model keygen / sign / verify` as an operator runs them, on the shipped model files:
/// `verify` must say what a node would say, including the checks after the signature (task, front end).
struct ModelVerifyCLITests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("deepinfant-edge")
    static let resources = root.appendingPathComponent("Sources/Inference/Resources")

    /// Runs the CLI; (exit status, stdout + stderr).
    static func cli(_ arguments: [String], binary: URL = binary, directory: URL? = nil) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = binary
        p.arguments = arguments
        if let directory { p.currentDirectoryURL = directory }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    @Test("verify accepts a signed reason model, puts a cry detector in the slot of the detector it runs, and checks detached signatures")
    func verifyLikeANode() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path), "build the executable first (swift build)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("verify-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let reason = Self.resources.appendingPathComponent("deepinfant-reason.safetensors").path
        let cry = Self.resources.appendingPathComponent("deepinfant-cry.safetensors").path
        let key = dir.appendingPathComponent("signing.key").path, pub = dir.appendingPathComponent("signing.pub").path
        #expect(try Self.cli(["model", "keygen", "--out", dir.path]).0 == 0)
        // The yamnet node the checks run against: the embedded body with a test head (the shipped head
        // may not be there in every checkout), given as a model it runs.
        let runningHead = dir.appendingPathComponent("head.safetensors")
        try Data(Fixtures.head(version: "1.0.0")).write(to: runningHead)
        let yamnetNode = ["--running", runningHead.path]

        let reasonEnvelope = dir.appendingPathComponent("reason.envelope.json").path
        #expect(try Self.cli(["model", "sign", reason, "--key", key, "--out", reasonEnvelope]).0 == 0)
        let ok = try Self.cli(["model", "verify", reasonEnvelope, "--trusted-key", pub] + yamnetNode)
        #expect(ok.0 == 0 && ok.1.contains("OK: deepinfant-crnn-reason") && ok.1.contains("reason slot"), "\(ok.1)")

        // Signed by a trusted key: a yamnet node refuses the CRNN cry detector, a crnn node takes it (cry slot).
        let cryEnvelope = dir.appendingPathComponent("cry.envelope.json").path
        #expect(try Self.cli(["model", "sign", cry, "--key", key, "--out", cryEnvelope]).0 == 0)
        let wrong = try Self.cli(["model", "verify", cryEnvelope, "--trusted-key", pub] + yamnetNode)
        #expect(wrong.0 != 0 && wrong.1.contains("wrong cry detector kind"), "\(wrong.1)")
        let crnn = try Self.cli(["model", "verify", cryEnvelope, "--trusted-key", pub, "--detector", "crnn"])
        #expect(crnn.0 == 0 && crnn.1.contains("cry slot"), "\(crnn.1)")

        // A cry head: fits the running body; one trained on another body does not.
        let head = dir.appendingPathComponent("head2.safetensors").path
        try Data(Fixtures.head(version: "2.0.0")).write(to: URL(fileURLWithPath: head))
        let sign = try Self.cli(["model", "sign", head, "--key", key])
        #expect(sign.0 == 0 && sign.1.contains("embedding_head"), "\(sign.1)")
        let headOK = try Self.cli(["model", "verify", head + ".envelope.json", "--trusted-key", pub] + yamnetNode)
        #expect(headOK.0 == 0 && headOK.1.contains("cry slot"), "\(headOK.1)")
        let foreign = dir.appendingPathComponent("foreign.safetensors").path
        try Data(Fixtures.head(version: "2.0.0", bodyName: "vggish")).write(to: URL(fileURLWithPath: foreign))
        #expect(try Self.cli(["model", "sign", foreign, "--key", key]).0 == 0)
        let mismatch = try Self.cli(["model", "verify", foreign + ".envelope.json", "--trusted-key", pub] + yamnetNode)
        #expect(mismatch.0 != 0 && mismatch.1.contains("do not fit"), "\(mismatch.1)")
        // inspect shows heads and bodies.
        let inspectHead = try Self.cli(["model", "inspect", head])
        #expect(inspectHead.0 == 0 && inspectHead.1.contains("embedding_head") && inspectHead.1.contains("body:         yamnet 1.0.0"), "\(inspectHead.1)")
        let body = Self.resources.appendingPathComponent("yamnet.safetensors").path
        let inspectBody = try Self.cli(["model", "inspect", body])
        #expect(inspectBody.0 == 0 && inspectBody.1.contains("kind yamnet") && inspectBody.1.contains("licence:      Apache-2.0")
                && inspectBody.1.contains("labels:       521"), "\(inspectBody.1)")

        // Detached: the signature with its model verifies; with another model file it does not.
        let sig = dir.appendingPathComponent("reason.sig.json").path
        #expect(try Self.cli(["model", "sign", reason, "--key", key, "--detached", "--out", sig]).0 == 0)
        let detached = try Self.cli(["model", "verify", sig, "--model", reason, "--trusted-key", pub] + yamnetNode)
        #expect(detached.0 == 0, "\(detached.1)")
        let swapped = try Self.cli(["model", "verify", sig, "--model", cry, "--trusted-key", pub] + yamnetNode)
        #expect(swapped.0 != 0 && swapped.1.contains("verification failed"), "\(swapped.1)")

        // Another key: refused before anything else.
        let other = dir.appendingPathComponent("other")
        #expect(try Self.cli(["model", "keygen", "--out", other.path]).0 == 0)
        let untrusted = try Self.cli(["model", "verify", reasonEnvelope, "--trusted-key", other.appendingPathComponent("signing.pub").path])
        #expect(untrusted.0 != 0, "\(untrusted.1)")
    }
}
