import Foundation

/// Classifies a whole recording's features by sliding windows.
///
/// The rule (docs/model-format.md, "Streaming and long recordings"):
/// * Windows are `window.frames` long and start every `window.hop_frames` frames from frame 0, as long
///   as they fit. When the last such window ends before the recording does, one more window aligned to
///   the recording's end is added, so no trailing frames are ignored.
/// * A recording shorter than one window is analysed as a single shorter window (all its frames); one
///   shorter than the conv stack's minimum (`2^blocks` frames, 8 for three blocks ≈ 0.26 s) is refused.
/// * The recording's probabilities are `softmax(mean over windows of log p)` (`mean_log_prob`): a
///   geometric-mean pooling, so one confident window cannot outvote many, and a class any window rules
///   out is pushed down strongly.
///
/// Holds a `CRNNEngine` and a few buffers, so like the engine it is used from one task at a time.
public final class RecordingClassifier {
    public let engine: CRNNEngine
    private var logSum: [Float]
    private var window: [Float]

    public init(engine: CRNNEngine) {
        self.engine = engine
        logSum = [Float](repeating: 0, count: engine.classCount)
        window = [Float](repeating: 0, count: engine.classCount)
    }

    /// Convenience: a classifier with its own engine for `model`.
    public convenience init(model: ModelBundle, backend: MatMulBackend = .openBLAS) {
        self.init(engine: CRNNEngine(model: model, maxFrames: model.metadata.window.frames, backend: backend))
    }

    public struct Result: Sendable, Equatable {
        /// The most probable label.
        public var label: String
        /// Its probability.
        public var confidence: Float
        /// Probabilities in `labels` order.
        public var probabilities: [Float]
        public var labels: [String]
        /// How many windows were averaged.
        public var windows: Int
        /// Frames analysed.
        public var frames: Int
    }

    /// Start frames of the analysis windows for a recording of `frames` frames (see the type's rule).
    public static func windowStarts(frames: Int, window: Int, hop: Int) -> [Int] {
        guard frames > window else { return [0] }
        var starts = Array(stride(from: 0, through: frames - window, by: hop))
        if let last = starts.last, last + window < frames { starts.append(frames - window) }
        return starts
    }

    /// Classifies `[frames][n_mels]` raw log-mel dB features.
    public func classify(features: [Float], nMels: Int) throws(InferenceError) -> Result {
        let meta = engine.model.metadata
        guard nMels == meta.architecture.nMels else { throw .melMismatch(expected: meta.architecture.nMels, actual: nMels) }
        let frames = nMels > 0 ? features.count / nMels : 0
        let w = meta.window.frames
        let starts = Self.windowStarts(frames: frames, window: w, hop: meta.window.hopFrames)
        let k = engine.classCount
        for i in 0..<k { logSum[i] = 0 }
        try features.withUnsafeBufferPointer { (all: UnsafeBufferPointer<Float>) throws(InferenceError) in
            for s in starts {
                let len = min(w, frames - s)
                let slice = UnsafeBufferPointer(rebasing: all[(s * nMels)..<((s + len) * nMels)])
                try window.withUnsafeMutableBufferPointer { (out: inout UnsafeMutableBufferPointer<Float>) throws(InferenceError) in
                    try engine.logProbabilities(features: slice, frames: len, into: out)
                }
                for i in 0..<k { logSum[i] += window[i] }
            }
        }
        let mean = logSum.map { $0 / Float(starts.count) }
        let p = Softmax.probabilities(mean)
        let best = p.indices.max { p[$0] < p[$1] } ?? 0
        return Result(label: meta.labels[best], confidence: p[best], probabilities: p, labels: meta.labels,
                      windows: starts.count, frames: frames)
    }
}
