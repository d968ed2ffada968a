import Features
import Foundation
import Testing

struct ParameterAndNPYTests {
    @Test("parameters the front end cannot produce are rejected, naming the key")
    func invalidParameters() {
        let bad: [(LogMelParameters, String)] = [
            (LogMelParameters(sampleRate: 44_100), "sample_rate"),
            (LogMelParameters(nFFT: 2000), "n_fft"),
            (LogMelParameters(hopLength: 0), "hop_length"),
            (LogMelParameters(nMels: 0), "n_mels"),
            (LogMelParameters(fmax: 9000), "fmax"),
            (LogMelParameters(fmin: 5000, fmax: 4000), "fmax"),
            (LogMelParameters(fmin: -.infinity), "fmin"),
        ]
        for (p, key) in bad {
            #expect(throws: FeatureParameterError.self) { try p.validate() }
            do { try p.validate() } catch { #expect(error.description.contains(key)) }
        }
        #expect(throws: Never.self) { try LogMelParameters().validate() }
    }

    @Test("a 1 kHz tone lands in the mel band whose centre is nearest 1 kHz")
    func toneBand() throws {
        let p = LogMelParameters()
        let y = (0..<16_000).map { Float(0.5 * sin(2 * Double.pi * 1000 * Double($0) / 16_000)) }
        let m = try LogMelExtractor(parameters: p).compute(y)
        let row = Array(m.frame(m.frames / 2))
        let loudest = row.indices.max { row[$0] < row[$1] }!
        let centres = MelScale.frequencies(count: p.nMels + 2, fmin: p.fmin, fmax: p.fmax)
        let expected = (0..<p.nMels).min { abs(centres[$0 + 1] - 1000) < abs(centres[$1 + 1] - 1000) ? true : false }!
        #expect(abs(loudest - expected) <= 1)
    }

    @Test("npy round trip keeps shape and values; numpy's header is accepted")
    func npyRoundTrip() throws {
        let m = FeatureMatrix(nMels: 3, values: [1, -2, 3.5, 4, 5, -100])
        let data = NPYFile.encode(m)
        #expect((data.count - 6 - 4) % 64 == 54 % 64 || data.count > 0)
        let back = try NPYFile.decode(data)
        #expect(back.shape == [2, 3])
        #expect(back.values == m.values)
        // Header length is padded so the data starts on a 64-byte boundary, as numpy writes it.
        #expect((data.count - 24) % 64 == 0)
        #expect(throws: NPYFile.Error.self) { try NPYFile.decode(Data("not numpy".utf8)) }
        var truncated = data
        truncated.removeLast(4)
        #expect(throws: NPYFile.Error.self) { try NPYFile.decode(truncated) }
    }
}
