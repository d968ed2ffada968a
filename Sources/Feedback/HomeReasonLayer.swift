import Foundation

/// The home's answers about *why*, blended into the global reason model: a Laplace-smoothed prior over the
/// labels the caregivers gave, and (with embeddings) a nearest-centroid vote among the labels given, mixed
/// half and half into a "home" distribution, which weighs `N / (N + kappa)` against the global model's
/// probabilities (`N` labelled episodes). With no feedback the global model is reported unchanged; the
/// more the home has said, the more its answers count. Pure and immutable: rebuilt on every change.
public struct HomeReasonLayer: Sendable, Equatable {
    /// One labelled episode as the layer learns from it.
    public struct Example: Sendable, Equatable {
        public var label: String
        /// Projected mean embedding (``EmbeddingSpace``), nil on a node without embeddings.
        public var embedding: [Float]?
        /// The global model's probabilities for the episode (what was reported).
        public var global: [String: Double]
        public init(label: String, embedding: [Float]?, global: [String: Double]) {
            self.label = label
            self.embedding = embedding
            self.global = global
        }
    }

    public let labels: [String]
    public let beta: Double
    public let kappa: Double
    private let counts: [Int]
    /// Per label: the sum of its examples' embeddings (a centroid up to scale), nil when none.
    private let sums: [[Float]?]

    public init(labels: [String], examples: [Example], beta: Double, kappa: Double) {
        self.labels = labels
        self.beta = beta
        self.kappa = kappa
        var counts = [Int](repeating: 0, count: labels.count)
        var sums = [[Float]?](repeating: nil, count: labels.count)
        for e in examples {
            guard let c = labels.firstIndex(of: e.label) else { continue }
            counts[c] += 1
            if let v = e.embedding {
                sums[c] = sums[c].map { s in zip(s, v).map { $0 + $1 } } ?? v
            }
        }
        self.counts = counts
        self.sums = sums
    }

    public var examples: Int { counts.reduce(0, +) }
    /// How much the home counts against the global model.
    public var weight: Double { Double(examples) / (Double(examples) + kappa) }

    /// The adapted probabilities (nil-embedding: prior only). `exclude`: leave one example out (its label
    /// and embedding), for the leave-one-out accuracy.
    public func adapt(_ global: [String: Double], embedding: [Float]?, excluding exclude: Example? = nil) -> [String: Double] {
        var counts = self.counts
        var sums = self.sums
        if let x = exclude, let c = labels.firstIndex(of: x.label) {
            counts[c] -= 1
            if let v = x.embedding, let s = sums[c] { sums[c] = counts[c] > 0 ? zip(s, v).map { $0 - $1 } : nil }
        }
        let n = Double(counts.reduce(0, +))
        guard n > 0 else { return global }
        let k = Double(labels.count)
        let prior = counts.map { (Double($0) + 1) / (n + k) }
        var home = prior
        if let m = embedding, sums.contains(where: { $0 != nil }) {
            var scores = [Double?](repeating: nil, count: labels.count)
            for c in labels.indices where counts[c] > 0 {
                if let s = sums[c] { scores[c] = beta * EmbeddingSpace.dot(m, EmbeddingSpace.normalised(s)) }
            }
            let top = scores.compactMap { $0 }.max() ?? 0
            let exps = scores.map { $0.map { Foundation.exp($0 - top) } ?? 0 }
            let total = exps.reduce(0, +)
            if total > 0 { home = zip(prior, exps).map { 0.5 * $0 + 0.5 * $1 / total } }
        }
        let w = n / (n + kappa)
        var out: [String: Double] = [:]
        for (c, label) in labels.enumerated() { out[label] = (1 - w) * (global[label] ?? 0) + w * home[c] }
        return out
    }

    /// Leave-one-out over the examples: how often the adapted and the global model name the label given.
    public static func leaveOneOut(_ layer: HomeReasonLayer, _ examples: [Example]) -> (episodes: Int, adapted: Double, global: Double)? {
        let usable = examples.filter { layer.labels.contains($0.label) }
        guard !usable.isEmpty else { return nil }
        func top(_ p: [String: Double]) -> String? { p.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }?.key }
        var adapted = 0, global = 0
        for e in usable {
            if top(layer.adapt(e.global, embedding: e.embedding, excluding: e)) == e.label { adapted += 1 }
            if top(e.global) == e.label { global += 1 }
        }
        let n = Double(usable.count)
        return (usable.count, Double(adapted) / n, Double(global) / n)
    }
}
