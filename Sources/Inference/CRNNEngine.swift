import Foundation

/// Runs a loaded CRNN on one window of log-mel features (batch size 1).
///
/// Every buffer an inference needs is allocated once, in `init`, sized for `maxFrames`; `logits`,
/// `probabilities` and `logProbabilities` with caller-provided output buffers then make no heap
/// allocation (tests assert this with a per-thread malloc counter). The price is that an engine holds
/// mutable scratch memory: it is a class that must be used from one task or thread at a time (it is
/// deliberately not `Sendable`). Make one engine per concurrent consumer; they can share one
/// `ModelBundle`, whose weights are immutable.
public final class CRNNEngine {
    public let model: ModelBundle
    /// Longest input (frames) one call accepts; the buffers are sized for it.
    public let maxFrames: Int
    /// Shortest input: the conv stack halves time once per block.
    public let minFrames: Int
    public let backend: MatMulBackend

    private let weights: CRNNWeights
    private let nMels: Int
    private let normMean: Float
    private let normScale: Float
    private let plane: UnsafeMutablePointer<Float>   // normalised input [nMels][frames], then conv outputs (ping)
    private let pong: UnsafeMutablePointer<Float>    // conv outputs (pong)
    private let col: UnsafeMutablePointer<Float>     // im2col
    private let pre: UnsafeMutablePointer<Float>     // conv output before pooling; Winograd V
    private let wino: UnsafeMutablePointer<Float>    // Winograd M
    private let lstmInput: UnsafeMutablePointer<Float> // [C * F][ld]
    private let seq: UnsafeMutablePointer<Float>     // [H][ld]: layer-0 output as layer-1 input (consumed
                                                     // by layer 1's input product before it is overwritten)
    private let gates: UnsafeMutablePointer<Float>   // [4H][ld]
    private let recurrent: UnsafeMutablePointer<Float> // [4H]
    private let hidden0: UnsafeMutablePointer<Float> // [steps][H]
    private let hidden1: UnsafeMutablePointer<Float> // [steps][H]
    private let cell: UnsafeMutablePointer<Float>    // [H]
    private let vecA: UnsafeMutablePointer<Float>    // dense activations
    private let vecB: UnsafeMutablePointer<Float>
    private let logitBuffer: UnsafeMutablePointer<Float>
    private let allocations: [(UnsafeMutablePointer<Float>, Int)]

    /// - Parameters:
    ///   - maxFrames: longest window to accept; defaults to the model's window (and self-test) length.
    ///   - backend: matrix-product implementation (OpenBLAS unless comparing).
    public init(model: ModelBundle, maxFrames: Int? = nil, backend: MatMulBackend = .openBLAS) {
        if backend == .openBLAS { _ = MatMul.pinOpenBLASToOneThread }
        let arch = model.metadata.architecture
        self.model = model
        self.weights = model.weights
        self.backend = backend
        self.nMels = arch.nMels
        self.minFrames = arch.minimumFrames
        let frames = max(maxFrames ?? max(model.metadata.window.frames, model.selfTestFrames), arch.minimumFrames)
        self.maxFrames = frames
        self.normMean = Float(model.metadata.features.normMean)
        self.normScale = Float(1 / model.metadata.features.normStd)

        let sizes = Self.scratchSizes(arch: arch, frames: frames)
        let (actMax, colMax, preMax, winoMax, steps) = (sizes.act, sizes.col, sizes.pre, sizes.wino, sizes.steps)
        let h = arch.lstmHidden
        let widest = max(h, arch.dense.max() ?? 0, arch.nClasses)
        var allocs: [(UnsafeMutablePointer<Float>, Int)] = []
        func buffer(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
            p.initialize(repeating: 0, count: max(n, 1))
            allocs.append((p, max(n, 1)))
            return p
        }
        plane = buffer(actMax)
        pong = buffer(actMax)
        col = buffer(colMax)
        pre = buffer(preMax)
        wino = buffer(winoMax)
        let ld = LSTM.leadingDimension(steps: steps)
        lstmInput = buffer(arch.lstmInput * ld)
        seq = buffer(ld * h)
        gates = buffer(ld * 4 * h)
        recurrent = buffer(4 * h)
        hidden0 = buffer(steps * h)
        hidden1 = buffer(steps * h)
        cell = buffer(h)
        vecA = buffer(widest)
        vecB = buffer(widest)
        logitBuffer = buffer(arch.nClasses)
        allocations = allocs
    }

