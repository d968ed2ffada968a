import Foundation
import Testing
@testable import Features

/// The offline multi-core path must give exactly the frames of the single-threaded extractor.
struct ParallelLogMelTests {
    static func signal(_ count: Int) -> [Float] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { i in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let noise = Float(Int64(bitPattern: state >> 11) % 1000) / 20_000
            return 0.3 * Float.sinOf(Float(i) * 0.0917) + noise
        }
    }

    @Test("bit-identical to one thread, at every split and length", arguments: [1, 2, 3, 4, 7])
    func identical(threads: Int) throws {
        let p = LogMelParameters()
        // 2,000 to 8,000 frames: several ranges; lengths on and off the hop grid.
        for count in [1_024_000, 2_048_000 + 37, 4_096_511] {
            let samples = Self.signal(count)
            let serial = try LogMelExtractor(parameters: p).compute(samples)
            let parallel = try ParallelLogMel.compute(samples, parameters: p, threads: threads)
            #expect(parallel.frames == p.frameCount(forSamples: count))
            #expect(parallel == serial, "threads \(threads), \(count) samples")
        }
    }

    @Test("a hop that does not divide n_fft / 2 falls back to one range, same frames")
    func unalignedHop() throws {
        let p = LogMelParameters(nFFT: 1024, hopLength: 400)
        let samples = Self.signal(1_000_000)
        #expect(try ParallelLogMel.compute(samples, parameters: p, threads: 4) == LogMelExtractor(parameters: p).compute(samples))
    }
}

private extension Float {
    static func sinOf(_ x: Float) -> Float { Float(sin(Double(x))) }
}
