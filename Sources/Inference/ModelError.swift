/// Why a model file was refused. Every case names the tensor or metadata key at fault, so an operator
/// can tell a truncated download from a training/export bug from a front-end mismatch.
public enum ModelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be read at all.
    case unreadable(path: String, reason: String)
    /// Shorter than the 8-byte header length, or the header runs past the end of the file.
    case truncated(reason: String)
    /// The 8-byte little-endian header length is implausible (zero, too large, past end of file).
    case invalidHeaderLength(declared: UInt64, fileSize: Int)
    /// The header bytes are not UTF-8 JSON.
    case headerNotJSON(reason: String)
    /// The header JSON is valid but not an object.
    case headerNotObject
    /// A header entry (tensor description or `__metadata__`) is malformed.
    case invalidHeaderEntry(key: String, reason: String)
    /// A tensor's dtype is not one the engine reads (only `F32`).
    case unsupportedDType(tensor: String, dtype: String)
    /// A tensor's `data_offsets` are out of range, overlap, leave holes or disagree with its shape.
    case invalidDataOffsets(tensor: String, reason: String)
    /// `__metadata__` lacks a key (dotted path inside the `deepinfant` document).
    case missingMetadata(key: String)
    /// A metadata value has the wrong type or an unsupported value.
    case invalidMetadata(key: String, reason: String)
    /// Feature parameters the Swift log-mel front end cannot produce.
    case unsupportedFeatures(key: String, reason: String)
    /// A tensor the architecture requires is absent.
    case missingTensor(name: String)
    /// A tensor the architecture does not use is present.
    case unexpectedTensor(name: String)
    /// A tensor's shape disagrees with the declared architecture.
    case shapeMismatch(tensor: String, expected: [Int], actual: [Int])
    /// A NaN or infinite value (or a negative batch-norm variance) in a weight.
    case nonFiniteWeight(tensor: String, index: Int)
    /// The built-in self-test vector did not reproduce the expected probabilities.
    case selfTestFailed(maxDelta: Double, tolerance: Double)
    /// The embedded default model is missing from the executable's resources.
    case embeddedModelMissing

    public var description: String {
        switch self {
        case let .unreadable(path, reason): "cannot read model file \(path): \(reason)"
        case let .truncated(reason): "model file truncated: \(reason)"
        case let .invalidHeaderLength(declared, size):
            "invalid safetensors header length \(declared) for a \(size)-byte file"
        case let .headerNotJSON(reason): "safetensors header is not valid JSON: \(reason)"
        case .headerNotObject: "safetensors header JSON is not an object"
        case let .invalidHeaderEntry(key, reason): "safetensors header entry \"\(key)\": \(reason)"
        case let .unsupportedDType(tensor, dtype): "tensor \(tensor): dtype \(dtype) is not supported here"
        case let .invalidDataOffsets(tensor, reason): "tensor \(tensor): invalid data_offsets: \(reason)"
        case let .missingMetadata(key): "model metadata is missing \"\(key)\""
        case let .invalidMetadata(key, reason): "model metadata \"\(key)\": \(reason)"
        case let .unsupportedFeatures(key, reason): "feature parameter \(key) cannot be produced by the front end: \(reason)"
        case let .missingTensor(name): "missing tensor \(name)"
        case let .unexpectedTensor(name): "unexpected tensor \(name) (not part of the declared architecture)"
        case let .shapeMismatch(tensor, expected, actual):
            "tensor \(tensor): shape \(actual) does not match the architecture's \(expected)"
        case let .nonFiniteWeight(tensor, index): "tensor \(tensor): invalid value (NaN/Inf/negative variance) at element \(index)"
        case let .selfTestFailed(maxDelta, tolerance):
            "self-test failed: max |Δp| \(maxDelta) exceeds tolerance \(tolerance)"
        case .embeddedModelMissing: "the embedded model is missing from the executable (built without Sources/CEmbeddedModels?)"
        }
    }
}

/// Why one inference call was refused (the model itself is fine).
public enum InferenceError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer frames than the conv stack needs (2^blocks), e.g. a recording under ~0.25 s.
    case tooFewFrames(frames: Int, minimum: Int)
    /// More frames than the engine's buffers were sized for (`maxFrames`); split into windows first.
    case tooManyFrames(frames: Int, maximum: Int)
    /// The feature matrix's mel count differs from the model's.
    case melMismatch(expected: Int, actual: Int)
    /// A feature value is NaN or infinite.
    case nonFiniteInput(index: Int)

    public var description: String {
        switch self {
        case let .tooFewFrames(frames, minimum): "input has \(frames) frames, the model needs at least \(minimum)"
        case let .tooManyFrames(frames, maximum): "input has \(frames) frames, the engine handles at most \(maximum) per window"
        case let .melMismatch(expected, actual): "input has \(actual) mel bands, the model expects \(expected)"
        case let .nonFiniteInput(index): "input feature \(index) is NaN or infinite"
        }
    }
}
