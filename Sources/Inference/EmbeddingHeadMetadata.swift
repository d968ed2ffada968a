/// The `deepinfant` document of a cry head on YAMNet embeddings (`architecture.type: "embedding_head"`,
/// docs/model-format-yamnet.md).
public struct EmbeddingHeadMetadata: Sendable, Equatable, Codable {
    public var format: String
    public var formatVersion: Int
    public var name: String
    public var version: String
    /// "cry".
    public var task: String
    public var labels: [String]
    public var architecture: Architecture
    /// The body whose embeddings it was trained on.
    public var body: Body
    public var gate: ModelMetadata.GateRecommendation?
    public var training: JSONValue?
    public var selftest: ModelMetadata.SelfTest

    public struct Architecture: Sendable, Equatable, Codable {
        public var type: String
        /// "yamnet".
        public var input: String
        public var inputDim: Int
        public var hidden: [Int]
        public var activation: String
        public var nClasses: Int
    }

    public struct Body: Sendable, Equatable, Codable {
        public var name: String
        public var version: String
    }

    public func validate() throws(ModelError) {
        func bad(_ key: String, _ why: String) -> ModelError { .invalidMetadata(key: key, reason: why) }
        guard format == ModelMetadata.formatName else { throw bad("format", "expected \"\(ModelMetadata.formatName)\", got \"\(format)\"") }
        guard formatVersion == ModelMetadata.supportedFormatVersion else { throw bad("format_version", "version \(formatVersion) is not supported") }
        guard task == "cry" else { throw bad("task", "an embedding head is a cry detector (task \"cry\"), got \"\(task)\"") }
        let a = architecture
        guard a.type == "embedding_head" else { throw bad("architecture.type", "expected \"embedding_head\", got \"\(a.type)\"") }
        guard a.input == "yamnet" else { throw bad("architecture.input", "only \"yamnet\" embeddings are computed, got \"\(a.input)\"") }
        guard (1...8192).contains(a.inputDim) else { throw bad("architecture.input_dim", "must be in 1...8192") }
        guard a.hidden.count <= 4, a.hidden.allSatisfy({ (1...4096).contains($0) }) else { throw bad("architecture.hidden", "at most 4 layers of 1...4096 units") }
        guard a.activation == "relu" else { throw bad("architecture.activation", "only \"relu\" is supported, got \"\(a.activation)\"") }
        guard a.nClasses == 2, labels == ["not_cry", "cry"] else { throw bad("labels", "a cry head has labels [\"not_cry\", \"cry\"]") }
        guard selftest.inputTensor == "selftest.input" else { throw bad("selftest.input_tensor", "must be \"selftest.input\"") }
        guard selftest.expected.count == 2, selftest.expected.allSatisfy({ $0.isFinite && $0 >= 0 && $0 <= 1 }) else {
            throw bad("selftest.expected", "need 2 probabilities in [0, 1]")
        }
        guard selftest.tolerance.isFinite, selftest.tolerance > 0, selftest.tolerance <= 0.05 else {
            throw bad("selftest.tolerance", "must be in (0, 0.05], got \(selftest.tolerance)")
        }
        if let g = gate { guard g.threshold.isFinite, g.threshold > 0, g.threshold < 1 else { throw bad("gate.threshold", "must be in (0, 1)") } }
    }
}
