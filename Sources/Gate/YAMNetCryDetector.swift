import Features
import Inference

/// The pretrained ear: YAMNet's body on the last 0.975 s patch every `patch_hop_s` (0.48 s), and the cry
/// head on its embedding. It keeps only the raw samples of one patch (plus a chunk) and computes the
/// patch log-mel when a point is scored, so a quiet room costs a memcpy per chunk and no FFT at all.
final class YAMNetCryDetector: CryDetector {
    let body: YAMNetModel
    let head: EmbeddingHead
    private let engine: YAMNetEngine
    private let patchSamples: Int
    private var hopSamples: Int
    /// Audio `[bufferStart, bufferStart + buffer.count)` of the stream.
    private var buffer: [Float] = []
    private var bufferStart: Int64 = 0
    private var streamEnd: Int64 = 0
    /// End sample of the next analysis point, and of the latest one reached.
    private var nextPoint: Int64
    private var currentPoint: Int64 = 0
    /// The embedding of the latest scored patch (what feedback on an episode stores).
    private(set) var lastEmbedding: [Float]?

    init(body: YAMNetModel, head: EmbeddingHead, settings: GateSettings) throws {
        guard head.metadata.architecture.inputDim == body.embeddingDimension else {
            throw GateError.incompatibleModels("the cry head takes \(head.metadata.architecture.inputDim)-d embeddings, the body gives \(body.embeddingDimension)")
        }
        guard head.metadata.body.name == body.metadata.name else {
            throw GateError.incompatibleModels("the cry head was trained on \"\(head.metadata.body.name)\" embeddings, not \"\(body.metadata.name)\"")
        }
        self.body = body
        self.head = head
        engine = YAMNetEngine(model: body)
        patchSamples = body.frontEnd.patchSamples
        hopSamples = Self.hopSamples(settings, body.frontEnd)
        nextPoint = Int64(patchSamples)
        buffer.reserveCapacity(4 * patchSamples)
    }

    static func hopSamples(_ s: GateSettings, _ p: PatchLogMelParameters) -> Int {
        max(p.hopLength, Int((s.patchHopSeconds * Double(p.sampleRate) / Double(p.hopLength)).rounded()) * p.hopLength)
    }

    var windowSeconds: Double { Double(patchSamples) / Double(body.frontEnd.sampleRate) }
    var usesReasonFrames: Bool { false }

    func append(_ samples: UnsafeBufferPointer<Float>, startSample: Int64) -> [Double] {
        // Capture drops chunks when the gate falls behind, so a chunk may not follow the last one. The
        // buffer must stay aligned with the stream (it once kept appending past such gaps, scored shifted
        // audio, then found nothing to score and trapped in `removeFirst`: a soak crash after drops). A
        // gap shorter than a patch is heard as silence, so an overloaded node that loses every few chunks
        // still scores its patches; after a longer gap (or a stream that went back) the grid starts again.
        let expected = bufferStart + Int64(buffer.count)
        if !buffer.isEmpty, startSample > expected, startSample - expected < Int64(patchSamples) {
            buffer += repeatElement(0, count: Int(startSample - expected))
        } else if buffer.isEmpty || startSample != expected {
            buffer.removeAll(keepingCapacity: true)
            bufferStart = startSample
            nextPoint = startSample + Int64(patchSamples)
        }
        // Every earlier point has been scored: keep only what the next one needs (compacted in steps of
        // at least two patches, so the shift costs little).
        let keepFrom = nextPoint - Int64(patchSamples)
        if keepFrom - bufferStart > Int64(2 * patchSamples) {
            let drop = Int(keepFrom - bufferStart)
            buffer.removeFirst(drop)
            bufferStart += Int64(drop)
        }
        buffer.append(contentsOf: samples)
        streamEnd = startSample + Int64(samples.count)
        var points: [Double] = []
        while nextPoint <= streamEnd {
            currentPoint = nextPoint
            points.append(Double(nextPoint) / 16_000)
            nextPoint += Int64(hopSamples)
        }
        return points
    }

    func reasonFrameAppended(totalFrames: Int) -> Bool { false }

    func finish() -> Double? {
        // Silence after the input completes the next patch: the offline grid of YAMNet's reference code.
        guard !buffer.isEmpty, streamEnd > currentPoint, nextPoint - Int64(patchSamples) < streamEnd else { return nil }
        let padTo = nextPoint
        buffer += [Float](repeating: 0, count: Int(padTo - streamEnd))
        streamEnd = padTo
        currentPoint = padTo
        nextPoint += Int64(hopSamples)
        return Double(padTo) / 16_000
    }

    func score(end: Double, recent: UnsafeBufferPointer<Float>, recentFrames: Int, limitFrames: Int?) -> (probability: Double, seconds: Double)? {
        let endSample = Int64((end * 16_000).rounded())
        let start = Int(endSample - Int64(patchSamples) - bufferStart)
        guard start >= 0, start + patchSamples <= buffer.count else { return nil }
        buffer.withUnsafeBufferPointer { engine.run(samples: $0.baseAddress! + start) }
        lastEmbedding = Array(engine.embeddingBuffer)
        return (head.cryProbability(embedding: engine.embeddingBuffer), windowSeconds)
    }

    func update(settings: GateSettings) { hopSamples = Self.hopSamples(settings, body.frontEnd) }
}
