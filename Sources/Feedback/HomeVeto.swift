import Gate

/// "That was not a cry", remembered: the firing patches of episodes the caregivers labelled `not_cry`
/// (negatives) against those of episodes they confirmed with a reason (positives). A patch is vetoed when
/// it is at least ``FeedbackSettings/vetoSimilarity`` similar to a negative AND closer to it by
/// ``FeedbackSettings/vetoMargin`` than to every confirmed cry, so a cry the home has confirmed always
/// counts and a wrong tap silences only sounds very like the one tapped. Immutable; rebuilt on feedback.
public final class HomeVeto: CryVeto {
    public let space: EmbeddingSpace
    public let negatives: [[Float]]
    public let positives: [[Float]]
    public let similarity: Double
    public let margin: Double

    public init(space: EmbeddingSpace, negatives: [[Float]], positives: [[Float]], similarity: Double, margin: Double) {
        self.space = space
        self.negatives = negatives
        self.positives = positives
        self.similarity = similarity
        self.margin = margin
    }

    public var isEmpty: Bool { negatives.isEmpty }

    public func vetoes(embedding: UnsafeBufferPointer<Float>, probability: Double) -> Bool {
        guard !negatives.isEmpty, embedding.count == space.dimension else { return false }
        return decide(space.project(embedding)).vetoed
    }

    /// The decision for a projected patch, with the two similarities (for tests and the simulation).
    public func decide(_ u: [Float]) -> (vetoed: Bool, negative: Double, positive: Double) {
        let sn = negatives.map { EmbeddingSpace.dot(u, $0) }.max() ?? -1
        let sp = positives.map { EmbeddingSpace.dot(u, $0) }.max() ?? -1
        return (sn >= similarity && sn >= sp + margin, sn, sp)
    }
}
