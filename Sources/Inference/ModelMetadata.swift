import Foundation

/// The `deepinfant` document in a model file's safetensors `__metadata__` (docs/model-format.md).
/// Keys are snake_case in the file; unknown keys are ignored so newer exporters can add fields.
public struct ModelMetadata: Sendable, Equatable, Codable {
    public static let formatName = "deepinfant-model"
    public static let supportedFormatVersion = 1
    /// The `__metadata__` key holding this document.
    public static let metadataKey = "deepinfant"

    public var format: String
    public var formatVersion: Int
    public var name: String
    public var version: String
    /// "reason" (cry reasons) or "cry" (cry detector).
    public var task: String
    /// Class names in output order.
    public var labels: [String]
    public var architecture: Architecture
    public var features: ModelFeatureParameters
    public var window: Window
    /// Only "mean_log_prob" (see `RecordingClassifier`).
    public var aggregation: String
    public var calibration: Calibration?
    /// Free-form training provenance (data, date, folds, metrics, …).
    public var training: JSONValue?
    public var selftest: SelfTest
    /// Cry detectors only: the decision threshold chosen on out-of-fold predictions, which the cry gate
    /// uses unless the node's config sets `gate.cry_threshold`.
    public var gate: GateRecommendation?

    public struct GateRecommendation: Sendable, Equatable, Codable {
        public var threshold: Double
    }

    public struct Architecture: Sendable, Equatable, Codable {
        public var type: String
        public var convChannels: [Int]
        public var kernel: Int
        public var pool: Int
        public var lstmHidden: Int
        public var lstmLayers: Int
        /// "mean" (mean of the last LSTM layer's outputs over time) or "last" (its final hidden state).
        public var pooling: String
        public var dense: [Int]
        public var nMels: Int
        public var nClasses: Int

        /// Frequency bins after the conv stack (each block halves, flooring).
        public var pooledMels: Int { convChannels.reduce(nMels) { f, _ in f / 2 } }
        /// The fewest input frames that leave at least one time step after pooling.
        public var minimumFrames: Int { 1 << convChannels.count }
        /// LSTM layer-0 input width: channels × pooled mel bins.
        public var lstmInput: Int { (convChannels.last ?? 0) * pooledMels }
    }

    /// How a recording is cut into analysis windows (in feature frames).
    public struct Window: Sendable, Equatable, Codable {
        public var seconds: Double
        public var hopSeconds: Double
        public var frames: Int
        public var hopFrames: Int
    }

    /// Temperature scaling, already folded into `out.weight`/`out.bias` by the exporter.
    public struct Calibration: Sendable, Equatable, Codable {
        public var method: String
        public var temperature: Double
        public var foldedInto: String?
    }

    public struct SelfTest: Sendable, Equatable, Codable {
        public var inputTensor: String
        public var expected: [Double]
        public var tolerance: Double
    }

    /// Decodes the JSON text of the `deepinfant` metadata value; errors name the dotted key path.
    public static func decode(json: String) throws(ModelError) -> ModelMetadata {
        try MetadataDecoding.decode(ModelMetadata.self, json: json)
    }

    /// The document as JSON (snake_case keys, sorted), e.g. for `model inspect --json`.
    public func jsonText(pretty: Bool = false) -> String {
        let enc = JSONEncoder()
        enc.keyEncodingStrategy = .convertToSnakeCase
        enc.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return (try? enc.encode(self)).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
    }

