import Agent
import Features
import Gate
import Inference

/// What the acceptance checks need to know about a node: which cry detector it runs and the models in
/// the slots a new model must fit. Built from the running models (`init(detector:reason:)`), or, by
/// `model verify`, from the models a node would run.
public struct NodeProfile: Sendable, Equatable {
    public struct Body: Sendable, Equatable {
        public var name: String
        public var version: String
        public var embeddingDim: Int
        public init(name: String, version: String, embeddingDim: Int) {
            self.name = name
            self.version = version
            self.embeddingDim = embeddingDim
        }
    }

    public struct Head: Sendable, Equatable {
        public var name: String
        public var version: String
        /// `body.name` of the head's metadata: the body it was trained on.
        public var bodyName: String
        public var inputDim: Int
        public init(name: String, version: String, bodyName: String, inputDim: Int) {
            self.name = name
            self.version = version
            self.bodyName = bodyName
            self.inputDim = inputDim
        }
    }

    /// `gate.detector`: "crnn" or "yamnet".
    public var detector: String
    /// The gate's log-mel front end (the reason model's; the CRNN cry detector's on a crnn node).
    public var frontEnd: LogMelParameters
    /// The YAMNet body and cry head in force (yamnet nodes).
    public var body: Body?
    public var head: Head?

    public init(detector: String, frontEnd: LogMelParameters, body: Body? = nil, head: Head? = nil) {
        self.detector = detector
        self.frontEnd = frontEnd
        self.body = body
        self.head = head
    }

    /// The profile of a node running these models.
    public init(detector: CryDetectorModel, reason: ModelBundle) {
        self.init(detector: detector.kind, frontEnd: reason.metadata.features.logMelParameters)
        if case let .yamnet(b, h) = detector {
            body = .init(b)
            head = .init(h)
        }
    }

    /// The node's model slots.
    public var slots: [ModelSlot] { detector == "yamnet" ? [.reason, .cry, .yamnet] : [.reason, .cry] }
}

extension NodeProfile.Body {
    public init(_ m: YAMNetModel) { self.init(name: m.metadata.name, version: m.metadata.version, embeddingDim: m.embeddingDimension) }
}

extension NodeProfile.Head {
    public init(_ h: EmbeddingHead) {
        self.init(name: h.metadata.name, version: h.metadata.version, bodyName: h.metadata.body.name, inputDim: h.metadata.architecture.inputDim)
    }
}

/// What a node checks about a signed model after the envelope's signature, size and hash: the model-file
/// checks (any kind, told apart by `architecture.type`), version and name against the envelope, the model
/// slot it goes to (from kind and task), whether it fits the models in the other slots, the self-test.
/// `deepinfant-edge model verify` runs the same functions, so "it verifies" means "a node accepts it".
public enum ModelAcceptance {
    /// A parsed model and the slot it is for (not yet checked against the other slots or self-tested).
    public struct Candidate: Sendable {
        public var slot: ModelSlot
        public var model: AnyModel
    }

    /// Every check, in the node's order: ``classify(bytes:envelope:node:source:)``, then ``fit(_:slot:node:)``
    /// and the self-test.
    public static func check(bytes: [UInt8], envelope: ModelEnvelope, node: NodeProfile, source: String) throws(ModelUpdateError) -> Candidate {
        let candidate = try classify(bytes: bytes, envelope: envelope, node: node, source: source)
        try fit(candidate.model, slot: candidate.slot, node: node)
        try selfTest(candidate.model)
        return candidate
    }

    /// Parses the model file (all checks but the self-test), compares version and name with the envelope,
    /// and picks its slot: a CRNN with task "reason" → `reason`; a CRNN cry detector → `cry` on a crnn node;
    /// a cry head → `cry` on a yamnet node; a YAMNet body → `yamnet` on a yamnet node.
    public static func classify(bytes: [UInt8], envelope: ModelEnvelope, node: NodeProfile, source: String) throws(ModelUpdateError) -> Candidate {
        let model: AnyModel
        do { model = try AnyModel.load(bytes: bytes, source: source, verifySelfTest: false) } catch { throw .invalidModel(error) }
        guard model.version == envelope.version else { throw .versionMismatch(envelope: envelope.version, model: model.version) }
        if let name = envelope.name, name != model.name { throw .nameMismatch(envelope: name, model: model.name) }
        return Candidate(slot: try slot(of: model, node: node), model: model)
    }

