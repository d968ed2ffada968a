import COpenBLAS
import Foundation
import Features

/// Runs the YAMNet body on one patch: standard and depthwise 3×3 convolutions with TensorFlow's SAME
/// padding, pointwise convolutions as one SGEMM each, ReLU6, global average pool → embedding, then the
/// 521-class sigmoid layer. Activations are `[time][mel][channel]` (channels contiguous), so a pointwise
/// layer is `[pixels × in] · [out × in]ᵀ` and a depthwise tap is a contiguous multiply-add over channels.
/// All buffers are allocated once, here; an inference allocates nothing. One owner at a time.
public final class YAMNetEngine {
    public let model: YAMNetModel
    public let frontEnd: PatchLogMelExtractor
    private let bufferA: UnsafeMutablePointer<Float>
    private let bufferB: UnsafeMutablePointer<Float>
    private let patch: UnsafeMutablePointer<Float>
    private let embedding: UnsafeMutablePointer<Float>
    private let scores: UnsafeMutablePointer<Float>
    private let scratchCount: Int

    static let maxScratchFloats = 64 << 20

    /// The largest activation map of any layer (floats), for the two ping-pong buffers.
    static func scratchFloats(model: YAMNetModel) -> Int {
        var h = model.frontEnd.patchFrames, w = model.frontEnd.nMels, largest = h * w
        for l in model.layers {
            h = (h + l.stride - 1) / l.stride
            w = (w + l.stride - 1) / l.stride
            largest = max(largest, h * w * l.outChannels)
        }
        return largest
    }

    public init(model: YAMNetModel) {
        _ = MatMul.pinOpenBLASToOneThread
        self.model = model
        // The parameters were validated when the model loaded.
        frontEnd = try! PatchLogMelExtractor(parameters: model.frontEnd)
        scratchCount = Self.scratchFloats(model: model)
        bufferA = .allocate(capacity: scratchCount)
        bufferB = .allocate(capacity: scratchCount)
        patch = .allocate(capacity: model.frontEnd.patchFrames * model.frontEnd.nMels)
        embedding = .allocate(capacity: model.embeddingDimension)
        scores = .allocate(capacity: model.metadata.architecture.nClasses)
    }

    deinit {
        bufferA.deallocate()
        bufferB.deallocate()
        patch.deallocate()
        embedding.deallocate()
        scores.deallocate()
    }

    public struct Output: Sendable, Equatable {
        public var embedding: [Float]
        public var scores: [Float]
    }

    /// One patch of waveform (`patchSamples` samples; shorter input is zero-padded) → embedding and scores.
    public func analyse(waveform: [Float]) -> Output {
        let n = model.frontEnd.patchSamples
        var padded = waveform
        if padded.count < n { padded += [Float](repeating: 0, count: n - padded.count) }
        padded.withUnsafeBufferPointer { run(samples: $0.baseAddress!) }
        return Output(embedding: Array(UnsafeBufferPointer(start: embedding, count: model.embeddingDimension)),
                      scores: Array(UnsafeBufferPointer(start: scores, count: model.metadata.architecture.nClasses)))
    }

    /// Front end + body on `patchSamples` samples; the results stay in `embeddingBuffer` / `scoreBuffer`.
    public func run(samples: UnsafePointer<Float>) {
        frontEnd.compute(samples: samples, frames: model.frontEnd.patchFrames, into: patch)
        run(logMel: UnsafePointer(patch))
    }

    public var embeddingBuffer: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: embedding, count: model.embeddingDimension) }
    public var scoreBuffer: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: scores, count: model.metadata.architecture.nClasses) }

    /// The body on one log-mel patch `[patchFrames][nMels]`.
    public func run(logMel: UnsafePointer<Float>) {
        var h = model.frontEnd.patchFrames, w = model.frontEnd.nMels
        var input = UnsafeMutablePointer(mutating: logMel), output = bufferA
        for l in model.layers {
            let oh = (h + l.stride - 1) / l.stride, ow = (w + l.stride - 1) / l.stride
            switch l.op {
            case .conv, .depthwise:
                Self.spatial(l, input: input, h: h, w: w, output: output, oh: oh, ow: ow)
            case .pointwise:
                l.weights.withUnsafeBufferPointer { wt in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(oh * ow), Int32(l.outChannels), Int32(l.inChannels),
                                1, input, Int32(l.inChannels), wt.baseAddress!, Int32(l.inChannels), 0, output, Int32(l.outChannels))
                }
                l.bias.withUnsafeBufferPointer { b in
                    for p in 0..<(oh * ow) {
                        let row = output + p * l.outChannels
                        for c in 0..<l.outChannels { row[c] = min(max(row[c] + b[c], 0), 6) }
                    }
                }
            }
            h = oh
            w = ow
            input = output
            output = output == bufferA ? bufferB : bufferA
        }
        let dim = model.embeddingDimension
        embedding.update(repeating: 0, count: dim)
        for p in 0..<(h * w) {
            let row = input + p * dim
            for c in 0..<dim { embedding[c] += row[c] }
        }
        let inv = 1 / Float(h * w)
        for c in 0..<dim { embedding[c] *= inv }
        let classes = model.metadata.architecture.nClasses
        model.classifierWeights.withUnsafeBufferPointer { wt in
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(classes), Int32(dim), 1, wt.baseAddress!, Int32(dim), embedding, 1, 0, scores, 1)
        }
        model.classifierBias.withUnsafeBufferPointer { b in
            for k in 0..<classes { scores[k] = 1 / (1 + exp(-(scores[k] + b[k]))) }
        }
    }

    /// TensorFlow SAME padding: the smaller half of the total padding goes before.
    static func padBefore(input: Int, output: Int, stride: Int, kernel: Int) -> Int {
        max((output - 1) * stride + kernel - input, 0) / 2
    }

    /// A standard conv on one input channel (`conv`) or a depthwise conv: for every output pixel, each tap
    /// adds `input[channel] * weight[tap][channel]` over contiguous channels (one input channel broadcast
    /// for `conv`). Out-of-range taps are the zero padding.
    static func spatial(_ l: YAMNetModel.Layer, input: UnsafePointer<Float>, h: Int, w: Int,
                        output: UnsafeMutablePointer<Float>, oh: Int, ow: Int) {
        let k = l.kernel, s = l.stride, c = l.outChannels
        let pt = padBefore(input: h, output: oh, stride: s, kernel: k)
        let pl = padBefore(input: w, output: ow, stride: s, kernel: k)
        let inC = l.op == .conv ? 1 : c
        l.weights.withUnsafeBufferPointer { wtBuf in
            l.bias.withUnsafeBufferPointer { bBuf in
                let wt = wtBuf.baseAddress!, b = bBuf.baseAddress!
                for y in 0..<oh {
                    for x in 0..<ow {
                        let out = output + (y * ow + x) * c
                        out.update(from: b, count: c)
                        for ky in 0..<k {
                            let iy = y * s + ky - pt
                            if iy < 0 || iy >= h { continue }
                            for kx in 0..<k {
                                let ix = x * s + kx - pl
                                if ix < 0 || ix >= w { continue }
                                let tap = wt + (ky * k + kx) * c
                                let src = input + (iy * w + ix) * inC
                                if inC == 1 {
                                    let v = src[0]
                                    for ch in 0..<c { out[ch] += v * tap[ch] }
                                } else {
                                    for ch in 0..<c { out[ch] += src[ch] * tap[ch] }
                                }
                            }
                        }
                        for ch in 0..<c { out[ch] = min(max(out[ch], 0), 6) }
                    }
                }
            }
        }
    }
}