    /// Checks everything that does not need the tensors: format, labels, architecture limits, features,
    /// window, aggregation, calibration and self-test shape.
    public func validate() throws(ModelError) {
        guard format == Self.formatName else { throw .invalidMetadata(key: "format", reason: "expected \"\(Self.formatName)\", got \"\(format)\"") }
        guard formatVersion == Self.supportedFormatVersion else {
            throw .invalidMetadata(key: "format_version", reason: "version \(formatVersion) is not supported (this engine reads \(Self.supportedFormatVersion))")
        }
        guard task == "reason" || task == "cry" else { throw .invalidMetadata(key: "task", reason: "must be \"reason\" or \"cry\", got \"\(task)\"") }
        let a = architecture
        func arch(_ key: String, _ ok: Bool, _ why: String) throws(ModelError) {
            if !ok { throw .invalidMetadata(key: "architecture.\(key)", reason: why) }
        }
        try arch("type", a.type == "crnn", "only \"crnn\" is supported, got \"\(a.type)\"")
        try arch("kernel", a.kernel == 3, "only 3 is supported, got \(a.kernel)")
        try arch("pool", a.pool == 2, "only 2 is supported, got \(a.pool)")
        try arch("lstm_layers", a.lstmLayers == 2, "only 2 is supported, got \(a.lstmLayers)")
        try arch("pooling", a.pooling == "mean" || a.pooling == "last", "must be \"mean\" or \"last\", got \"\(a.pooling)\"")
        try arch("conv_channels", (1...6).contains(a.convChannels.count) && a.convChannels.allSatisfy { (1...1024).contains($0) },
                 "need 1 to 6 blocks of 1...1024 channels, got \(a.convChannels)")
        try arch("lstm_hidden", (1...2048).contains(a.lstmHidden), "must be in 1...2048, got \(a.lstmHidden)")
        try arch("dense", a.dense.count <= 8 && a.dense.allSatisfy { (1...8192).contains($0) }, "at most 8 layers of 1...8192 units, got \(a.dense)")
        try arch("n_mels", (1...512).contains(a.nMels) && a.pooledMels >= 1,
                 "must be in 1...512 and survive \(a.convChannels.count) halvings, got \(a.nMels)")
        try arch("n_classes", (2...1000).contains(a.nClasses), "must be in 2...1000, got \(a.nClasses)")
        guard labels.count == a.nClasses else {
            throw .invalidMetadata(key: "labels", reason: "\(labels.count) labels for \(a.nClasses) classes")
        }
        guard Set(labels).count == labels.count, labels.allSatisfy({ !$0.isEmpty }) else {
            throw .invalidMetadata(key: "labels", reason: "labels must be distinct and non-empty")
        }
        try features.validate(modelMels: a.nMels)
        let w = window
        guard (a.minimumFrames...10_000).contains(w.frames) else {
            throw .invalidMetadata(key: "window.frames", reason: "must be in \(a.minimumFrames)...10000 (the conv stack needs \(a.minimumFrames)), got \(w.frames)")
        }
        guard (1...w.frames).contains(w.hopFrames) else {
            throw .invalidMetadata(key: "window.hop_frames", reason: "must be in 1...window.frames, got \(w.hopFrames)")
        }
        let hopSec = Double(features.hopLength) / Double(features.sampleRate)
        guard w.seconds.isFinite, abs(Double(w.frames - 1) * hopSec - w.seconds) <= 1.0001 * hopSec else {
            throw .invalidMetadata(key: "window.seconds", reason: "\(w.seconds) s does not match \(w.frames) frames of hop \(features.hopLength)")
        }
        guard w.hopSeconds.isFinite, abs(Double(w.hopFrames) * hopSec - w.hopSeconds) <= 1.0001 * hopSec else {
            throw .invalidMetadata(key: "window.hop_seconds", reason: "\(w.hopSeconds) s does not match \(w.hopFrames) hop frames")
        }
        guard aggregation == "mean_log_prob" else {
            throw .invalidMetadata(key: "aggregation", reason: "only \"mean_log_prob\" is supported, got \"\(aggregation)\"")
        }
        if let c = calibration {
            guard c.method == "temperature", c.temperature.isFinite, c.temperature > 0 else {
                throw .invalidMetadata(key: "calibration", reason: "only temperature scaling with T > 0 is supported")
            }
            guard c.foldedInto == "out" else {
                throw .invalidMetadata(key: "calibration.folded_into", reason: "the temperature must be folded into \"out\" at export")
            }
        }
        guard selftest.inputTensor == "selftest.input" else {
            throw .invalidMetadata(key: "selftest.input_tensor", reason: "must be \"selftest.input\", got \"\(selftest.inputTensor)\"")
        }
        guard selftest.expected.count == a.nClasses, selftest.expected.allSatisfy({ $0.isFinite && $0 >= 0 && $0 <= 1 }) else {
            throw .invalidMetadata(key: "selftest.expected", reason: "need \(a.nClasses) probabilities in [0, 1]")
        }
        guard selftest.tolerance.isFinite, selftest.tolerance > 0, selftest.tolerance <= 0.05 else {
            throw .invalidMetadata(key: "selftest.tolerance", reason: "must be in (0, 0.05], got \(selftest.tolerance)")
        }
    }
}

