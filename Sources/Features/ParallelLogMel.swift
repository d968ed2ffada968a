import Dispatch
import Foundation

/// Offline log-mel on several cores: the frames are split into contiguous ranges, each computed by its own
/// extractor on the samples its windows cover, and joined. The result is bit-identical to
/// `LogMelExtractor.compute` (each frame goes through the same arithmetic); the live path stays on one
/// thread and does not use this.
public enum ParallelLogMel {
    /// Below this many frames per range a second thread costs more than it saves.
    static let minimumFramesPerRange = 1_000

    public static func compute(_ samples: [Float], parameters: LogMelParameters, threads: Int) throws(FeatureParameterError) -> FeatureMatrix {
        let hop = parameters.hopLength, half = parameters.nFFT / 2
        let total = parameters.frameCount(forSamples: samples.count)
        let ranges = max(1, min(threads, total / minimumFramesPerRange))
        // A range that starts inside the signal must start on a frame centre of the padded slice: that needs
        // n_fft / 2 to be a whole number of hops (2048 / 512 here). Otherwise: one range.
        guard ranges > 1, half % hop == 0 else { return try LogMelExtractor(parameters: parameters).compute(samples) }
        let lead = half / hop  // frames of the slice whose windows reach into its zero padding
        let bounds = (0...ranges).map { total * $0 / ranges }
        let results = Results(count: ranges)
        DispatchQueue.concurrentPerform(iterations: ranges) { r in
            let first = bounds[r], end = bounds[r + 1]
            let start = r == 0 ? 0 : first * hop - half            // the slice's first sample
            let stop = min(samples.count, (end - 1) * hop + half)  // one past the last frame's window
            do throws(FeatureParameterError) {
                let slice = try LogMelExtractor(parameters: parameters).compute(samples[start..<stop])
                let skip = r == 0 ? 0 : lead
                let values = Array(slice.values[(skip * parameters.nMels)..<((skip + end - first) * parameters.nMels)])
                results.set(r, .success(values))
            } catch {
                results.set(r, .failure(error))
            }
        }
        var out = FeatureMatrix(nMels: parameters.nMels)
        out.values.reserveCapacity(total * parameters.nMels)
        for part in results.parts { out.values += try part!.get() }
        return out
    }
}

/// The ranges' results, written from the worker threads.
private final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Result<[Float], FeatureParameterError>?]
    init(count: Int) { storage = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<[Float], FeatureParameterError>) { lock.withLock { storage[i] = r } }
    var parts: [Result<[Float], FeatureParameterError>?] { lock.withLock { storage } }
}
