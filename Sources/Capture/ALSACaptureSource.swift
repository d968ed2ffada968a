import CALSA
import Foundation
import Logging
import Synchronization

/// Live capture from an ALSA PCM, as a stream of 16 kHz mono chunks.
///
/// A dedicated thread blocks in `snd_pcm_readi` (never the cooperative pool). Overruns are recovered in
/// place; a device that fails to open or disappears is reopened with capped exponential backoff, and every
/// such event is counted, logged and sent downstream, so a node without its microphone says so instead of
/// going quiet.
public struct ALSACaptureSource: AudioSource {
    public struct Configuration: Sendable {
        /// PCM name, e.g. `default`, `plughw:1,0`, or a PCM defined in an ALSA config.
        public var device: String
        /// Samples per emitted chunk at 16 kHz.
        public var chunkSize: Int
        /// Period to ask the device for, in frames at `preferredRate` (scaled to the rate the device grants,
        /// so its duration stays as asked). Equal to `chunkSize` by default: one wake-up per chunk.
        public var periodFrames: Int
        /// Rate to ask the device for. 16 kHz unless a device is known to misbehave at it; whatever the
        /// device grants is resampled to 16 kHz.
        public var preferredRate: Int
        /// Sleep so delivery never runs ahead of the wall clock: for the ALSA `file`/`null` plugins,
        /// which hand out audio as fast as it is read.
        public var realTime: Bool
        public var backoff: Backoff
        /// Give up after this many consecutive failed opens (nil: never; a node keeps trying).
        public var maxOpenAttempts: Int?
        /// Chunks buffered for a slow consumer; beyond this new audio is dropped, counted and logged.
        public var queueChunks: Int

        public init(device: String = "default", chunkSize: Int = 512, periodFrames: Int? = nil, preferredRate: Int = 16_000,
                    realTime: Bool = false, backoff: Backoff = Backoff(), maxOpenAttempts: Int? = nil, queueChunks: Int = 320) {
            self.preferredRate = preferredRate
            self.queueChunks = queueChunks
            self.device = device
            self.chunkSize = chunkSize
            self.periodFrames = periodFrames ?? chunkSize
            self.realTime = realTime
            self.backoff = backoff
            self.maxOpenAttempts = maxOpenAttempts
        }
    }

    public let configuration: Configuration
    public let counters: CaptureCounters
    private let logger: Logger

    public init(configuration: Configuration, counters: CaptureCounters = CaptureCounters(),
                logger: Logger = Logger(label: "deepinfant.capture")) {
        self.configuration = configuration
        self.counters = counters
        self.logger = logger
    }

    public var name: String { "alsa:\(configuration.device)" }

    /// Opens and closes the device once: a clear error now (at start-up) instead of a retry loop later.
    public static func probe(device: String) throws(CaptureError) -> ALSAPCM.Negotiated {
        let pcm = try ALSAPCM(device: device)
        defer { pcm.close() }
        return pcm.negotiated
    }

    public func events() -> AsyncStream<CaptureEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: CaptureEvent.self, bufferingPolicy: .bufferingOldest(max(4, configuration.queueChunks)))
        let stop = StopFlag()
        continuation.onTermination = { _ in stop.set() }
        let loop = CaptureLoop(configuration: configuration, counters: counters, logger: logger,
                               continuation: continuation, stop: stop)
        let thread = Thread { loop.run() }
        thread.name = "alsa-capture"
        thread.stackSize = 1 << 20
        thread.start()
        return stream
    }
}

final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func set() { flag.store(true, ordering: .releasing) }
    var isSet: Bool { flag.load(ordering: .acquiring) }
}

/// The body of the capture thread. Owns the PCM and all buffers; only `StopFlag`, the counters and the
/// continuation are shared, and all three are thread-safe.
private final class CaptureLoop: @unchecked Sendable {
    let configuration: ALSACaptureSource.Configuration
    let counters: CaptureCounters
    let logger: Logger
    let continuation: AsyncStream<CaptureEvent>.Continuation
    let stop: StopFlag

    init(configuration: ALSACaptureSource.Configuration, counters: CaptureCounters, logger: Logger,
         continuation: AsyncStream<CaptureEvent>.Continuation, stop: StopFlag) {
        self.configuration = configuration
        self.counters = counters
        self.logger = logger
        self.continuation = continuation
        self.stop = stop
    }

