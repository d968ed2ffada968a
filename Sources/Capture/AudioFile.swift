import CSndfile
import Foundation

/// Reads audio files (WAV, FLAC, OGG, … whatever libsndfile supports) as 16 kHz mono float samples:
/// channels are averaged and other rates resampled with a band-limited filter.
public enum AudioFile {
    public struct Info: Sendable, Equatable {
        public var sampleRate: Int
        public var channels: Int
        public var frames: Int
    }

    /// Samples at `targetRate`, mono, in [-1, 1] (16-bit PCM decodes to x / 32768, as Python's soundfile).
    public static func read(path: String, targetRate: Int = 16_000) throws(CaptureError) -> [Float] {
        let (samples, info) = try readNative(path: path)
        return Resampler.convert(samples, from: info.sampleRate, to: targetRate)
    }

    /// Samples at the file's own rate, channels averaged to mono.
    public static func readNative(path: String) throws(CaptureError) -> ([Float], Info) {
        var sfInfo = SF_INFO()
        guard let file = sf_open(path, Int32(SFM_READ), &sfInfo) else {
            let reason = String(cString: sf_strerror(nil))
            throw .cannotReadFile(path: path, reason: FileManager.default.fileExists(atPath: path) ? reason : "no such file")
        }
        defer { sf_close(file) }
        let channels = Int(sfInfo.channels), frames = Int(sfInfo.frames)
        guard channels > 0, sfInfo.samplerate > 0 else { throw .cannotReadFile(path: path, reason: "no audio channels") }
        guard frames < 16_000 * 60 * 60 * 4 else { throw .cannotReadFile(path: path, reason: "longer than 4 hours") }
        var interleaved = [Float](repeating: 0, count: frames * channels)
        let got = interleaved.withUnsafeMutableBufferPointer { sf_readf_float(file, $0.baseAddress, sf_count_t(frames)) }
        let n = Int(max(0, got))
        var mono = [Float](repeating: 0, count: n)
        if channels == 1 {
            mono.withUnsafeMutableBufferPointer { m in for i in 0..<n { m[i] = interleaved[i] } }
        } else {
            let scale = 1 / Float(channels)
            for i in 0..<n {
                var acc: Float = 0
                for c in 0..<channels { acc += interleaved[i * channels + c] }
                mono[i] = acc * scale
            }
        }
        return (mono, Info(sampleRate: Int(sfInfo.samplerate), channels: channels, frames: n))
    }
}

/// An `AudioSource` over a file: the same messages as a microphone, for `classify`, `detect`, tests and
/// the demo. Optionally paced to real time, so a recording behaves like a live device.
public struct FileAudioSource: AudioSource {
    public let path: String
    public let chunkSize: Int
    public let realTime: Bool

    public init(path: String, chunkSize: Int = 1600, realTime: Bool = false) {
        precondition(chunkSize > 0)
        self.path = path
        self.chunkSize = chunkSize
        self.realTime = realTime
    }

    public var name: String { "file:\(path)" }

    public func events() -> AsyncStream<CaptureEvent> {
        let path = path, chunkSize = chunkSize, realTime = realTime
        return AsyncStream(CaptureEvent.self) { continuation in
            let task = Task {
                let samples: [Float]
                do {
                    let (native, info) = try AudioFile.readNative(path: path)
                    continuation.yield(.opened(device: "file:\(path)", rate: info.sampleRate, channels: info.channels, format: "file"))
                    samples = Resampler.convert(native, from: info.sampleRate)
                } catch {
                    continuation.yield(.unavailable(device: "file:\(path)", reason: "\(error)", retryIn: 0))
                    continuation.finish()
                    return
                }
                let start = Date()
                let clock = ContinuousClock(), t0 = clock.now
                var index = 0
                while index < samples.count, !Task.isCancelled {
                    let end = min(samples.count, index + chunkSize)
                    if realTime {
                        try? await clock.sleep(until: t0 + .seconds(Double(end) / 16_000))
                    }
                    continuation.yield(.audio(AudioChunk(samples: Array(samples[index..<end]), startIndex: Int64(index),
                                                         timestamp: start.addingTimeInterval(Double(index) / 16_000))))
                    index = end
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