    /// Scratch buffer sizes (floats) for `frames`-long inputs.
    static func scratchSizes(arch: ModelMetadata.Architecture, frames: Int) -> (act: Int, col: Int, pre: Int, wino: Int, steps: Int, total: Int) {
        var act = arch.nMels * frames, col = 0, pre = 0, wino = 0
        var f = arch.nMels, t = frames
        var cin = 1
        for cout in arch.convChannels {
            if cin >= CRNNWeights.winogradMinInput {
                let w = WinogradConv.scratch(cin: cin, cout: cout, f: f, t: t)
                col = max(col, w.padded)   // padded input lives in `col`
                pre = max(pre, w.v)        // V lives in `pre`
                wino = max(wino, w.m)
            } else {
                let ld = Conv2D.leadingDimension(plane: f * t)
                col = max(col, cin * 9 * ld)
                pre = max(pre, cout * ld + 16)
            }
            f /= 2; t /= 2
            act = max(act, cout * f * t)
            cin = cout
        }
        let h = arch.lstmHidden
        let ld = LSTM.leadingDimension(steps: t)
        let total = 2 * act + col + pre + wino + ld * (arch.lstmInput + 4 * h + h) + 4 * h + 2 * t * h
        return (act, col, pre, wino, t, total)
    }

    /// Upper bound on scratch memory a model may ask for (floats; 1 GiB), so a hostile file cannot
    /// make the engine attempt an absurd allocation.
    static let maxScratchFloats = 256 * 1024 * 1024

    deinit {
        for (p, n) in allocations {
            p.deinitialize(count: n)
            p.deallocate()
        }
    }

    public var classCount: Int { model.metadata.architecture.nClasses }

    /// Raw logits (calibration already folded in) for one window.
    /// - Parameters:
    ///   - features: raw log-mel dB, `[frames][n_mels]` row-major (the `Features` layout, before normalisation).
    ///   - into: `classCount` floats.
    public func logits(features: UnsafeBufferPointer<Float>, frames: Int, into out: UnsafeMutableBufferPointer<Float>) throws(InferenceError) {
        precondition(out.count >= classCount, "output buffer too small")
        guard frames >= minFrames else { throw .tooFewFrames(frames: frames, minimum: minFrames) }
        guard frames <= maxFrames else { throw .tooManyFrames(frames: frames, maximum: maxFrames) }
        guard features.count == frames * nMels else {
            throw .melMismatch(expected: nMels, actual: frames > 0 ? features.count / frames : features.count)
        }
        // Normalise and transpose to the network's [1, 1, n_mels, frames] layout.
        let src = features.baseAddress!
        for t in 0..<frames {
            for m in 0..<nMels {
                let v = src[t * nMels + m]
                guard v.isFinite else { throw .nonFiniteInput(index: t * nMels + m) }
                plane[m * frames + t] = (v - normMean) * normScale
            }
        }
        var f = nMels, t = frames
        var input = plane, output = pong
        // Index loops and explicit pointer swaps: in debug builds `for x in array` + `swap` allocated.
        for i in 0..<weights.convs.count {
            let conv = weights.convs[i]
            if let u = conv.winograd {
                u.withUnsafeBufferPointer { u in
                    WinogradConv.forward(conv, u: u.baseAddress!, input: input, f: f, t: t, padded: col, v: pre, m: wino,
                                         output: output, backend: backend)
                }
            } else {
                Conv2D.forward(conv, input: input, f: f, t: t, col: col, pre: pre, output: output, backend: backend)
            }
            f /= 2; t /= 2
            let done = output
            output = input
            input = done
        }
        // The [C][F][T] map is the LSTM input with one column per time step (row c * F + f); copy it
        // into `lstmInput` with the padded column stride the LSTM products use.
        let steps = t, ld = LSTM.leadingDimension(steps: steps), rows = weights.lstm[0].input
        for r in 0..<rows { (lstmInput + r * ld).update(from: input + r * steps, count: steps) }
        LSTM.forward(weights.lstm[0], x: lstmInput, steps: steps, gates: gates, recurrent: recurrent, cell: cell,
                     out: hidden0, outColumns: seq, backend: backend)
        LSTM.forward(weights.lstm[1], x: seq, steps: steps, gates: gates, recurrent: recurrent, cell: cell,
                     out: hidden1, outColumns: seq, backend: backend)
        let h = weights.lstm[1].hidden
        if weights.meanPooling {
            vecA.update(repeating: 0, count: h)
            for s in 0..<steps { for j in 0..<h { vecA[j] += hidden1[s * h + j] } }
            let inv = 1 / Float(steps)
            for j in 0..<h { vecA[j] *= inv }
        } else {
            vecA.update(from: hidden1 + (steps - 1) * h, count: h)
        }
        var x = vecA, y = vecB
        for i in 0..<weights.dense.count {
            linear(weights.dense[i], x: x, y: y)
            for j in 0..<weights.dense[i].output { y[j] = max(y[j], 0) }
            let done = y
            y = x
            x = done
        }
        linear(weights.out, x: x, y: out.baseAddress!)
    }

