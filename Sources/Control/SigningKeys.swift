import Crypto
import Foundation

/// Ed25519 keys for model updates, in small text files an operator can read and copy:
///
///     # deepinfant-edge model signing key (Ed25519, public), key id 3f2a9c0d41b7e655
///     ed25519-public:BASE64-OF-32-BYTES
///
/// The private file has the same shape with `ed25519-private:` (the 32-byte seed) and is written mode 0600.
/// The key id (first 8 bytes of SHA-256 of the public key, hex) travels in the envelope so that a node with
/// several trusted keys can say "unknown key" rather than just "bad signature".
public enum SigningKeys {
    static let publicTag = "ed25519-public:"
    static let privateTag = "ed25519-private:"

    public struct KeyFileError: Error, CustomStringConvertible, Equatable {
        public var path: String
        public var reason: String
        public var description: String { "key file \(path): \(reason)" }
    }

    /// A public key the node accepts signatures from.
    public struct TrustedKey: Sendable, Equatable {
        public let rawRepresentation: Data
        public let id: String
        /// Where it came from (a path), for logs.
        public let source: String

        public init(rawRepresentation: Data, source: String) throws {
            _ = try Curve25519.Signing.PublicKey(rawRepresentation: rawRepresentation)
            self.rawRepresentation = rawRepresentation
            self.id = SigningKeys.keyID(rawRepresentation)
            self.source = source
        }

        public var publicKey: Curve25519.Signing.PublicKey {
            // Validated in init.
            try! Curve25519.Signing.PublicKey(rawRepresentation: rawRepresentation)
        }
    }

    /// First 8 bytes of SHA-256 of the raw public key, lower-case hex.
    public static func keyID(_ publicKeyRaw: Data) -> String {
        Hex.encode(Array(SHA256.hash(data: publicKeyRaw)).prefix(8))
    }

    /// Creates a key pair: `DIR/signing.key` (0600) and `DIR/signing.pub`. Refuses to overwrite a key.
    public static func generate(directory: String) throws -> TrustedKey {
        let privatePath = directory + "/signing.key", publicPath = directory + "/signing.pub"
        for p in [privatePath, publicPath] where FileManager.default.fileExists(atPath: p) {
            throw KeyFileError(path: p, reason: "exists; refusing to overwrite a key")
        }
        let key = Curve25519.Signing.PrivateKey()
        let pub = key.publicKey.rawRepresentation
        let id = keyID(pub)
        try AtomicFile.write(Array("# deepinfant-edge model signing key (Ed25519, PRIVATE), key id \(id). Keep it off the nodes.\n\(privateTag)\(key.rawRepresentation.base64EncodedString())\n".utf8),
                             to: privatePath, mode: 0o600)
        try AtomicFile.write(Array(publicText(pub).utf8), to: publicPath, mode: 0o644)
        return try TrustedKey(rawRepresentation: pub, source: publicPath)
    }

    static func publicText(_ raw: Data) -> String {
        "# deepinfant-edge model signing key (Ed25519, public), key id \(keyID(raw))\n\(publicTag)\(raw.base64EncodedString())\n"
    }

    public static func loadPrivate(path: String) throws -> Curve25519.Signing.PrivateKey {
        let raw = try value(path: path, tag: privateTag)
        do { return try Curve25519.Signing.PrivateKey(rawRepresentation: raw) } catch {
            throw KeyFileError(path: path, reason: "not an Ed25519 private key (\(raw.count) bytes)")
        }
    }

    public static func loadPublic(path: String) throws -> TrustedKey {
        let raw = try value(path: path, tag: publicTag)
        do { return try TrustedKey(rawRepresentation: raw, source: path) } catch {
            throw KeyFileError(path: path, reason: "not an Ed25519 public key (\(raw.count) bytes)")
        }
    }

    /// The trusted keys from `paths`, de-duplicated by key id; a file that cannot be read is an error
    /// (a node that silently trusts nothing would refuse every update without saying why at start).
    public static func loadTrusted(paths: [String]) throws -> [TrustedKey] {
        var seen = Set<String>(), keys: [TrustedKey] = []
        for p in paths {
            let k = try loadPublic(path: p)
            if seen.insert(k.id).inserted { keys.append(k) }
        }
        return keys
    }

    private static func value(path: String, tag: String) throws -> Data {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw KeyFileError(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard lines.count == 1, lines[0].hasPrefix(tag) else {
            throw KeyFileError(path: path, reason: "expected one line \"\(tag)BASE64\"")
        }
        guard let raw = Data(base64Encoded: String(lines[0].dropFirst(tag.count))), raw.count == 32 else {
            throw KeyFileError(path: path, reason: "the key is not 32 bytes of base64")
        }
        return raw
    }
}

/// Lower-case hex, for hashes and key ids.
public enum Hex {
    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    public static func sha256(_ bytes: [UInt8]) -> String { encode(Array(SHA256.hash(data: bytes))) }
}
