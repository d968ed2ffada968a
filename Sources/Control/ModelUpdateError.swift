import Inference

/// Why a `cmd/model` (or `cmd/rollback`) was refused. ``code`` is the stable, machine-readable `error` of the
/// result message; the description is its `message`. The running model is untouched in every case.
public enum ModelUpdateError: Error, Equatable, Sendable, CustomStringConvertible {
    case oversized(bytes: Int, limit: Int)
    case malformedJSON(String)
    case invalidEnvelope(key: String, reason: String)
    case noTrustedKeys
    case unknownKey(String)
    case invalidSignature(String)
    case truncated(bytes: Int, declared: Int)
    case sizeMismatch(bytes: Int, declared: Int)
    case hashMismatch(expected: String, actual: String)
    case downgrade(running: String, offered: String)
    case invalidModel(ModelError)
    case versionMismatch(envelope: String, model: String)
    case nameMismatch(envelope: String, model: String)
    /// The model's task fits no model slot of this node (e.g. a YAMNet body on a crnn node).
    case wrongTask(String, why: String? = nil)
    /// A cry-detector model of the other detector kind (a cry head on a crnn node, a CRNN cry detector on a
    /// yamnet node): `gate.detector` and a restart change the kind.
    case wrongDetector(String)
    /// A cry head for another body, or a body its cry head was not trained on (name or embedding size).
    case bodyMismatch(key: String, reason: String)
    /// `cmd/rollback`'s `slot` is not one of this node's model slots.
    case unknownSlot(String, available: [String])
    case incompatibleFeatures(String)
    case notRunning
    case nothingToRollBack
    case storeFailed(String)
    case swapFailed(String)

    public var code: String {
        switch self {
        case .oversized: "oversized"
        case .malformedJSON: "malformed_json"
        case .invalidEnvelope: "invalid_envelope"
        case .noTrustedKeys: "no_trusted_keys"
        case .unknownKey: "unknown_key"
        case .invalidSignature: "invalid_signature"
        case .truncated: "truncated"
        case .sizeMismatch: "size_mismatch"
        case .hashMismatch: "hash_mismatch"
        case .downgrade: "downgrade"
        case let .invalidModel(e):
            switch e {
            case .nonFiniteWeight: "non_finite_weights"
            case .shapeMismatch, .missingTensor, .unexpectedTensor: "wrong_shapes"
            case .selfTestFailed: "selftest_failed"
            case .unsupportedFeatures: "incompatible_features"
            case .missingMetadata, .invalidMetadata: "invalid_metadata"
            default: "corrupt_model"
            }
        case .versionMismatch: "version_mismatch"
        case .nameMismatch: "name_mismatch"
        case .wrongTask: "wrong_task"
        case .wrongDetector: "wrong_detector"
        case .bodyMismatch: "body_mismatch"
        case .unknownSlot: "unknown_slot"
        case .incompatibleFeatures: "incompatible_features"
        case .notRunning: "not_running"
        case .nothingToRollBack: "nothing_to_roll_back"
        case .storeFailed: "store_failed"
        case .swapFailed: "swap_failed"
        }
    }

    /// The envelope field or model part at fault, when there is one.
    public var key: String? {
        switch self {
        case let .invalidEnvelope(key, _): key
        case .oversized, .truncated, .sizeMismatch: "size"
        case .hashMismatch: "sha256"
        case .invalidSignature, .unknownKey: "signature"
        case .downgrade, .versionMismatch: "version"
        case .nameMismatch: "name"
        case .malformedJSON: "(root)"
        case .wrongTask: "task"
        case .wrongDetector: "architecture.type"
        case let .bodyMismatch(key, _): key
        case .unknownSlot: "slot"
        case let .invalidModel(e):
            switch e {
            case let .nonFiniteWeight(tensor, _), let .shapeMismatch(tensor, _, _): tensor
            case let .missingTensor(name), let .unexpectedTensor(name): name
            case let .missingMetadata(key), let .invalidMetadata(key, _), let .unsupportedFeatures(key, _): key
            default: "model"
            }
        default: nil
        }
    }

    public var description: String {
        switch self {
        case let .oversized(bytes, limit): "payload too large: \(bytes) bytes (limit \(limit))"
        case let .malformedJSON(why): "malformed JSON: \(why)"
        case let .invalidEnvelope(key, reason): "envelope field \(key): \(reason)"
        case .noTrustedKeys: "this node trusts no signing key ([control] trusted_keys or run --trusted-key)"
        case let .unknownKey(id): "signed by unknown key \(id)"
        case let .invalidSignature(why): "invalid signature: \(why)"
        case let .truncated(bytes, declared): "model truncated: \(bytes) of \(declared) bytes"
        case let .sizeMismatch(bytes, declared): "model is \(bytes) bytes, the envelope declares \(declared)"
        case let .hashMismatch(expected, actual): "SHA-256 mismatch: envelope \(expected), model \(actual)"
        case let .downgrade(running, offered): "version \(offered) is lower than the running \(running) (set \"force\": true to downgrade)"
        case let .invalidModel(e): "model rejected: \(e)"
        case let .versionMismatch(envelope, model): "the envelope says version \(envelope), the model file says \(model)"
        case let .nameMismatch(envelope, model): "the envelope says name \(envelope), the model file says \(model)"
        case let .wrongTask(task, why): "not a model for this node (task \"\(task)\")" + (why.map { ": \($0)" } ?? "")
        case let .wrongDetector(why): "wrong cry detector kind: \(why)"
        case let .bodyMismatch(_, why): "the cry head and the YAMNet body do not fit: \(why)"
        case let .unknownSlot(slot, available): "no model slot \"\(slot)\" on this node (\(available.joined(separator: ", ")))"
        case let .incompatibleFeatures(why): "model features cannot be used by this node's front end: \(why)"
        case .notRunning: "the audio pipeline is not running"
        case .nothingToRollBack: "no previous model to roll back to"
        case let .storeFailed(why): "storing the model failed: \(why)"
        case let .swapFailed(why): "swapping the model failed: \(why)"
        }
    }
}
