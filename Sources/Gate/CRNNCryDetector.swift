import Features
import Inference

/// The from-scratch CRNN detector on the reason model's log-mel frames: a window of `window.frames`
/// frames every `analysis_hop_s`.
final class CRNNCryDetector: CryDetector {
    let model: ModelBundle
    private let engine: CRNNEngine
    private let cryIndex: Int
    private let parameters: LogMelParameters
    private var hopFrames: Int
    private var framesSinceAnalysis = 0
    private var probs: [Float]

    init(model: ModelBundle, settings: GateSettings) throws {
        guard let cryIndex = model.labels.firstIndex(of: "cry") else {
            throw GateError.incompatibleModels("cry model has no \"cry\" label (labels: \(model.labels))")
        }
        self.model = model
        self.cryIndex = cryIndex
        parameters = model.metadata.features.logMelParameters
        engine = CRNNEngine(model: model, maxFrames: model.metadata.window.frames)
        hopFrames = Self.hopFrames(settings, parameters)
        probs = [Float](repeating: 0, count: model.labels.count)
    }

    static func hopFrames(_ s: GateSettings, _ p: LogMelParameters) -> Int {
        max(1, Int((s.analysisHopSeconds * Double(p.sampleRate) / Double(p.hopLength)).rounded()))
    }

    var windowFrames: Int { model.metadata.window.frames }
    var windowSeconds: Double { Double(windowFrames * parameters.hopLength) / Double(parameters.sampleRate) }
    var usesReasonFrames: Bool { true }

    func append(_ samples: UnsafeBufferPointer<Float>, startSample: Int64) -> [Double] { [] }

    func reasonFrameAppended(totalFrames: Int) -> Bool {
        framesSinceAnalysis += 1
        guard framesSinceAnalysis >= hopFrames else { return false }
        framesSinceAnalysis = 0
        return true
    }

    func finish() -> Double? { nil }

    func score(end: Double, recent: UnsafeBufferPointer<Float>, recentFrames: Int, limitFrames: Int?) -> (probability: Double, seconds: Double)? {
        let frames = min(limitFrames ?? windowFrames, recentFrames, windowFrames)
        guard frames >= engine.minFrames else { return nil }
        let nMels = parameters.nMels
        let slice = UnsafeBufferPointer(rebasing: recent[(recentFrames - frames) * nMels..<recentFrames * nMels])
        probs.withUnsafeMutableBufferPointer { out in try? engine.probabilities(features: slice, frames: frames, into: out) }
        return (Double(probs[cryIndex]), Double(frames * parameters.hopLength) / Double(parameters.sampleRate))
    }

    func update(settings: GateSettings) { hopFrames = Self.hopFrames(settings, parameters) }

    var lastEmbedding: [Float]? { nil }
}
