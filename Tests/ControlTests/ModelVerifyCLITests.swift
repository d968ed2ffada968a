import Foundation
import Testing

/// `deepinfant-edge model keygen / sign / verify` as an operator runs them, on the shipped model files:
/// `verify` must say what a node would say, including the checks after the signature (task, front end).
struct ModelVerifyCLITests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("deepinfant-edge")
    static let resources = root.appendingPathComponent("Sources/Inference/Resources")

    /// Runs the CLI; (exit status, stdout + stderr).
    static func cli(_ arguments: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = binary
        p.arguments = arguments
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    @Test("verify accepts a signed reason model, refuses a signed cry detector, and checks detached signatures")
    func verifyLikeANode() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path), "build the executable first (swift build)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("verify-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let reason = Self.resources.appendingPathComponent("deepinfant-reason.safetensors").path
        let cry = Self.resources.appendingPathComponent("deepinfant-cry.safetensors").path
        let key = dir.appendingPathComponent("signing.key").path, pub = dir.appendingPathComponent("signing.pub").path
        #expect(try Self.cli(["model", "keygen", "--out", dir.path]).0 == 0)

        let reasonEnvelope = dir.appendingPathComponent("reason.envelope.json").path
        #expect(try Self.cli(["model", "sign", reason, "--key", key, "--out", reasonEnvelope]).0 == 0)
        let ok = try Self.cli(["model", "verify", reasonEnvelope, "--trusted-key", pub])
        #expect(ok.0 == 0 && ok.1.contains("OK: deepinfant-crnn-reason"), "\(ok.1)")

        // Signed by a trusted key, but a node would refuse it: the cry detector is not a reason model.
        let cryEnvelope = dir.appendingPathComponent("cry.envelope.json").path
        #expect(try Self.cli(["model", "sign", cry, "--key", key, "--out", cryEnvelope]).0 == 0)
        let wrong = try Self.cli(["model", "verify", cryEnvelope, "--trusted-key", pub])
        #expect(wrong.0 != 0 && wrong.1.contains("not a reason model"), "\(wrong.1)")

        // Detached: the signature with its model verifies; with another model file it does not.
        let sig = dir.appendingPathComponent("reason.sig.json").path
        #expect(try Self.cli(["model", "sign", reason, "--key", key, "--detached", "--out", sig]).0 == 0)
        let detached = try Self.cli(["model", "verify", sig, "--model", reason, "--trusted-key", pub])
        #expect(detached.0 == 0, "\(detached.1)")
        let swapped = try Self.cli(["model", "verify", sig, "--model", cry, "--trusted-key", pub])
        #expect(swapped.0 != 0 && swapped.1.contains("verification failed"), "\(swapped.1)")

        // Another key: refused before anything else.
        let other = dir.appendingPathComponent("other")
        #expect(try Self.cli(["model", "keygen", "--out", other.path]).0 == 0)
        let untrusted = try Self.cli(["model", "verify", reasonEnvelope, "--trusted-key", other.appendingPathComponent("signing.pub").path])
        #expect(untrusted.0 != 0, "\(untrusted.1)")
    }
}
