import Foundation
import Gate
import Messaging
import Synchronization

/// The node's feedback stage: the store of its episodes plus what it has learnt from the answers — the
/// ``HomeVeto`` the gate consults and the ``HomeReasonLayer`` the reporter blends in — rebuilt from the
/// store whenever an answer changes or a model changes. Shared by the pipeline (records episodes, adapts
/// reasons) and the control stage (labels, forgets, exports); the learnt state is an immutable snapshot
/// behind a mutex, so neither waits on the other for more than a pointer swap.
public final class FeedbackBook: Sendable {
    public static let notCry = FeedbackStatePayload.notCry

    public let settings: FeedbackSettings
    public let store: FeedbackStore
    private let learnt = Mutex<Learnt>(Learnt())

    struct Learnt {
        var labels: [String] = []
        var space: EmbeddingSpace?
        var veto: HomeVeto?
        var reasons: HomeReasonLayer?
        var leaveOneOut: FeedbackInfo.LeaveOneOut?
    }

    public init(stateDir: String, settings: FeedbackSettings) throws {
        self.settings = settings
        store = try FeedbackStore(path: stateDir + "/feedback.sqlite", settings: settings)
    }

    /// Labels a caregiver may give: the reason model's, and `not_cry`.
    public func allowedLabels() -> [String] { learnt.withLock { $0.labels } + [Self.notCry] }

    /// Rebuilds the veto and the reason layer from the store, for the reason labels and embedding space in
    /// force (`space` nil: a node without embeddings — priors only, no veto).
    public func rebuild(labels: [String], space: EmbeddingSpace?) throws {
        let episodes = try store.labelled()
        var next = Learnt(labels: labels, space: space)
        if let space {
            func rows(_ e: FeedbackEpisode) -> [[Float]] { e.dimension == space.dimension ? space.projectRows(e.embeddings) : [] }
            let negatives = episodes.filter { $0.label == Self.notCry }.suffix(settings.vetoMaxEpisodes).flatMap(rows)
            let positives = episodes.filter { $0.label != Self.notCry }.suffix(settings.vetoMaxEpisodes).flatMap(rows)
            if settings.veto, !negatives.isEmpty {
                next.veto = HomeVeto(space: space, negatives: negatives, positives: positives,
                                     similarity: settings.vetoSimilarity, margin: settings.vetoMargin)
            }
        }
        let examples = episodes.compactMap { e -> HomeReasonLayer.Example? in
            guard let label = e.label, labels.contains(label) else { return nil }
            return .init(label: label, embedding: Self.meanProjection(e, space), global: e.probabilities)
        }
        if settings.adaptReasons, !examples.isEmpty {
            let layer = HomeReasonLayer(labels: labels, examples: examples, beta: settings.reasonBeta, kappa: settings.reasonKappa)
            next.reasons = layer
            next.leaveOneOut = HomeReasonLayer.leaveOneOut(layer, examples).map {
                .init(episodes: $0.episodes, adaptedAccuracy: ($0.adapted * 1000).rounded() / 1000, globalAccuracy: ($0.global * 1000).rounded() / 1000)
            }
        }
        learnt.withLock { $0 = next }
    }

    /// The veto for the gate (nil: nothing learnt, or veto off).
    public var veto: HomeVeto? { learnt.withLock { $0.veto } }

    /// The reason estimate the home's answers suggest for an episode (nil: no answers yet, or off). Applies
    /// the gate's `unknown` rule to the adapted probabilities.
    public func adapt(_ global: ReasonEstimate, meanEmbedding: [Float]?, minConfidence: Double) -> ReasonEstimate? {
        let (layer, space) = learnt.withLock { ($0.reasons, $0.space) }
        guard let layer, layer.examples > 0 else { return nil }
        let m = meanEmbedding.flatMap { e in space.flatMap { $0.dimension == e.count ? $0.project(e) : nil } }
        let p = layer.adapt(global.probabilities, embedding: m)
        guard let best = p.max(by: { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }) else { return nil }
        return ReasonEstimate(reason: best.value >= minConfidence ? best.key : ReasonEstimate.unknown, confidence: best.value, probabilities: p)
    }

    /// `info.feedback`.
    public func summary(vetoedPatches: Int) -> FeedbackInfo {
        let counts = (try? store.counts()) ?? (episodes: 0, labels: [:])
        return learnt.withLock { l in
            FeedbackInfo(episodes: counts.episodes, labels: counts.labels,
                         vetoEpisodes: min(counts.labels[Self.notCry] ?? 0, settings.vetoMaxEpisodes) * (l.veto == nil ? 0 : 1),
                         vetoedPatches: vetoedPatches, reasonWeight: ((l.reasons?.weight ?? 0) * 1000).rounded() / 1000,
                         leaveOneOut: l.leaveOneOut)
        }
    }

    /// The projected mean embedding of an episode's firing patches.
    static func meanProjection(_ e: FeedbackEpisode, _ space: EmbeddingSpace?) -> [Float]? {
        guard let space, e.dimension == space.dimension, e.patches > 0 else { return nil }
        var mean = [Float](repeating: 0, count: e.dimension)
        for p in 0..<e.patches { for d in 0..<e.dimension { mean[d] += e.embeddings[p * e.dimension + d] } }
        return space.project(mean.map { $0 / Float(e.patches) })
    }
}