    /// The slot a model goes to on `node`, or why it has none there.
    public static func slot(of model: AnyModel, node: NodeProfile) throws(ModelUpdateError) -> ModelSlot {
        let yamnetNode = node.detector == "yamnet"
        switch model {
        case let .crnn(m) where m.metadata.task == "reason":
            return .reason
        case let .crnn(m) where m.metadata.task == "cry":
            guard !yamnetNode else {
                throw .wrongDetector("a CRNN cry detector; this node runs the yamnet detector (a cry head on the YAMNet body); gate.detector = \"crnn\" and a restart would run it")
            }
            return .cry
        case let .crnn(m):
            throw .wrongTask(m.metadata.task, why: "not a reason model or a cry detector")
        case .head:
            guard yamnetNode else {
                throw .wrongDetector("a cry head on YAMNet embeddings; this node runs the crnn cry detector; gate.detector = \"yamnet\" and a restart would run it")
            }
            return .cry
        case .yamnet:
            guard yamnetNode else {
                throw .wrongTask(model.task, why: "a YAMNet body, and this node runs the crnn cry detector, which has none (its slots: reason, cry)")
            }
            return .yamnet
        }
    }

    /// Whether `model` fits the models in the node's other slots: a reason model or CRNN cry detector the
    /// gate's log-mel front end; a cry head the running body (`body.name`, `input_dim` = embedding size);
    /// a body the running cry head (the same two, seen from the head).
    public static func fit(_ model: AnyModel, slot: ModelSlot, node: NodeProfile) throws(ModelUpdateError) {
        switch model {
        case let .crnn(m):
            guard m.metadata.features.logMelParameters == node.frontEnd, m.metadata.architecture.nMels == node.frontEnd.nMels else {
                throw .incompatibleFeatures("the model's log-mel parameters differ from the node's front end (\(node.frontEnd))")
            }
        case let .head(h):
            guard let body = node.body else { throw .bodyMismatch(key: "body.name", reason: "the node runs no YAMNet body") }
            let meta = h.metadata
            guard meta.body.name == body.name else {
                throw .bodyMismatch(key: "body.name", reason: "the head was trained on body \"\(meta.body.name)\", the node runs \"\(body.name)\" \(body.version)")
            }
            guard meta.architecture.inputDim == body.embeddingDim else {
                throw .bodyMismatch(key: "architecture.input_dim", reason: "the head takes \(meta.architecture.inputDim)-d embeddings, the body \"\(body.name)\" gives \(body.embeddingDim)")
            }
        case let .yamnet(b):
            guard let head = node.head else { throw .bodyMismatch(key: "name", reason: "the node runs no cry head") }
            guard b.metadata.name == head.bodyName else {
                throw .bodyMismatch(key: "name", reason: "the body is \"\(b.metadata.name)\", the running cry head \(head.name) \(head.version) was trained on \"\(head.bodyName)\"")
            }
            guard b.embeddingDimension == head.inputDim else {
                throw .bodyMismatch(key: "architecture.embedding_dim", reason: "the body gives \(b.embeddingDimension)-d embeddings, the running cry head \(head.name) \(head.version) takes \(head.inputDim)")
            }
        }
    }

    /// The model's self-test vector must reproduce its expected output.
    public static func selfTest(_ model: AnyModel) throws(ModelUpdateError) {
        let r = model.runSelfTest()
        guard r.passed else { throw .invalidModel(.selfTestFailed(maxDelta: r.maxDelta, tolerance: r.tolerance)) }
    }
}
