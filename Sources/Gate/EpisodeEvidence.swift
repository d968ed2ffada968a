import Foundation

/// What the cry detector saw during one episode, kept for caregiver feedback: the YAMNet embeddings of the
/// patches that fired (the highest-scoring ones, at most ``EvidenceCollector/maxPatches``) and their cry
/// probabilities. No audio. Empty embeddings on a CRNN-detector node (it has no embedding space).
public struct EpisodeEvidence: Sendable, Equatable {
    public var episode: UUID
    /// Row-major `[patches.count, dimension]`.
    public var embeddings: [Float]
    public var dimension: Int
    /// Head probability of each kept patch, in the same order.
    public var probabilities: [Double]
    /// Cry patches scored in the episode (also those not kept).
    public var cryPatches: Int
    /// Patches the per-home veto silenced during it.
    public var vetoedPatches: Int

    public var patchCount: Int { probabilities.count }

    /// The mean of the kept embeddings (what the per-home reason layer compares), nil without embeddings.
    public var meanEmbedding: [Float]? {
        guard dimension > 0, patchCount > 0 else { return nil }
        var mean = [Float](repeating: 0, count: dimension)
        for p in 0..<patchCount { for d in 0..<dimension { mean[d] += embeddings[p * dimension + d] } }
        let n = Float(patchCount)
        return mean.map { $0 / n }
    }
}

/// Collects ``EpisodeEvidence`` alongside the episode tracker: cry patches before an episode is confirmed
/// wait in a short pending list (the onset patches belong to the episode they confirm), then go to the open
/// episode; an ended episode's evidence waits in ``finished`` until the pipeline takes it.
struct EvidenceCollector {
    /// Patches kept per episode: 16 × 4 KB of embedding, enough to recognise the sound again.
    static let maxPatches = 16
    private var pending: [(time: Double, probability: Double, embedding: [Float])] = []
    private(set) var open: EpisodeEvidence?
    private(set) var finished: [EpisodeEvidence] = []

    /// A scored patch whose head probability reached the threshold (before any veto).
    mutating func cryPatch(time: Double, probability: Double, embedding: [Float], vetoed: Bool) {
        if var e = open {
            e.cryPatches += 1
            if vetoed { e.vetoedPatches += 1 }
            Self.keep(&e, probability, embedding)
            open = e
        } else {
            pending.append((time, probability, embedding))
            pending = pending.suffix(Self.maxPatches)
        }
    }

    /// The tracker's events for one window: start moves the pending patches from `onset` on into the new
    /// episode; end finishes it.
    mutating func observe(_ events: [GateEvent], windowSeconds: Double) {
        for event in events {
            switch event {
            case let .cryStarted(id, _, streamTime, _, _, _):
                let dimension = pending.first?.embedding.count ?? 0
                var e = EpisodeEvidence(episode: id, embeddings: [], dimension: dimension, probabilities: [], cryPatches: 0, vetoedPatches: 0)
                // `streamTime` is the onset: the start of the first cry window.
                for p in pending where p.time - windowSeconds >= streamTime - 1e-6 {
                    e.cryPatches += 1
                    Self.keep(&e, p.probability, p.embedding)
                }
                pending = []
                open = e
            case let .cryEnded(id, _, _, _, _, _, _):
                if let e = open, e.episode == id { finished.append(e) }
                open = nil
            default:
                continue
            }
        }
    }

    /// Removes and returns the evidence of episodes that have ended.
    mutating func takeFinished() -> [EpisodeEvidence] {
        defer { finished = [] }
        return finished
    }

    /// Keeps the `maxPatches` highest-scoring patches.
    private static func keep(_ e: inout EpisodeEvidence, _ probability: Double, _ embedding: [Float]) {
        guard !embedding.isEmpty else { return }
        if e.dimension == 0 { e.dimension = embedding.count }
        guard embedding.count == e.dimension else { return }
        if e.patchCount < maxPatches {
            e.probabilities.append(probability)
            e.embeddings += embedding
            return
        }
        guard let weakest = e.probabilities.indices.min(by: { e.probabilities[$0] < e.probabilities[$1] }),
              probability > e.probabilities[weakest] else { return }
        e.probabilities[weakest] = probability
        e.embeddings.replaceSubrange(weakest * e.dimension..<(weakest + 1) * e.dimension, with: embedding)
    }
}
