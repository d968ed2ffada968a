import Features
import Foundation
import Testing

/// YAMNet's front end: the HTK filterbank against the matrix inside `yamnet.tflite` (extracted to
/// `Fixtures/yamnet_mel_matrix.npy`, `[64, 257]`), and the patch grid of YAMNet's reference code.
struct PatchLogMelTests {
    @Test("the HTK mel filterbank equals the matrix in yamnet.tflite to 1e-6")
    func melMatrixMatchesTFLite() throws {
        let url = Bundle.module.url(forResource: "Fixtures/yamnet_mel_matrix", withExtension: "npy")!
        let graph = try NPYFile.decode(Data(contentsOf: url))
        #expect(graph.shape == [64, 257])
        let p = PatchLogMelParameters()
        let w = HTKMelFilterbank.weights(nMels: p.nMels, nBins: p.nBins, sampleRate: p.sampleRate, fmin: p.fmin, fmax: p.fmax)
        var maxDelta: Float = 0
        for b in 0..<64 { for k in 0..<257 { maxDelta = max(maxDelta, abs(w[k * 64 + b] - graph.values[b * 257 + k])) } }
        #expect(maxDelta <= 1e-6, "max |Δ| \(maxDelta)")
        // Not a trivially zero matrix: every band has weight somewhere.
        for b in 0..<64 { #expect((0..<257).contains { w[$0 * 64 + b] > 0.1 }) }
    }

    @Test("offline patches: at least one, every 0.48 s, the last one padded to cover the end")
    func offlinePatchGrid() {
        let p = PatchLogMelParameters()
        #expect(p.patchSamples == 15_600 && p.patchHopSamples == 7_680)
        #expect(p.offlinePatchStarts(forSamples: 100) == [0])
        #expect(p.offlinePatchStarts(forSamples: 15_600) == [0])
        #expect(p.offlinePatchStarts(forSamples: 15_601) == [0, 7_680])
        #expect(p.offlinePatchStarts(forSamples: 15_600 + 2 * 7_680) == [0, 7_680, 15_360])
        #expect(p.frameCount(forSamples: 15_600) == 96 && p.frameCount(forSamples: 399) == 0)
    }

    @Test("a 1 kHz tone peaks in the band whose centre is nearest 1 kHz; silence gives log(offset)")
    func toneAndSilence() throws {
        let p = PatchLogMelParameters()
        let fe = try PatchLogMelExtractor(parameters: p)
        let tone = (0..<15_600).map { Float(0.5 * sin(2 * Double.pi * 1000 * Double($0) / 16_000)) }
        let m = fe.frames(of: tone)
        #expect(m.frames == 96)
        let row = Array(m.frame(40))
        let loudest = row.indices.max { row[$0] < row[$1] }!
        let lo = HTKMelFilterbank.hzToMel(125), hi = HTKMelFilterbank.hzToMel(7500)
        let centres = (1...64).map { lo + (hi - lo) * Double($0) / 65 }
        let target = HTKMelFilterbank.hzToMel(1000)
        let expected = centres.indices.min { abs(centres[$0] - target) < abs(centres[$1] - target) }!
        #expect(abs(loudest - expected) <= 1)
        let quiet = fe.frames(of: [Float](repeating: 0, count: 800))
        #expect(quiet.values.allSatisfy { abs($0 - Float(log(0.001))) < 1e-5 })
    }
}
