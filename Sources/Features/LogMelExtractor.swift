import Foundation

/// Streaming log-mel extractor: feed samples in chunks of any size, get the frames that are complete.
///
/// Frames are exactly those of librosa's `melspectrogram(center=True, pad_mode="constant")` followed by
/// `power_to_db(ref, amin, top_db=None)`: frame t is centred on sample t·hop, with zeros before the first
/// sample and (after `finish()`) after the last. Memory stays bounded: only the last n_fft samples are kept,
/// and all buffers are allocated once, so a long-running node does not grow.
public final class LogMelExtractor {
    public let parameters: LogMelParameters
    private let fft: RealFFT
    private let window: [Double]
    private let filterbank: MelFilterbank
    private let power: UnsafeMutablePointer<Double>
    private let melPower: UnsafeMutablePointer<Double>
    private let dbOffset: Float
    private let amin: Float

    /// Samples not yet consumed, starting at absolute padded index `bufferStart` (padded index =
    /// sample index + n_fft/2). Capacity is reserved up front; appends shift rather than grow.
    private var buffer: [Float]
    private var bufferStart = 0
    /// Padded-signal length seen so far (n_fft/2 leading zeros included).
    private var paddedCount: Int
    private var nextFrame = 0
    private var samplesSeen = 0
    private var finished = false

    public init(parameters: LogMelParameters) throws(FeatureParameterError) {
        try parameters.validate()
        self.parameters = parameters
        fft = RealFFT(size: parameters.nFFT)
        window = HannWindow.periodic(count: parameters.nFFT)
        filterbank = MelFilterbank(parameters: parameters)
        power = .allocate(capacity: parameters.nBins)
        power.initialize(repeating: 0, count: parameters.nBins)
        melPower = .allocate(capacity: parameters.nMels)
        melPower.initialize(repeating: 0, count: parameters.nMels)
        amin = Float(parameters.dbAmin)
        dbOffset = Float(10 * log10(max(parameters.dbAmin, parameters.dbRef)))
        buffer = []
        buffer.reserveCapacity(4 * parameters.nFFT)
        buffer.append(contentsOf: repeatElement(0, count: parameters.nFFT / 2))
        paddedCount = parameters.nFFT / 2
    }

    deinit {
        power.deallocate()
        melPower.deallocate()
    }

    /// Frames produced so far.
    public var framesEmitted: Int { nextFrame }

    /// Samples held for frames not yet complete (below 2·n_fft + hop): the extractor's whole memory of
    /// the stream.
    public var bufferedSamples: Int { buffer.count }

    /// Forgets all audio: the next sample is treated as the start of a new recording.
    public func reset() {
        buffer.removeAll(keepingCapacity: true)
        buffer.append(contentsOf: repeatElement(0, count: parameters.nFFT / 2))
        bufferStart = 0
        paddedCount = parameters.nFFT / 2
        nextFrame = 0
        samplesSeen = 0
        finished = false
    }

    /// Appends samples and returns the frames that became complete, `[frames, nMels]`.
    public func process<C: Collection>(_ samples: C) -> FeatureMatrix where C.Element == Float {
        var out = FeatureMatrix(nMels: parameters.nMels)
        process(samples, into: &out)
        return out
    }

    /// Appends samples and appends the frames that became complete to `out`.
    public func process<C: Collection>(_ samples: C, into out: inout FeatureMatrix) where C.Element == Float {
        let done: Void? = samples.withContiguousStorageIfAvailable { process($0, into: &out) }
        if done == nil { Array(samples).withUnsafeBufferPointer { process($0, into: &out) } }
    }

    /// The non-generic core (generic code across module boundaries is not specialised and paid for
    /// metadata look-ups on every call).
    public func process(_ samples: UnsafeBufferPointer<Float>, into out: inout FeatureMatrix) {
        precondition(!finished, "process after finish; call reset() first")
        let hop = parameters.hopLength, n = parameters.nFFT
        var position = 0
        while position < samples.count {
            // Take only as much as the next frame needs, so the buffer stays within n_fft + hop samples.
            let needed = max(1, nextFrame * hop + n - paddedCount)
            let take = min(needed, samples.count - position)
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: samples[position..<(position + take)]))
            paddedCount += take
            samplesSeen += take
            position += take
            emitReadyFrames(into: &out)
        }
    }

    /// Ends the recording: pads with zeros as librosa does and returns the remaining frames. Total frames
    /// over the whole stream = 1 + samples / hop.
    public func finish() -> FeatureMatrix {
        var out = FeatureMatrix(nMels: parameters.nMels)
        finish(into: &out)
        return out
    }

    public func finish(into out: inout FeatureMatrix) {
        guard !finished else { return }
        finished = true
        let total = parameters.frameCount(forSamples: samplesSeen)
        let hop = parameters.hopLength, n = parameters.nFFT
        while nextFrame < total {
            let end = nextFrame * hop + n
            if paddedCount < end {
                buffer.append(contentsOf: repeatElement(0, count: end - paddedCount))
                paddedCount = end
            }
            emitReadyFrames(into: &out)
        }
    }

    /// Batch mode: the whole recording at once (same frames as streaming plus `finish`).
    public func compute<C: Collection>(_ samples: C) -> FeatureMatrix where C.Element == Float {
        reset()
        var out = FeatureMatrix(nMels: parameters.nMels)
        out.values.reserveCapacity(parameters.frameCount(forSamples: samples.count) * parameters.nMels)
        process(samples, into: &out)
        finish(into: &out)
        return out
    }

    private func emitReadyFrames(into out: inout FeatureMatrix) {
        let hop = parameters.hopLength, n = parameters.nFFT, nMels = parameters.nMels
        while nextFrame * hop + n <= paddedCount {
            let offset = nextFrame * hop - bufferStart
            let input = fft.input
            buffer.withUnsafeBufferPointer { b in
                window.withUnsafeBufferPointer { w in
                    let src = b.baseAddress! + offset
                    for i in 0..<n { input[i] = Double(src[i]) * w[i] }
                }
            }
            fft.powerSpectrum(into: power)
            filterbank.apply(power, into: melPower)
            let base = out.values.count
            out.values.append(contentsOf: repeatElement(0, count: nMels))
            out.values.withUnsafeMutableBufferPointer { dst in
                for m in 0..<nMels {
                    // librosa rounds S to float32 before power_to_db.
                    dst[base + m] = 10 * log10f(max(amin, Float(melPower[m]))) - dbOffset
                }
            }
            nextFrame += 1
            // Drop samples no later frame needs, in batches of at least n_fft (one memmove per
            // several frames instead of one per frame).
            let keepFrom = nextFrame * hop - bufferStart
            if keepFrom >= n {
                let drop = min(keepFrom, buffer.count)
                buffer.removeFirst(drop)
                bufferStart += drop
            }
        }
    }
}

/// The periodic Hann window (`scipy.signal.get_window("hann", n, fftbins=True)`), librosa's default.
public enum HannWindow {
    public static func periodic(count n: Int) -> [Double] {
        (0..<n).map { 0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(n)) }
    }
}

/// Batch-oriented name for the same extractor: `try LogMelSpectrogram(parameters: p).compute(samples)`.
public typealias LogMelSpectrogram = LogMelExtractor
