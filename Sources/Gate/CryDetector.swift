import Features
import Inference

/// The seam between the gate and its stage-2 cry detector: where the detector's analysis points fall in
/// the stream and how the window ending at one is scored. The gate owns everything else (activity,
/// the reason front end and model, episodes), so a new detector is one type conforming to this.
protocol CryDetector: AnyObject {
    /// Seconds of audio one full analysis window covers.
    var windowSeconds: Double { get }
    /// The CRNN detector reads the reason front end's frames (one front end for both models).
    var usesReasonFrames: Bool { get }
    /// New audio for the detector's own front end; returns the stream times (s) at which analysis
    /// windows end inside it, oldest first.
    func append(_ samples: UnsafeBufferPointer<Float>, startSample: Int64) -> [Double]
    /// One frame of the reason front end was appended (`totalFrames` so far); returns true when an
    /// analysis point falls on it.
    func reasonFrameAppended(totalFrames: Int) -> Bool
    /// At the end of the input: the end time of a last window that silence after it would complete.
    func finish() -> Double?
    /// Scores the window ending at the latest point. `recent`: the reason front end's latest frames.
    /// Returns the cry probability and the seconds of audio scored, or nil when too little audio.
    func score(end: Double, recent: UnsafeBufferPointer<Float>, recentFrames: Int, limitFrames: Int?) -> (probability: Double, seconds: Double)?
    /// Settings changed remotely.
    func update(settings: GateSettings)
    /// The embedding of the window scored last (YAMNet), nil for a detector without one (the CRNN).
    var lastEmbedding: [Float]? { get }
}
