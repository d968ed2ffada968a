import Features

/// The `deepinfant` document of a YAMNet body file (`architecture.type: "yamnet"`,
/// docs/model-format-yamnet.md). Separate from `ModelMetadata` because nothing of the CRNN's
/// architecture, window or log-mel applies to it.
public struct YAMNetMetadata: Sendable, Equatable, Codable {
    public var format: String
    public var formatVersion: Int
    public var name: String
    public var version: String
    /// "audioset".
    public var task: String
    /// The 521 AudioSet display names, in output order.
    public var labels: [String]
    public var architecture: Architecture
    public var features: Features
    public var classMids: [String]?
    /// Where the weights came from and under which licence (shown by `model inspect`).
    public var provenance: JSONValue?
    public var training: JSONValue?
    public var selftest: SelfTest

    public struct Layer: Sendable, Equatable, Codable {
        /// "conv" (standard, first layer), "depthwise" or "pointwise".
        public var op: String
        public var kernel: Int?
        public var stride: Int?
        public var filters: Int?
    }

    public struct Architecture: Sendable, Equatable, Codable {
        public var type: String
        public var activation: String
        public var padding: String
        public var layers: [Layer]
        public var embeddingDim: Int
        public var nClasses: Int
        public var inputClip: [Float]?
    }

    public struct Features: Sendable, Equatable, Codable {
        public var type: String
        public var sampleRate: Int
        public var windowLength: Int
        public var hopLength: Int
        public var nFft: Int
        public var nMels: Int
        public var fmin: Double
        public var fmax: Double
        public var window: String
        public var magnitude: Bool
        public var melHtk: Bool
        public var logOffset: Double
        public var patchFrames: Int
        public var patchHopFrames: Int
    }

    public struct SelfTest: Sendable, Equatable, Codable {
        public var inputTensor: String
        public var expected: [Double]
        public var embeddingTensor: String
        public var tolerance: Double
    }

    /// The front end these features describe, clipped to the body's input range.
    public var frontEnd: PatchLogMelParameters {
        let f = features
        let clip = architecture.inputClip.map { $0[0]...$0[1] } ?? (-Float.infinity...Float.infinity)
        return PatchLogMelParameters(sampleRate: f.sampleRate, windowLength: f.windowLength, hopLength: f.hopLength,
                                     nFFT: f.nFft, nMels: f.nMels, fmin: f.fmin, fmax: f.fmax, logOffset: f.logOffset,
                                     patchFrames: f.patchFrames, patchHopFrames: f.patchHopFrames, clip: clip)
    }

    public func validate() throws(ModelError) {
        func bad(_ key: String, _ why: String) -> ModelError { .invalidMetadata(key: key, reason: why) }
        guard format == ModelMetadata.formatName else { throw bad("format", "expected \"\(ModelMetadata.formatName)\", got \"\(format)\"") }
        guard formatVersion == ModelMetadata.supportedFormatVersion else { throw bad("format_version", "version \(formatVersion) is not supported") }
        guard task == "audioset" else { throw bad("task", "a YAMNet body has task \"audioset\", got \"\(task)\"") }
        let a = architecture
        guard a.type == "yamnet" else { throw bad("architecture.type", "expected \"yamnet\", got \"\(a.type)\"") }
        guard a.activation == "relu6" else { throw bad("architecture.activation", "only \"relu6\" is supported, got \"\(a.activation)\"") }
        guard a.padding == "same" else { throw bad("architecture.padding", "only \"same\" is supported, got \"\(a.padding)\"") }
        guard (1...64).contains(a.layers.count) else { throw bad("architecture.layers", "need 1...64 layers, got \(a.layers.count)") }
        guard (1...8192).contains(a.embeddingDim) else { throw bad("architecture.embedding_dim", "must be in 1...8192") }
        guard (1...10_000).contains(a.nClasses) else { throw bad("architecture.n_classes", "must be in 1...10000") }
        if let c = a.inputClip {
            guard c.count == 2, c[0].isFinite, c[1].isFinite, c[0] < c[1] else { throw bad("architecture.input_clip", "must be [low, high] with low < high") }
        }
        var channels = 1
        for (i, l) in a.layers.enumerated() {
            let key = "architecture.layers[\(i)]"
            switch l.op {
            case "conv":
                guard i == 0, let k = l.kernel, let s = l.stride, let f = l.filters, (1...7).contains(k), (1...4).contains(s), (1...4096).contains(f) else {
                    throw bad(key, "a conv layer comes first, with kernel 1...7, stride 1...4 and 1...4096 filters")
                }
                channels = f
            case "depthwise":
                guard i > 0, let k = l.kernel, let s = l.stride, (1...7).contains(k), (1...4).contains(s) else {
                    throw bad(key, "a depthwise layer needs kernel 1...7 and stride 1...4 (and follows the conv)")
                }
            case "pointwise":
                guard i > 0, let f = l.filters, (1...4096).contains(f) else { throw bad(key, "a pointwise layer needs 1...4096 filters") }
                channels = f
            default:
                throw bad(key + ".op", "must be \"conv\", \"depthwise\" or \"pointwise\", got \"\(l.op)\"")
            }
        }
        guard channels == a.embeddingDim else { throw bad("architecture.embedding_dim", "\(a.embeddingDim) differs from the last layer's \(channels) channels") }
        guard labels.count == a.nClasses else { throw bad("labels", "\(labels.count) labels for \(a.nClasses) classes") }
        guard labels.allSatisfy({ !$0.isEmpty }) else { throw bad("labels", "labels must be non-empty") }
        if let mids = classMids, mids.count != a.nClasses { throw bad("class_mids", "\(mids.count) ids for \(a.nClasses) classes") }
        let f = features
        func feat(_ key: String, _ ok: Bool, _ why: String) throws(ModelError) {
            if !ok { throw ModelError.unsupportedFeatures(key: key, reason: why) }
        }
        try feat("type", f.type == "yamnet_logmel", "expected \"yamnet_logmel\", got \"\(f.type)\"")
        try feat("window", f.window == "hann_periodic", "only \"hann_periodic\" is computed, got \"\(f.window)\"")
        try feat("magnitude", f.magnitude, "only a magnitude spectrogram is computed")
        try feat("mel_htk", f.melHtk, "only the HTK mel scale is computed for this front end")
        do { try frontEnd.validate() } catch {
            switch error { case let .invalid(key, reason): throw ModelError.unsupportedFeatures(key: key, reason: reason) }
        }
        guard selftest.inputTensor == "selftest.input" else { throw bad("selftest.input_tensor", "must be \"selftest.input\"") }
        guard selftest.embeddingTensor == "selftest.embedding" else { throw bad("selftest.embedding_tensor", "must be \"selftest.embedding\"") }
        guard selftest.expected.count == a.nClasses, selftest.expected.allSatisfy({ $0.isFinite && $0 >= 0 && $0 <= 1 }) else {
            throw bad("selftest.expected", "need \(a.nClasses) scores in [0, 1]")
        }
        guard selftest.tolerance.isFinite, selftest.tolerance > 0, selftest.tolerance <= 0.05 else {
            throw bad("selftest.tolerance", "must be in (0, 0.05], got \(selftest.tolerance)")
        }
    }
}