    /// Class probabilities (softmax of the logits) for one window; see `logits(features:frames:into:)`.
    public func probabilities(features: UnsafeBufferPointer<Float>, frames: Int, into out: UnsafeMutableBufferPointer<Float>) throws(InferenceError) {
        try logits(features: features, frames: frames, into: out)
        Softmax.probabilities(UnsafeMutableBufferPointer(rebasing: out[0..<classCount]))
    }

    /// Log-probabilities (log-softmax of the logits) for one window.
    public func logProbabilities(features: UnsafeBufferPointer<Float>, frames: Int, into out: UnsafeMutableBufferPointer<Float>) throws(InferenceError) {
        try logits(features: features, frames: frames, into: out)
        Softmax.logProbabilities(UnsafeMutableBufferPointer(rebasing: out[0..<classCount]))
    }

    /// Convenience: probabilities for `[frames][n_mels]` features (allocates the result array).
    public func probabilities(features: [Float], frames: Int) throws(InferenceError) -> [Float] {
        var result = [Float](repeating: 0, count: classCount)
        try features.withUnsafeBufferPointer { (f: UnsafeBufferPointer<Float>) throws(InferenceError) in
            try result.withUnsafeMutableBufferPointer { (r: inout UnsafeMutableBufferPointer<Float>) throws(InferenceError) in
                try probabilities(features: f, frames: frames, into: r)
            }
        }
        return result
    }

    private func linear(_ l: CRNNWeights.Linear, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        l.bias.withUnsafeBufferPointer { b in y.update(from: b.baseAddress!, count: l.output) }
        l.weight.withUnsafeBufferPointer { w in
            MatMul.gemv(backend, m: l.output, n: l.input, a: w.baseAddress!, lda: l.input, x: x, y: y, accumulate: true)
        }
    }
}

/// Numerically stable softmax / log-softmax in place.
public enum Softmax {
    public static func probabilities(_ v: UnsafeMutableBufferPointer<Float>) {
        guard let m = v.max() else { return }
        var sum: Float = 0
        for i in v.indices { v[i] = expf(v[i] - m); sum += v[i] }
        for i in v.indices { v[i] /= sum }
    }

    public static func logProbabilities(_ v: UnsafeMutableBufferPointer<Float>) {
        guard let m = v.max() else { return }
        var sum: Float = 0
        for x in v { sum += expf(x - m) }
        let lse = m + logf(sum)
        for i in v.indices { v[i] -= lse }
    }

    /// Array versions (allocate).
    public static func probabilities(_ v: [Float]) -> [Float] {
        var r = v
        r.withUnsafeMutableBufferPointer { probabilities($0) }
        return r
    }
}
