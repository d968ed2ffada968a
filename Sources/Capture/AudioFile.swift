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

    /// Sample rates a file may have: libsamplerate converts within a factor of 256, and a header claiming
    /// 1 Hz or 10 MHz is a broken file, not audio (found by deploy/fuzz.sh: it stopped the process).
    public static let supportedRates = 1_000...768_000

    static func unsupportedRate(_ rate: Int) -> String { "sample rate \(rate) Hz is outside \(supportedRates.lowerBound)...\(supportedRates.upperBound) Hz" }

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
        guard supportedRates.contains(Int(sfInfo.samplerate)) else { throw .cannotReadFile(path: path, reason: unsupportedRate(Int(sfInfo.samplerate))) }
        guard frames < 16_000 * 60 * 60 * 4 else { throw .cannotReadFile(path: path, reason: "longer than 4 hours") }
        var interleaved = [Float](repeating: 0, count: frames * channels)
        let got = interleaved.withUnsafeMutableBufferPointer { sf_readf_float(file, $0.baseAddress, sf_count_t(frames)) }
        let n = Int(max(0, got))
        return (downmix(interleaved, frames: n, channels: channels), Info(sampleRate: Int(sfInfo.samplerate), channels: channels, frames: n))
    }

    /// The first `frames` frames of interleaved audio as mono (channels averaged).
    static func downmix(_ interleaved: [Float], frames: Int, channels: Int) -> [Float] {
        if channels == 1 { return Array(interleaved[0..<frames]) }
        var mono = [Float](repeating: 0, count: frames)
        let scale = 1 / Float(channels)
        for i in 0..<frames {
            var acc: Float = 0
            for c in 0..<channels { acc += interleaved[i * channels + c] }
            mono[i] = acc * scale
        }
        return mono
    }
}

/// Decodes a file block by block (channels averaged, resampled to `targetRate` with a streaming filter), so a
/// long recording costs a block of memory instead of the whole decoded signal.
public final class AudioFileReader {
    public let path: String
    public let info: AudioFile.Info
    public let targetRate: Int
    private let file: OpaquePointer
    private let resampler: Resampler?
    private var interleaved: [Float] = []
    private var finished = false

    public init(path: String, targetRate: Int = 16_000) throws(CaptureError) {
        var sfInfo = SF_INFO()
        guard let file = sf_open(path, Int32(SFM_READ), &sfInfo) else {
            let reason = String(cString: sf_strerror(nil))
            throw .cannotReadFile(path: path, reason: FileManager.default.fileExists(atPath: path) ? reason : "no such file")
        }
        guard sfInfo.channels > 0, sfInfo.samplerate > 0 else {
            sf_close(file)
            throw .cannotReadFile(path: path, reason: "no audio channels")
        }
        guard AudioFile.supportedRates.contains(Int(sfInfo.samplerate)) else {
            sf_close(file)
            throw .cannotReadFile(path: path, reason: AudioFile.unsupportedRate(Int(sfInfo.samplerate)))
        }
        self.path = path
        self.file = file
        self.targetRate = targetRate
        info = AudioFile.Info(sampleRate: Int(sfInfo.samplerate), channels: Int(sfInfo.channels), frames: Int(sfInfo.frames))
        resampler = info.sampleRate == targetRate ? nil : Resampler(from: info.sampleRate, to: targetRate)
    }

    deinit { sf_close(file) }

    /// The next samples at `targetRate` from up to `frames` file frames; nil once the file is exhausted.
    /// (Resampled blocks vary in length by a sample or so; the last one flushes the filter.)
    public func next(frames: Int = 16_000) -> [Float]? {
        guard !finished else { return nil }
        precondition(frames > 0)
        let channels = info.channels
        if interleaved.count < frames * channels { interleaved = [Float](repeating: 0, count: frames * channels) }
        let got = Int(max(0, interleaved.withUnsafeMutableBufferPointer { sf_readf_float(file, $0.baseAddress, sf_count_t(frames)) }))
        let mono = AudioFile.downmix(interleaved, frames: got, channels: channels)
        let end = got < frames
        if end { finished = true }
        guard let resampler else { return got == 0 && end ? nil : mono }
        let out = resampler.process(mono, endOfInput: end)
        return out.isEmpty && end ? nil : out
    }
}

/// An `AudioSource` over a file: the same messages as a microphone, for `classify`, `detect`, tests and
/// the demo. Optionally paced to real time, so a recording behaves like a live device.
public struct FileAudioSource: AudioSource {
    public let path: String
    public let chunkSize: Int
    public let realTime: Bool

    public init(path: String, chunkSize: Int = 512, realTime: Bool = false) {
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
                let reader: AudioFileReader
                do {
                    reader = try AudioFileReader(path: path)
                    continuation.yield(.opened(device: "file:\(path)", rate: reader.info.sampleRate, channels: reader.info.channels, format: "file"))
                } catch {
                    continuation.yield(.unavailable(device: "file:\(path)", reason: "\(error)", retryIn: 0))
                    continuation.finish()
                    return
                }
                let start = Date()
                let clock = ContinuousClock(), t0 = clock.now
                var index = 0
                // Re-chunk the decoder's blocks into exactly `chunkSize` samples (the last chunk may be shorter);
                // `used` counts the samples of `pending` already sent, trimmed only when a block is appended.
                var pending: [Float] = [], used = 0, exhausted = false
                while !Task.isCancelled {
                    while pending.count - used < chunkSize, !exhausted {
                        if let block = reader.next(frames: max(chunkSize, 4096)) {
                            pending.removeFirst(used)
                            used = 0
                            pending += block
                        } else {
                            exhausted = true
                        }
                    }
                    let take = min(chunkSize, pending.count - used)
                    if take == 0 { break }
                    let end = index + take
                    if realTime {
                        try? await clock.sleep(until: t0 + .seconds(Double(end) / 16_000))
                    }
                    continuation.yield(.audio(AudioChunk(samples: Array(pending[used..<used + take]), startIndex: Int64(index),
                                                         timestamp: start.addingTimeInterval(Double(index) / 16_000))))
                    used += take
                    index = end
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