    func run() {
        let device = configuration.device
        var backoff = configuration.backoff
        var failures = 0
        var nextIndex: Int64 = 0
        let started = Date()
        var pending: [Float] = []
        pending.reserveCapacity(configuration.chunkSize * 4)
        var dropped: Int64 = 0

        while !stop.isSet {
            let pcm: ALSAPCM
            do {
                pcm = try ALSAPCM(device: device, rate: configuration.preferredRate, periodFrames: configuration.periodFrames)
            } catch {
                failures += 1
                counters.update { $0.openFailures += 1; $0.available = false }
                if let max = configuration.maxOpenAttempts, failures >= max {
                    logger.error("giving up on audio device", metadata: ["device": "\(device)", "error": "\(error)"])
                    continuation.yield(.unavailable(device: device, reason: error.description, retryIn: -1))
                    break
                }
                let delay = backoff.next()
                logger.warning("audio device unavailable, retrying", metadata: ["device": "\(device)", "error": "\(error)", "retry_in_s": "\(delay)"])
                continuation.yield(.unavailable(device: device, reason: error.description, retryIn: delay))
                sleep(seconds: delay)
                continue
            }
            failures = 0
            backoff.reset()
            let n = pcm.negotiated
            counters.update { $0.opens += 1; $0.available = true }
            logger.info("audio device open", metadata: ["device": "\(device)", "rate": "\(n.rate)", "channels": "\(n.channels)", "format": "\(n.format.rawValue)"])
            continuation.yield(.opened(device: device, rate: n.rate, channels: n.channels, format: n.format.rawValue))
            let resampler = n.rate == 16_000 ? nil : Resampler(from: n.rate)
            var raw: [Float] = []
            raw.reserveCapacity(n.periodFrames)
            let clock = ContinuousClock(), t0 = clock.now
            var deliveredThisOpen: Int64 = 0

            reading: while !stop.isSet {
                raw.removeAll(keepingCapacity: true)
                let got = pcm.read(into: &raw)
                if got < 0 {
                    switch pcm.recover(from: got) {
                    case .retry:
                        continue
                    case .recovered:
                        let total = { var t = 0; counters.update { $0.overruns += 1; t = $0.overruns }; return t }()
                        logger.warning("audio overrun recovered", metadata: ["device": "\(device)", "overruns": "\(total)"])
                        continuation.yield(.overrun(total: total))
                        continue
                    case let .reopen(reason):
                        counters.update { $0.deviceLosses += 1; $0.available = false }
                        logger.error("audio device lost", metadata: ["device": "\(device)", "error": "\(reason)"])
                        let delay = backoff.next()
                        continuation.yield(.unavailable(device: device, reason: reason, retryIn: delay))
                        pcm.close()
                        sleep(seconds: delay)
                        break reading
                    }
                }
                if got == 0 { continue }
                if let resampler { pending.append(contentsOf: resampler.process(raw)) } else { pending.append(contentsOf: raw) }
                while pending.count >= configuration.chunkSize {
                    let chunk = Array(pending[0..<configuration.chunkSize])
                    pending.removeFirst(configuration.chunkSize)
                    if configuration.realTime {
                        let due = t0 + .seconds(Double(deliveredThisOpen + Int64(chunk.count)) / 16_000)
                        let wait = clock.now.duration(to: due)
                        if wait > .zero { Thread.sleep(forTimeInterval: Double(wait.components.seconds) + Double(wait.components.attoseconds) * 1e-18) }
                    }
                    let message = AudioChunk(samples: chunk, startIndex: nextIndex,
                                             timestamp: started.addingTimeInterval(Double(nextIndex) / 16_000))
                    if case .dropped = continuation.yield(.audio(message)) {
                        dropped += 1
                        counters.update { $0.droppedChunks += 1 }
                        if dropped == 1 || dropped % 100 == 0 {
                            logger.warning("consumer behind: audio chunk dropped", metadata: ["dropped": "\(dropped)"])
                        }
                    }
                    nextIndex += Int64(chunk.count)
                    deliveredThisOpen += Int64(chunk.count)
                    counters.update { $0.samplesDelivered += Int64(chunk.count) }
                    if stop.isSet { break reading }
                }
            }
            pcm.close()
        }
        continuation.finish()
    }

    /// Sleeps in short steps so a stop request is honoured within ~50 ms.
    private func sleep(seconds: Double) {
        let end = Date().addingTimeInterval(seconds)
        while !stop.isSet, Date() < end { Thread.sleep(forTimeInterval: min(0.05, max(0, end.timeIntervalSinceNow))) }
    }
}
