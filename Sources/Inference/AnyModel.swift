import Foundation

/// Any model file the node can run, told apart by `architecture.type` before the full validation of
/// that kind runs: `crnn` (reason model, old cry detector), `yamnet` (the AudioSet body), `embedding_head`
/// (a cry head on the body's embeddings). Remote updates, `model inspect` and `model verify` load
/// through this, so a new kind slots in here and nowhere else.
public enum AnyModel: Sendable {
    case crnn(ModelBundle)
    case yamnet(YAMNetModel)
    case head(EmbeddingHead)

    /// Just enough of the document to pick the loader.
    struct Header: Decodable {
        struct Arch: Decodable { var type: String }
        var architecture: Arch
    }

    public static func kind(of file: SafeTensorsFile) throws(ModelError) -> String {
        guard let json = file.metadata[ModelMetadata.metadataKey] else {
            throw .missingMetadata(key: "__metadata__.\(ModelMetadata.metadataKey)")
        }
        return try MetadataDecoding.decode(Header.self, json: json).architecture.type
    }

    public static func load(bytes: [UInt8], source: String = "memory", verifySelfTest: Bool = true) throws(ModelError) -> AnyModel {
        try load(file: SafeTensorsFile(bytes: bytes), source: source, verifySelfTest: verifySelfTest)
    }

    public static func load(path: String, verifySelfTest: Bool = true) throws(ModelError) -> AnyModel {
        try load(file: SafeTensorsFile(contentsOf: path), source: path, verifySelfTest: verifySelfTest)
    }

    static func load(file: SafeTensorsFile, source: String, verifySelfTest: Bool) throws(ModelError) -> AnyModel {
        switch try kind(of: file) {
        case "yamnet": .yamnet(try YAMNetModel(file: file, source: source, verifySelfTest: verifySelfTest))
        case "embedding_head": .head(try EmbeddingHead(file: file, source: source, verifySelfTest: verifySelfTest))
        default: .crnn(try ModelBundle(file: file, source: source, verifySelfTest: verifySelfTest))
        }
    }

    public var name: String {
        switch self {
        case let .crnn(m): m.metadata.name
        case let .yamnet(m): m.metadata.name
        case let .head(m): m.metadata.name
        }
    }

    public var version: String {
        switch self {
        case let .crnn(m): m.metadata.version
        case let .yamnet(m): m.metadata.version
        case let .head(m): m.metadata.version
        }
    }

    public var task: String {
        switch self {
        case let .crnn(m): m.metadata.task
        case let .yamnet(m): m.metadata.task
        case let .head(m): m.metadata.task
        }
    }

    public var labels: [String] {
        switch self {
        case let .crnn(m): m.labels
        case let .yamnet(m): m.labels
        case let .head(m): m.labels
        }
    }

    public var architectureType: String {
        switch self {
        case .crnn: "crnn"
        case .yamnet: "yamnet"
        case .head: "embedding_head"
        }
    }

    public func runSelfTest() -> ModelBundle.SelfTestResult {
        switch self {
        case let .crnn(m): m.runSelfTest()
        case let .yamnet(m): m.runSelfTest()
        case let .head(m): m.runSelfTest()
        }
    }
}
