import Features
import Foundation
import Testing

/// Streaming must give exactly the batch frames, whatever the chunking, without growing memory.
struct StreamingTests {
    static func signal(_ n: Int) -> [Float] {
        var state: UInt32 = 12345
        return (0..<n).map { i in
            state = state &* 1_664_525 &+ 1_013_904_223
            return 0.2 * sin(Float(i) * 0.05) + Float(Int32(bitPattern: state)) / Float(Int32.max) * 0.1
        }
    }

    @Test("streaming in chunks yields the batch frames bit for bit", arguments: [1, 7, 511, 512, 513, 1600, 4096, 50_000])
    func chunkedEqualsBatch(chunk: Int) throws {
        let p = LogMelParameters(fmax: 4000)
        let y = Self.signal(48_000 + 123)
        let batch = try LogMelExtractor(parameters: p).compute(y)
        let streaming = try LogMelExtractor(parameters: p)
        var out = FeatureMatrix(nMels: p.nMels)
        var i = 0
        while i < y.count {
            let end = min(y.count, i + chunk)
            let got = streaming.process(y[i..<end])
            // Every frame is released as soon as its last sample arrived.
            #expect(streaming.framesEmitted == max(0, (end - p.nFFT / 2) / p.hopLength + 1) || end < p.nFFT / 2)
            out.append(got)
            i = end
        }
        out.append(streaming.finish())
        #expect(out.frames == p.frameCount(forSamples: y.count))
        #expect(out == batch)
    }

    @Test("irregular chunk sizes and reset between recordings")
    func irregularChunksAndReset() throws {
        let p = LogMelParameters()
        let y = Self.signal(20_000)
        let batch = try LogMelExtractor(parameters: p).compute(y)
        let ex = try LogMelExtractor(parameters: p)
        for round in 0..<2 {
            ex.reset()
            var out = FeatureMatrix(nMels: p.nMels)
            var i = 0, k = round
            while i < y.count {
                k += 1
                let end = min(y.count, i + (k * 37) % 900 + 1)
                ex.process(y[i..<end], into: &out)
                i = end
            }
            ex.finish(into: &out)
            #expect(out == batch)
        }
    }

    @Test("memory stays bounded over an hour of streaming")
    func boundedMemory() throws {
        let ex = try LogMelExtractor(parameters: LogMelParameters())
        let chunk = Self.signal(1600)
        var out = FeatureMatrix(nMels: 64)
        var peak = 0
        for _ in 0..<(3600 * 10) {
            ex.process(chunk, into: &out)
            peak = max(peak, ex.bufferedSamples)
            out.values.removeAll(keepingCapacity: true)
        }
        #expect(ex.framesEmitted == (3600 * 16_000 - 1024) / 512 + 1)
        #expect(peak < 2 * 2048 + 512, "buffer peaked at \(peak) samples")
    }
}
