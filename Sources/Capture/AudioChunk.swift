import Foundation

/// A block of mono audio at the pipeline rate (16 kHz), the message the capture stage sends downstream.
public struct AudioChunk: Sendable, Equatable {
    /// Samples in [-1, 1].
    public var samples: [Float]
    /// Index of the first sample since the source started (at `sampleRate`): downstream stages compute
    /// times from it, so a gap (device lost, overrun) shows as a jump rather than as silent drift.
    public var startIndex: Int64
    public var sampleRate: Int
    /// Wall-clock time of the first sample, as estimated by the source.
    public var timestamp: Date

    public init(samples: [Float], startIndex: Int64, sampleRate: Int = 16_000, timestamp: Date = Date()) {
        self.samples = samples
        self.startIndex = startIndex
        self.sampleRate = sampleRate
        self.timestamp = timestamp
    }

    public var duration: Double { Double(samples.count) / Double(sampleRate) }
}

/// What a capture source reports: audio, and the device events an operator wants to see counted.
public enum CaptureEvent: Sendable, Equatable {
    case audio(AudioChunk)
    /// The device is open and delivering (first open or after a reopen). `rate` is what the device gives
    /// before software resampling.
    case opened(device: String, rate: Int, channels: Int, format: String)
    /// The device could not be opened or was lost; the source retries after `retryIn` seconds.
    case unavailable(device: String, reason: String, retryIn: Double)
    /// An overrun (xrun) was recovered; `total` counts them since start.
    case overrun(total: Int)
}

/// A source of 16 kHz mono audio. ALSA devices and audio files implement it, so the pipeline and its
/// tests run the same code on both.
public protocol AudioSource: Sendable {
    /// A human-readable name (device or file) for logs and `info`.
    var name: String { get }
    /// Starts capturing. The stream finishes at end of input (files) or when the consumer stops
    /// listening; cancelling the consuming task stops the source.
    func events() -> AsyncStream<CaptureEvent>
}
