import Inference

/// Which stage-2 cry detector a gate runs, with its model files. `yamnet` (the default since cry model
/// 2.0: a cry head on the pretrained AudioSet body's embeddings) or `crnn` (the from-scratch detector on
/// the reason model's log-mel, kept for very small boards: ~0.1 ms per window instead of ~10 ms).
public enum CryDetectorModel: Sendable {
    case crnn(ModelBundle)
    case yamnet(body: YAMNetModel, head: EmbeddingHead)

    /// The model a user would name: the CRNN, or the head (the body is named by `bodyName`).
    public var name: String {
        switch self {
        case let .crnn(m): m.metadata.name
        case let .yamnet(_, head): head.metadata.name
        }
    }

    public var version: String {
        switch self {
        case let .crnn(m): m.metadata.version
        case let .yamnet(_, head): head.metadata.version
        }
    }

    /// The threshold the model's training recommends (else 0.5).
    public var recommendedThreshold: Double {
        switch self {
        case let .crnn(m): m.metadata.gate?.threshold ?? 0.5
        case let .yamnet(_, head): head.metadata.gate?.threshold ?? 0.5
        }
    }

    /// "crnn" or "yamnet" (the `gate.detector` config value).
    public var kind: String {
        switch self {
        case .crnn: "crnn"
        case .yamnet: "yamnet"
        }
    }

    public var body: YAMNetModel? {
        if case let .yamnet(body, _) = self { return body }
        return nil
    }
}

extension CryDetectorModel {
    /// The embedded detector of a kind ("yamnet": body + cry head; "crnn": the old detector).
    public static func embedded(kind: String = "yamnet") throws -> CryDetectorModel {
        switch kind {
        case "crnn": return .crnn(try ModelBundle.embeddedCryDetector())
        default: return .yamnet(body: try YAMNetModel.embedded(), head: try EmbeddingHead.embedded())
        }
    }

    /// A detector from a cry-model file: a CRNN cry detector, or a cry head (then on `body`, else the
    /// embedded YAMNet body).
    public static func load(cryModel path: String, body: YAMNetModel? = nil) throws -> CryDetectorModel {
        switch try AnyModel.load(path: path) {
        case let .crnn(m):
            guard m.metadata.task == "cry" else { throw GateError.incompatibleModels("\(path) is a \(m.metadata.task) model, not a cry detector") }
            return .crnn(m)
        case let .head(h): return .yamnet(body: try body ?? YAMNetModel.embedded(), head: h)
        case .yamnet: throw GateError.incompatibleModels("\(path) is a YAMNet body; give it with --yamnet and a cry head with --cry-model")
        }
    }
}

extension CryDetectorModel {
    /// The model files behind the detector (self-tests, `info`).
    public var models: [AnyModel] {
        switch self {
        case let .crnn(m): [.crnn(m)]
        case let .yamnet(body, head): [.yamnet(body), .head(head)]
        }
    }
}
