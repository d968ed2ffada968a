import ArgumentParser
import Capture
import Features
import Foundation

/// `features`: the exact log-mel features the agent computes, as a NumPy file for the training code.
struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "Write the log-mel spectrogram of an audio file as a float32 .npy of shape [frames, n_mels]."
    )

    @Argument(help: "Audio file (WAV, FLAC, OGG; resampled to 16 kHz mono).")
    var file: String

    @Option(name: .long, help: "Output .npy path.")
    var out: String

    @OptionGroup var feature: FeatureOptions

    func run() throws {
        let parameters = try feature.parameters()
        let samples = try AudioFile.read(path: file)
        let matrix = try LogMelExtractor(parameters: parameters).compute(samples)
        try NPYFile.encode(matrix).write(to: URL(fileURLWithPath: out))
        print("\(out): \(matrix.frames) frames x \(matrix.nMels) mels (\(String(format: "%.2f", Double(samples.count) / 16_000)) s)")
    }
}

/// Log-mel parameters as command-line options, shared by `features` and `bench features`.
struct FeatureOptions: ParsableArguments {
    @Option(name: .customLong("n-mels"), help: "Mel bands.") var nMels = 64
    @Option(help: "Lowest mel frequency (Hz).") var fmin = 0.0
    @Option(help: "Highest mel frequency (Hz).") var fmax = 8000.0
    @Option(name: .customLong("n-fft"), help: "STFT window (samples).") var nFFT = 2048
    @Option(help: "STFT hop (samples).") var hop = 512

    func parameters() throws -> LogMelParameters {
        let p = LogMelParameters(nFFT: nFFT, hopLength: hop, nMels: nMels, fmin: fmin, fmax: fmax)
        do { try p.validate() } catch { throw ValidationError(error.description) }
        return p
    }
}
