import Feedback
import Foundation
import Testing

/// The two pure learners against hand-computed values.
@Suite("Home veto and reason layer")
struct HomeLearningTests {
    static let space = EmbeddingSpace(mean: [0, 0, 0], scale: [1, 1, 1])

    @Test("projection: standardise then unit length")
    func projection() {
        let s = EmbeddingSpace(mean: [1, 1], scale: [2, 0.5])
        let u = s.project([4, 5])   // (6, 2) / sqrt(40)
        #expect(abs(Double(u[0]) - 6 / 40.0.squareRoot()) < 1e-6 && abs(Double(u[1]) - 2 / 40.0.squareRoot()) < 1e-6)
        #expect(s.project([1, 1]) == [0, 0])
    }

    @Test("veto: similar to a 'not a cry' sound and clearly closer to it than to any confirmed cry")
    func veto() {
        let cat = Self.space.project([1, 0, 0]), cry = Self.space.project([0, 1, 0])
        let v = HomeVeto(space: Self.space, negatives: [cat], positives: [cry], similarity: 0.8, margin: 0.05)
        #expect(v.decide(Self.space.project([1, 0.1, 0])).vetoed)          // cos 0.995 to the cat
        #expect(!v.decide(Self.space.project([1, 1, 0])).vetoed)           // as close to the cry: counts
        #expect(!v.decide(Self.space.project([0, 0, 1])).vetoed)           // another sound
        #expect(!v.decide(Self.space.project([1, 0.9, 0])).vetoed)         // cos 0.74 < 0.8
        // A wrong tap on a real cry is undone by one confirmation of that cry.
        let wrong = HomeVeto(space: Self.space, negatives: [cry], positives: [], similarity: 0.8, margin: 0.05)
        let righted = HomeVeto(space: Self.space, negatives: [cry], positives: [cry], similarity: 0.8, margin: 0.05)
        #expect(wrong.decide(cry).vetoed && !righted.decide(cry).vetoed)
        let raw: [Float] = [1, 0.1, 0]
        #expect(raw.withUnsafeBufferPointer { v.vetoes(embedding: $0, probability: 0.99) })
    }

    @Test("reason layer: no feedback leaves the global model; the blend follows N/(N+kappa), prior and centroid halves")
    func reasonLayer() {
        let labels = ["hungry", "tired"]
        let global = ["hungry": 0.8, "tired": 0.2]
        #expect(HomeReasonLayer(labels: labels, examples: [], beta: 10, kappa: 8).adapt(global, embedding: nil) == global)
        let a: [Float] = [1, 0, 0], b: [Float] = [0, 1, 0]
        let examples = [HomeReasonLayer.Example(label: "tired", embedding: a, global: global),
                        .init(label: "tired", embedding: a, global: global),
                        .init(label: "hungry", embedding: b, global: global)]
        let layer = HomeReasonLayer(labels: labels, examples: examples, beta: 10, kappa: 2)
        // N = 3, w = 0.6; prior tired = 3/5, hungry = 2/5; centroid vote for `a`: softmax(10·1, 10·0).
        let p = layer.adapt(global, embedding: a)
        let vote = 1 / (1 + exp(-10.0))
        let tired = 0.4 * 0.2 + 0.6 * (0.5 * 0.6 + 0.5 * vote)
        #expect(abs(p["tired"]! - tired) < 1e-9)
        #expect(abs(p["hungry"]! + p["tired"]! - 1) < 1e-9)
        // Without embeddings, the prior alone: tired = 0.4·0.2 + 0.6·0.6.
        #expect(abs(layer.adapt(global, embedding: nil)["tired"]! - (0.08 + 0.36)) < 1e-9)
        // Leave-one-out with kappa 0.5 (w = 2/2.5 = 0.8 with one left out). A tired episode left out: prior
        // 1/2 each, the vote goes to tired, home tired 0.75, adapted 0.2·0.2 + 0.8·0.75 = 0.64: right. The hungry
        // one left out: no hungry centroid remains, home tired 0.875, adapted tired 0.74: wrong. The global
        // model says hungry every time: 1 of 3. (With kappa 2 the global 0.8 still wins: 0 of 3.)
        let loo = HomeReasonLayer.leaveOneOut(HomeReasonLayer(labels: labels, examples: examples, beta: 10, kappa: 0.5), examples)
        #expect(loo?.episodes == 3)
        #expect(abs((loo?.global ?? 0) - 1.0 / 3) < 1e-9 && abs((loo?.adapted ?? 0) - 2.0 / 3) < 1e-9)
        #expect(HomeReasonLayer.leaveOneOut(layer, examples)?.adapted == 0)
    }

    @Test("settings: each bad value names its key")
    func settings() {
        var s = FeedbackSettings()
        #expect(throws: Never.self) { try s.validate() }
        s.maxLabelled = s.maxEpisodes + 1
        do { try s.validate(); Issue.record("accepted") } catch {
            #expect(error.key == "feedback.max_labelled" && error.reason == "must be in 1...max_episodes (2000), got 2001")
        }
        s = FeedbackSettings()
        s.vetoSimilarity = 0
        #expect(throws: FeedbackSettingsError.self) { try s.validate() }
    }
}
