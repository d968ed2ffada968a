import Capture
import Features
import Foundation
import Testing

/// Parity with librosa 0.11 (`melspectrogram(center=True, pad_mode="constant", power=2)` + `power_to_db`),
/// on real recordings and synthetic signals; references from `training/make_feature_fixtures.py`.
struct LibrosaParityTests {
    struct Case: Decodable, CustomTestStringConvertible, Sendable {
        struct Params: Decodable, Sendable {
            var n_mels: Int
            var fmin: Double
            var fmax: Double
            var n_fft: Int
            var hop_length: Int
        }

        var name: String
        var input: String
        var params: Params
        var expected: String
        var testDescription: String { expected }

        var parameters: LogMelParameters {
            LogMelParameters(nFFT: params.n_fft, hopLength: params.hop_length, nMels: params.n_mels,
                             fmin: params.fmin, fmax: params.fmax)
        }
    }

    static let cases: [Case] = {
        struct File: Decodable { var cases: [Case] }
        let data = try! Data(contentsOf: Fixtures.url("cases.json"))
        return try! JSONDecoder().decode(File.self, from: data).cases
    }()

    static func samples(_ c: Case) throws -> [Float] {
        if c.input.hasSuffix(".npy") {
            return try NPYFile.decode(Data(contentsOf: Fixtures.url(c.input))).values
        }
        return try AudioFile.read(path: Fixtures.url(c.input).path)
    }

    @Test("batch log-mel matches librosa within 0.01 dB above -80 dB", arguments: cases)
    func batchMatchesLibrosa(_ c: Case) throws {
        let reference = try NPYFile.decode(Data(contentsOf: Fixtures.url(c.expected)))
        let y = try Self.samples(c)
        let ours = try LogMelExtractor(parameters: c.parameters).compute(y)
        #expect(reference.shape == [ours.frames, ours.nMels])
        try #require(reference.values.count == ours.values.count)
        var maxDelta: Float = 0, compared = 0
        for (r, o) in zip(reference.values, ours.values) where r > -80 {
            maxDelta = max(maxDelta, abs(r - o))
            compared += 1
        }
        #expect(maxDelta <= 0.01, "max |Δ| = \(maxDelta) dB over \(compared) bins")
        print("librosa parity \(c.expected): max |Δ| = \(maxDelta) dB over \(compared) bins above -80 dB")
        if !c.name.hasPrefix("silence") { #expect(compared > 0) }
        // Below -80 dB float32 rounding in the FFT dominates; still close to librosa there.
        let allDelta = zip(reference.values, ours.values).map { abs($0 - $1) }.max() ?? 0
        #expect(allDelta < 3, "max |Δ| over all bins = \(allDelta) dB")
    }
}

enum Fixtures {
    static func url(_ name: String) -> URL {
        Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)!
    }
}
