import Features
import Foundation

/// A validated YAMNet body: metadata, weights dequantised to float32 once at load (int8 × per-channel
/// scale, exactly the numbers TFLite's int8 kernels represent), and the self-test. Immutable and
/// `Sendable`; each `YAMNetEngine` owns its scratch memory.
public struct YAMNetModel: Sendable {
    /// One layer with its weights in the engine's layout.
    struct Layer: Sendable {
        enum Op: Sendable { case conv, depthwise, pointwise }
        var op: Op
        var kernel: Int
        var stride: Int
        var inChannels: Int
        var outChannels: Int
        /// conv: `[kh][kw][out]`; depthwise: `[kh][kw][channel]` (taps outermost, channels contiguous, so the
        /// inner loop runs over contiguous channels); pointwise: `[out][in]`.
        var weights: [Float]
        var bias: [Float]
    }

    public let metadata: YAMNetMetadata
    let layers: [Layer]
    /// `[n_classes][embedding_dim]`.
    let classifierWeights: [Float]
    let classifierBias: [Float]
    public let parameterCount: Int
    public let source: String
    public let byteCount: Int
    public let selfTestInput: [Float]
    public let selfTestEmbedding: [Float]

    public var labels: [String] { metadata.labels }
    public var frontEnd: PatchLogMelParameters { metadata.frontEnd }
    public var embeddingDimension: Int { metadata.architecture.embeddingDim }

    public static func load(path: String, verifySelfTest: Bool = true) throws(ModelError) -> YAMNetModel {
        try YAMNetModel(file: SafeTensorsFile(contentsOf: path), source: path, verifySelfTest: verifySelfTest)
    }

    public static func load(bytes: [UInt8], source: String = "memory", verifySelfTest: Bool = true) throws(ModelError) -> YAMNetModel {
        try YAMNetModel(file: SafeTensorsFile(bytes: bytes), source: source, verifySelfTest: verifySelfTest)
    }

    init(file: SafeTensorsFile, source: String, verifySelfTest: Bool) throws(ModelError) {
        let meta = try TensorReader.metadata(YAMNetMetadata.self, in: file)
        try meta.validate()
        var reader = TensorReader(file)
        func f32(_ name: String, _ shape: [Int]) throws(ModelError) -> [Float] { try reader.floats(name, shape) }
        /// Dequantised `[out][rest]` weights: int8 × the scale of their output channel.
        func dequantised(_ prefix: String, _ shape: [Int]) throws(ModelError) -> [Float] {
            let name = prefix + ".weight"
            guard let t = file.tensors[name] else { throw .missingTensor(name: name) }
            guard t.shape == shape else { throw .shapeMismatch(tensor: name, expected: shape, actual: t.shape) }
            let scale = try f32(prefix + ".weight_scale", [shape[0]])
            if let bad = scale.firstIndex(where: { !($0 > 0) }) { throw .nonFiniteWeight(tensor: prefix + ".weight_scale", index: bad) }
            reader.markUsed(name)
            let per = shape.dropFirst().reduce(1, *)
            switch t.dtype {
            case "I8":
                let count = shape.reduce(1, *)
                return try file.withInt8s(name) { qp in
                    [Float](unsafeUninitializedCapacity: count) { out, n in
                        scale.withUnsafeBufferPointer { sp in
                            for o in 0..<sp.count {
                                let s = sp[o], base = o * per
                                for i in base..<(base + per) { out[i] = Float(qp[i]) * s }
                            }
                        }
                        n = count
                    }
                }
            default:
                throw .unsupportedDType(tensor: name, dtype: t.dtype)
            }
        }

        let arch = meta.architecture
        var layers: [Layer] = []
        var channels = 1
        for (i, l) in arch.layers.enumerated() {
            let p = "layers.\(i)"
            switch l.op {
            case "conv":
                let k = l.kernel!, out = l.filters!
                let w = try dequantised(p, [out, k, k, channels])
                guard channels == 1 else { throw .invalidMetadata(key: "architecture.layers[0]", reason: "the first conv takes one channel") }
                // [out][kh][kw][1] → [kh][kw][out]
                var t = [Float](repeating: 0, count: w.count)
                for o in 0..<out { for tap in 0..<(k * k) { t[tap * out + o] = w[o * k * k + tap] } }
                layers.append(Layer(op: .conv, kernel: k, stride: l.stride!, inChannels: 1, outChannels: out, weights: t, bias: try f32(p + ".bias", [out])))
                channels = out
            case "depthwise":
                let k = l.kernel!
                let w = try dequantised(p, [channels, k, k])
                var t = [Float](repeating: 0, count: w.count)
                for c in 0..<channels { for tap in 0..<(k * k) { t[tap * channels + c] = w[c * k * k + tap] } }
                layers.append(Layer(op: .depthwise, kernel: k, stride: l.stride!, inChannels: channels, outChannels: channels, weights: t, bias: try f32(p + ".bias", [channels])))
            default:
                let out = l.filters!
                let w = try dequantised(p, [out, channels])
                layers.append(Layer(op: .pointwise, kernel: 1, stride: 1, inChannels: channels, outChannels: out, weights: w, bias: try f32(p + ".bias", [out])))
                channels = out
            }
        }
        classifierWeights = try dequantised("classifier", [arch.nClasses, arch.embeddingDim])
        classifierBias = try f32("classifier.bias", [arch.nClasses])
        let front = meta.frontEnd
        selfTestInput = try f32(meta.selftest.inputTensor, [front.patchSamples])
        selfTestEmbedding = try f32(meta.selftest.embeddingTensor, [arch.embeddingDim])
        try reader.rejectUnused()
        // SAME padding gives ceil(in / stride) ≥ 1 outputs, so any patch size survives the strides.
        self.layers = layers
        self.metadata = meta
        self.source = source
        self.byteCount = file.bytes.count
        self.parameterCount = layers.reduce(0) { $0 + $1.weights.count + $1.bias.count } + classifierWeights.count + classifierBias.count
        guard YAMNetEngine.scratchFloats(model: self) <= YAMNetEngine.maxScratchFloats else {
            throw .invalidMetadata(key: "architecture", reason: "needs more than 256 MiB of scratch memory per patch")
        }
        if verifySelfTest {
            let r = runSelfTest()
            guard r.passed else { throw .selfTestFailed(maxDelta: r.maxDelta, tolerance: r.tolerance) }
        }
    }

    /// Runs `selftest.input` through the front end and body; compares embedding and scores.
    public func runSelfTest() -> ModelBundle.SelfTestResult {
        let engine = YAMNetEngine(model: self)
        let out = engine.analyse(waveform: selfTestInput)
        let expected = metadata.selftest.expected
        let actual = out.scores.map(Double.init)
        var delta = Double.infinity
        if actual.count == expected.count, actual.allSatisfy(\.isFinite), out.embedding.allSatisfy(\.isFinite) {
            let ds = zip(expected, actual).map { abs($0 - $1) }.max() ?? 0
            let de = zip(selfTestEmbedding, out.embedding).map { Double(abs($0 - $1)) }.max() ?? 0
            delta = max(ds, de)
        }
        let tol = metadata.selftest.tolerance
        return ModelBundle.SelfTestResult(passed: delta <= tol, maxDelta: delta, tolerance: tol, expected: expected, actual: actual)
    }
}
