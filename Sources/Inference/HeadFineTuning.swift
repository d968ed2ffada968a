import Foundation

/// A cry head retrained on what a fleet's homes taught it (`deepinfant-edge model train-head`): the output
/// layer (the hidden layers stay as they are) fitted by full-batch gradient descent on the feedback patches
/// — `not_cry` episodes as negatives, confirmed cries as positives, the two classes weighted equally —
/// with an L2 pull towards the shipped weights, so a few dozen answers move the head without making it
/// forget the tens of thousands of clips it was trained on. The result is a complete model file with a new
/// version, a recomputed self-test and the feedback recorded in `training.feedback`.
public enum HeadFineTuning {
    public struct Example: Sendable {
        public var embedding: [Float]
        public var cry: Bool
        public var group: String
        public init(embedding: [Float], cry: Bool, group: String) {
            self.embedding = embedding
            self.cry = cry
            self.group = group
        }
    }

    public struct Options: Sendable {
        public var steps = 300
        public var learningRate = 0.05
        /// Strength of the pull towards the original output layer.
        public var l2 = 0.01
        public init() {}
    }

    public enum Failure: Error, CustomStringConvertible {
        case noExamples
        case dimension(Int, expected: Int)
        case metadata(String)
        public var description: String {
            switch self {
            case .noExamples: "no usable feedback: need patches labelled not_cry or with a reason"
            case let .dimension(d, e): "an embedding has \(d) values, the head takes \(e)"
            case let .metadata(why): "the head's metadata: \(why)"
            }
        }
    }

    /// The retrained model file.
    public static func fineTune(headFile bytes: [UInt8], examples: [Example], version: String, options: Options = Options()) throws -> [UInt8] {
        let file = try SafeTensorsFile(bytes: bytes)
        let head = try EmbeddingHead(file: file, source: "memory", verifySelfTest: true)
        guard !examples.isEmpty else { throw Failure.noExamples }
        let dim = head.metadata.architecture.inputDim
        if let bad = examples.first(where: { $0.embedding.count != dim }) { throw Failure.dimension(bad.embedding.count, expected: dim) }
        // Features entering the output layer (standardised, through the frozen hidden layers).
        let features = examples.map { head.hiddenFeatures($0.embedding) }
        let width = features[0].count
        let original = head.layers[head.layers.count - 1]
        var w = original.weights.map(Double.init), b = original.bias.map(Double.init)
        let w0 = w, b0 = b
        let positives = Double(examples.filter(\.cry).count), negatives = Double(examples.count) - positives
        let weightOf = examples.map { $0.cry ? 0.5 / max(positives, 1) : 0.5 / max(negatives, 1) }
        for _ in 0..<options.steps {
            var gw = [Double](repeating: 0, count: w.count), gb = [Double](repeating: 0, count: 2)
            for (i, x) in features.enumerated() {
                var z = [b[0], b[1]]
                for c in 0..<2 { for j in 0..<width { z[c] += w[c * width + j] * Double(x[j]) } }
                let m = max(z[0], z[1])
                let e0 = exp(z[0] - m), e1 = exp(z[1] - m)
                let p1 = e1 / (e0 + e1)
                let y1 = examples[i].cry ? 1.0 : 0.0
                let g = [(1 - p1) - (1 - y1), p1 - y1].map { $0 * weightOf[i] }
                for c in 0..<2 {
                    gb[c] += g[c]
                    for j in 0..<width { gw[c * width + j] += g[c] * Double(x[j]) }
                }
            }
            for k in w.indices { w[k] -= options.learningRate * (gw[k] + options.l2 * (w[k] - w0[k])) }
            for c in 0..<2 { b[c] -= options.learningRate * (gb[c] + options.l2 * (b[c] - b0[c])) }
        }
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        for name in file.tensors.keys.sorted() where name != "out.weight" && name != "out.bias" {
            tensors.append((name, file.tensors[name]!.shape, try file.floats(name)))
        }
        tensors.append(("out.weight", [2, width], w.map(Float.init)))
        tensors.append(("out.bias", [2], b.map(Float.init)))
        // The self-test's expected output, recomputed with the new weights.
        let draft = SafeTensorsWriter.encode(tensors: tensors, metadata: file.metadata)
        let retrained = try EmbeddingHead(file: SafeTensorsFile(bytes: draft), source: "memory", verifySelfTest: false)
        let expected = retrained.selfTestInput.withUnsafeBufferPointer { retrained.probabilities(embedding: $0) }
        guard let text = file.metadata[ModelMetadata.metadataKey],
              case var .object(meta) = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else { throw Failure.metadata("not a JSON object") }
        meta["version"] = .string(version)
        guard case var .object(selftest)? = meta["selftest"] else { throw Failure.metadata("no selftest") }
        selftest["expected"] = .array(expected.map { .number($0) })
        meta["selftest"] = .object(selftest)
        var training: [String: JSONValue] = if case let .object(t)? = meta["training"] { t } else { [:] }
        training["feedback"] = .object([
            "base_version": .string(head.metadata.version),
            "patches": .number(Double(examples.count)), "cry_patches": .number(positives), "not_cry_patches": .number(negatives),
            "groups": .array(Set(examples.map(\.group)).sorted().map { .string($0) }),
            "steps": .number(Double(options.steps)), "learning_rate": .number(options.learningRate), "l2": .number(options.l2),
        ])
        meta["training"] = .object(training)
        var metadata = file.metadata
        metadata[ModelMetadata.metadataKey] = JSONValue.object(meta).jsonText
        let out = SafeTensorsWriter.encode(tensors: tensors, metadata: metadata)
        _ = try EmbeddingHead.load(bytes: out)  // the file must load and pass its own self-test
        return out
    }
}

extension EmbeddingHead {
    /// The input of the output layer: standardised, through the hidden layers.
    func hiddenFeatures(_ embedding: [Float]) -> [Float] {
        var x = (0..<mean.count).map { (embedding[$0] - mean[$0]) * scale[$0] }
        for layer in layers.dropLast() {
            let outs = layer.bias.count, ins = x.count
            x = (0..<outs).map { o in
                var s = layer.bias[o]
                for i in 0..<ins { s += layer.weights[o * ins + i] * x[i] }
                return max(s, 0)
            }
        }
        return x
    }
}
