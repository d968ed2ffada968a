/// A log-mel spectrogram laid out `[frames, nMels]`, row-major: the layout the `.npy` export, the
/// training code and the model input share.
public struct FeatureMatrix: Sendable, Equatable {
    public var nMels: Int
    public var values: [Float]

    public init(nMels: Int, values: [Float] = []) {
        precondition(nMels > 0 && values.count % nMels == 0)
        self.nMels = nMels
        self.values = values
    }

    public var frames: Int { values.count / nMels }

    public subscript(frame: Int, mel: Int) -> Float { values[frame * nMels + mel] }

    /// One frame's mel bands.
    public func frame(_ index: Int) -> ArraySlice<Float> { values[(index * nMels)..<((index + 1) * nMels)] }

    public mutating func append(frame: UnsafeBufferPointer<Float>) {
        precondition(frame.count == nMels)
        values.append(contentsOf: frame)
    }

    public mutating func append(_ other: FeatureMatrix) {
        precondition(other.nMels == nMels)
        values.append(contentsOf: other.values)
    }
}
