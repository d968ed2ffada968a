import Foundation

/// A validated cry head: standardisation, optional hidden ReLU layers, two-class softmax. It is tiny
/// (one 1024-d dot product for a logistic head), so it needs no engine or scratch of its own beyond two
/// vectors, and is `Sendable`.
public struct EmbeddingHead: Sendable {
    public let metadata: EmbeddingHeadMetadata
    let mean: [Float]
    let scale: [Float]
    /// `(weights [out][in], bias [out])` per hidden layer, then the output layer.
    let layers: [(weights: [Float], bias: [Float])]
    public let source: String
    public let byteCount: Int
    public let parameterCount: Int
    public let selfTestInput: [Float]

    public var labels: [String] { metadata.labels }
    /// The standardisation the head applies first (`(e - mean) * scale`): the space in which the node compares
    /// embeddings for caregiver feedback too, so that every dimension counts as much as the head lets it.
    public var standardisation: (mean: [Float], scale: [Float]) { (mean, scale) }
    public var cryIndex: Int { 1 }

    public static func load(path: String, verifySelfTest: Bool = true) throws(ModelError) -> EmbeddingHead {
        try EmbeddingHead(file: SafeTensorsFile(contentsOf: path), source: path, verifySelfTest: verifySelfTest)
    }

    public static func load(bytes: [UInt8], source: String = "memory", verifySelfTest: Bool = true) throws(ModelError) -> EmbeddingHead {
        try EmbeddingHead(file: SafeTensorsFile(bytes: bytes), source: source, verifySelfTest: verifySelfTest)
    }

    init(file: SafeTensorsFile, source: String, verifySelfTest: Bool) throws(ModelError) {
        let meta = try TensorReader.metadata(EmbeddingHeadMetadata.self, in: file)
        try meta.validate()
        var reader = TensorReader(file)
        func f32(_ name: String, _ shape: [Int]) throws(ModelError) -> [Float] { try reader.floats(name, shape) }
        let a = meta.architecture
        mean = try f32("norm.mean", [a.inputDim])
        scale = try f32("norm.scale", [a.inputDim])
        var width = a.inputDim
        var layers: [(weights: [Float], bias: [Float])] = []
        for (j, h) in a.hidden.enumerated() {
            layers.append((try f32("dense.\(j).weight", [h, width]), try f32("dense.\(j).bias", [h])))
            width = h
        }
        layers.append((try f32("out.weight", [a.nClasses, width]), try f32("out.bias", [a.nClasses])))
        self.layers = layers
        selfTestInput = try f32(meta.selftest.inputTensor, [a.inputDim])
        try reader.rejectUnused()
        metadata = meta
        self.source = source
        byteCount = file.bytes.count
        parameterCount = layers.reduce(2 * a.inputDim) { $0 + $1.weights.count + $1.bias.count }
        if verifySelfTest {
            let r = runSelfTest()
            guard r.passed else { throw .selfTestFailed(maxDelta: r.maxDelta, tolerance: r.tolerance) }
        }
    }

    /// Class probabilities `[not_cry, cry]` for one embedding.
    public func probabilities(embedding: UnsafeBufferPointer<Float>) -> [Double] {
        var x = (0..<mean.count).map { (embedding[$0] - mean[$0]) * scale[$0] }
        for (j, layer) in layers.enumerated() {
            let outs = layer.bias.count, ins = x.count
            var y = [Float](repeating: 0, count: outs)
            for o in 0..<outs {
                var s: Float = layer.bias[o]
                for i in 0..<ins { s += layer.weights[o * ins + i] * x[i] }
                y[o] = j < layers.count - 1 ? max(s, 0) : s
            }
            x = y
        }
        let m = x.max() ?? 0
        let e = x.map { exp(Double($0 - m)) }
        let total = e.reduce(0, +)
        return e.map { $0 / total }
    }

    /// The cry probability of one embedding.
    public func cryProbability(embedding: UnsafeBufferPointer<Float>) -> Double { probabilities(embedding: embedding)[cryIndex] }

    public func runSelfTest() -> ModelBundle.SelfTestResult {
        let actual = selfTestInput.withUnsafeBufferPointer { probabilities(embedding: $0) }
        let expected = metadata.selftest.expected
        let delta = actual.allSatisfy(\.isFinite) ? (zip(expected, actual).map { abs($0 - $1) }.max() ?? .infinity) : .infinity
        let tol = metadata.selftest.tolerance
        return ModelBundle.SelfTestResult(passed: delta <= tol, maxDelta: delta, tolerance: tol, expected: expected, actual: actual)
    }
}
