/// Where the node compares sounds: YAMNet embeddings standardised as the cry head standardises them,
/// then scaled to unit length, so that a dot product is a cosine similarity.
public struct EmbeddingSpace: Sendable, Equatable {
    public let mean: [Float]
    public let scale: [Float]

    public init(mean: [Float], scale: [Float]) {
        precondition(mean.count == scale.count)
        self.mean = mean
        self.scale = scale
    }

    public var dimension: Int { mean.count }

    /// The unit vector of one raw embedding (zero stays zero).
    public func project(_ e: UnsafeBufferPointer<Float>) -> [Float] {
        precondition(e.count == dimension)
        var u = [Float](repeating: 0, count: dimension)
        var norm: Float = 0
        for d in 0..<dimension {
            u[d] = (e[d] - mean[d]) * scale[d]
            norm += u[d] * u[d]
        }
        guard norm > 0 else { return u }
        let inv = 1 / norm.squareRoot()
        for d in 0..<dimension { u[d] *= inv }
        return u
    }

    public func project(_ e: [Float]) -> [Float] { e.withUnsafeBufferPointer { project($0) } }

    /// Each row of a row-major `[n, dimension]` matrix, projected.
    public func projectRows(_ rows: [Float]) -> [[Float]] {
        guard dimension > 0 else { return [] }
        return stride(from: 0, to: rows.count - dimension + 1, by: dimension).map { start in
            rows.withUnsafeBufferPointer { project(UnsafeBufferPointer(rebasing: $0[start..<start + dimension])) }
        }
    }

    public static func dot(_ a: [Float], _ b: [Float]) -> Double {
        var s: Float = 0
        for i in 0..<min(a.count, b.count) { s += a[i] * b[i] }
        return Double(s)
    }

    public static func normalised(_ v: [Float]) -> [Float] {
        let n = v.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        return n > 0 ? v.map { $0 / n } : v
    }
}
