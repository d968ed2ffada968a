import CEmbeddedModels

/// The model files shipped inside the executable (linked in by the CEmbeddedModels target), so that one
/// file is the whole node: a binary copied alone to a Pi still has its models. Their bytes are read-only
/// data of the executable; a load copies them once and validates them like any file (self-test included).
public enum EmbeddedModel: String, CaseIterable, Sendable {
    case reason = "deepinfant-reason.safetensors"
    case cryCRNN = "deepinfant-cry.safetensors"
    case yamnet = "yamnet.safetensors"
    case cryHead = "deepinfant-cry-head.safetensors"

    /// The file name the model has in `Sources/Inference/Resources/` (where training/ writes it).
    public var fileName: String { rawValue }

    /// What a model loaded from here reports as its source: distinct per model, never a path on disk.
    public var source: String { "embedded:" + rawValue }

    private var id: deepinfant_embedded_model {
        switch self {
        case .reason: DEEPINFANT_MODEL_REASON
        case .cryCRNN: DEEPINFANT_MODEL_CRY_CRNN
        case .yamnet: DEEPINFANT_MODEL_YAMNET
        case .cryHead: DEEPINFANT_MODEL_CRY_HEAD
        }
    }

    /// The file's bytes, exactly as committed.
    public var bytes: [UInt8] {
        var size = 0
        guard let start = deepinfant_embedded_model_bytes(id, &size), size > 0 else { return [] }
        let copy = [UInt8](UnsafeBufferPointer(start: start, count: size))
        deepinfant_embedded_model_drop_pages(id)
        return copy
    }

    /// The embedded model behind a `source` string, if it is one.
    public init?(source: String) {
        guard source.hasPrefix("embedded:"), let m = EmbeddedModel(rawValue: String(source.dropFirst("embedded:".count))) else { return nil }
        self = m
    }

    fileprivate func checkedBytes() throws(ModelError) -> [UInt8] {
        let b = bytes
        guard !b.isEmpty else { throw .embeddedModelMissing }
        return b
    }
}

extension ModelBundle {
    /// File name of the embedded default reason model.
    public static let embeddedModelName = EmbeddedModel.reason.fileName
    /// File name of the embedded cry detector (task "cry", labels ["not_cry", "cry"]) for `gate.detector = "crnn"`.
    public static let embeddedCryModelName = EmbeddedModel.cryCRNN.fileName

    /// The default reason model shipped in the executable.
    public static func embeddedDefault(verifySelfTest: Bool = true) throws(ModelError) -> ModelBundle {
        try load(bytes: EmbeddedModel.reason.checkedBytes(), source: EmbeddedModel.reason.source, verifySelfTest: verifySelfTest)
    }

    /// The CRNN cry detector shipped in the executable, beside the default reason model.
    public static func embeddedCryDetector(verifySelfTest: Bool = true) throws(ModelError) -> ModelBundle {
        try load(bytes: EmbeddedModel.cryCRNN.checkedBytes(), source: EmbeddedModel.cryCRNN.source, verifySelfTest: verifySelfTest)
    }
}

extension YAMNetModel {
    /// File name of the embedded YAMNet body (converted from Google's yamnet.tflite, Apache-2.0).
    public static let embeddedName = EmbeddedModel.yamnet.fileName

    public static func embedded(verifySelfTest: Bool = true) throws(ModelError) -> YAMNetModel {
        try load(bytes: EmbeddedModel.yamnet.checkedBytes(), source: EmbeddedModel.yamnet.source, verifySelfTest: verifySelfTest)
    }
}

extension EmbeddingHead {
    /// File name of the embedded cry head on YAMNet embeddings.
    public static let embeddedName = EmbeddedModel.cryHead.fileName

    public static func embedded(verifySelfTest: Bool = true) throws(ModelError) -> EmbeddingHead {
        try load(bytes: EmbeddedModel.cryHead.checkedBytes(), source: EmbeddedModel.cryHead.source, verifySelfTest: verifySelfTest)
    }
}
