import Crypto
import Inference
import Foundation
import JSONLimits

/// The `cmd/model` payload: a model file with its SHA-256, version and an Ed25519 signature.
///
///     {"format": "deepinfant-model-envelope", "format_version": 1, "name": "deepinfant-crnn-reason",
///      "version": "1.2.0", "sha256": "<64 hex>", "size": 3327060, "key_id": "<16 hex>",
///      "signature": "<base64, 64 bytes>", "model": "<base64 of the .safetensors file>",
///      "force": false, "request_id": "optional, echoed in the result"}
///
/// The signature covers ``signedMessage(sha256:version:)`` — the hash and the version, so a signed model
/// cannot be relabelled as a newer version and the payload (checked against the hash) cannot be swapped.
/// `name`, `size`, `force` and `request_id` are not signed: `size` and `name` are cross-checked against the
/// bytes and the model's metadata, `force` only permits installing an older, still signed, model.
public struct ModelEnvelope: Codable, Sendable, Equatable {
    public static let formatName = "deepinfant-model-envelope"
    public static let formatVersion = 1
    /// Largest model file accepted (the embedded reason model is 3.2 MiB).
    public static let maxModelBytes = 16 << 20
    /// Largest `cmd/model` payload accepted: the model in base64 plus room for the other fields.
    public static let maxEnvelopeBytes = (maxModelBytes / 3 + 1) * 4 + 65_536

    public var format: String
    public var formatVersion: Int
    public var name: String?
    public var version: String
    public var sha256: String
    public var size: Int
    public var keyID: String?
    public var signature: String
    /// The model file, base64; absent in a detached signature file (`model sign --detached`).
    public var model: String?
    public var force: Bool?
    public var requestID: String?

    enum CodingKeys: String, CodingKey {
        case format, name, version, sha256, size, signature, model, force
        case formatVersion = "format_version", keyID = "key_id", requestID = "request_id"
    }

    /// The bytes the signature covers.
    public static func signedMessage(sha256: String, version: String) -> Data {
        Data("deepinfant-model-signature-v1\n\(sha256)\n\(version)\n".utf8)
    }

    /// Signs `modelBytes` as `version` (the caller has checked it is the model's own metadata version).
    public static func sign(modelBytes: [UInt8], name: String?, version: String, key: Curve25519.Signing.PrivateKey,
                            embedModel: Bool = true) throws -> ModelEnvelope {
        let hash = Hex.sha256(modelBytes)
        let signature = try key.signature(for: signedMessage(sha256: hash, version: version))
        return ModelEnvelope(format: formatName, formatVersion: formatVersion, name: name, version: version, sha256: hash,
                             size: modelBytes.count, keyID: SigningKeys.keyID(key.publicKey.rawRepresentation),
                             signature: Data(signature).base64EncodedString(),
                             model: embedModel ? Data(modelBytes).base64EncodedString() : nil, force: nil, requestID: nil)
    }

    public func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self))
    }

    /// Parses a payload; the size limit is checked before any JSON is parsed.
    public static func decode(_ payload: [UInt8]) throws(ModelUpdateError) -> ModelEnvelope {
        guard payload.count <= maxEnvelopeBytes else { throw .oversized(bytes: payload.count, limit: maxEnvelopeBytes) }
        guard !payload.isEmpty else { throw .malformedJSON("empty payload") }
        guard !JSONNesting.tooDeep(payload) else { throw .malformedJSON("nested deeper than \(JSONNesting.limit) levels") }
        do {
            return try JSONDecoder().decode(ModelEnvelope.self, from: Data(payload))
        } catch let DecodingError.keyNotFound(key, _) {
            throw .invalidEnvelope(key: key.stringValue, reason: "missing")
        } catch let DecodingError.typeMismatch(_, context) {
            throw .invalidEnvelope(key: context.codingPath.map(\.stringValue).joined(separator: "."), reason: "wrong type")
        } catch let DecodingError.valueNotFound(_, context) {
            throw .invalidEnvelope(key: context.codingPath.map(\.stringValue).joined(separator: "."), reason: "null")
        } catch {
            throw .malformedJSON("\(error)".prefix(200).description)
        }
    }

    /// Checks the fields, the signature (against `trusted`), then decodes the model and checks its size and
    /// hash. Returns the model bytes. Cheap checks come first, so junk is refused quickly.
    /// `detachedModel`: the model file for a detached signature (`model sign --detached`), checked the same way.
    public func verify(trusted: [SigningKeys.TrustedKey], detachedModel: [UInt8]? = nil) throws(ModelUpdateError) -> [UInt8] {
        guard format == Self.formatName else { throw .invalidEnvelope(key: "format", reason: "expected \"\(Self.formatName)\"") }
        guard formatVersion == Self.formatVersion else {
            throw .invalidEnvelope(key: "format_version", reason: "\(formatVersion) is not supported (this node reads \(Self.formatVersion))")
        }
        guard !version.isEmpty, version.count <= 64, version.allSatisfy({ $0.isASCII && !$0.isWhitespace && !$0.isNewline }) else {
            throw .invalidEnvelope(key: "version", reason: "must be 1-64 printable ASCII characters")
        }
        guard sha256.count == 64, sha256.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw .invalidEnvelope(key: "sha256", reason: "must be 64 lower-case hex digits")
        }
        guard size > 0 else { throw .invalidEnvelope(key: "size", reason: "must be positive") }
        guard size <= Self.maxModelBytes else { throw .oversized(bytes: size, limit: Self.maxModelBytes) }
        guard let sig = Data(base64Encoded: signature), sig.count == 64 else { throw .invalidSignature("not 64 bytes of base64") }
        guard !trusted.isEmpty else { throw .noTrustedKeys }
        let candidates: [SigningKeys.TrustedKey]
        if let keyID {
            candidates = trusted.filter { $0.id == keyID }
            guard !candidates.isEmpty else { throw .unknownKey(keyID) }
        } else {
            candidates = trusted
        }
        let message = Self.signedMessage(sha256: sha256, version: version)
        guard candidates.contains(where: { $0.publicKey.isValidSignature(sig, for: message) }) else {
            throw .invalidSignature(keyID == nil ? "no trusted key verifies it" : "does not verify with key \(keyID!)")
        }
        let bytes: [UInt8]
        if let detachedModel {
            bytes = detachedModel
        } else {
            guard let text = model else { throw .invalidEnvelope(key: "model", reason: "missing (a detached signature cannot be installed)") }
            guard let data = Data(base64Encoded: text) else { throw .invalidEnvelope(key: "model", reason: "not valid base64") }
            bytes = [UInt8](data)
        }
        if bytes.count < size { throw .truncated(bytes: bytes.count, declared: size) }
        if bytes.count > size { throw .sizeMismatch(bytes: bytes.count, declared: size) }
        let actual = Hex.sha256(bytes)
        guard actual == sha256 else { throw .hashMismatch(expected: sha256, actual: actual) }
        return bytes
    }
}
