import ArgumentParser
import Capture
import Features
import Foundation
import Gate
import Inference

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
        // Offline: every core (the frames are the same as on one thread, bit for bit).
        let matrix = try ParallelLogMel.compute(samples, parameters: parameters, threads: ProcessInfo.processInfo.activeProcessorCount)
        try NPYFile.encode(matrix).write(to: URL(fileURLWithPath: out))
        print("\(out): \(matrix.frames) frames x \(matrix.nMels) mels (\(String(format: "%.2f", Double(samples.count) / 16_000)) s)")
    }
}

/// Log-mel parameters as command-line options, shared by `features` and `bench features`. Unset options
/// take the embedded model's feature parameters, so `features` writes exactly what the model sees.
struct FeatureOptions: ParsableArguments {
    @Option(name: .customLong("n-mels"), help: "Mel bands (default: the embedded model's).") var nMels: Int?
    @Option(help: "Lowest mel frequency in Hz (default: the embedded model's).") var fmin: Double?
    @Option(help: "Highest mel frequency in Hz (default: the embedded model's).") var fmax: Double?
    @Option(name: .customLong("n-fft"), help: "STFT window in samples (default: the embedded model's).") var nFFT: Int?
    @Option(help: "STFT hop in samples (default: the embedded model's).") var hop: Int?

    func parameters() throws -> LogMelParameters {
        let base = (try? ModelBundle.embeddedDefault(verifySelfTest: false))?.metadata.features.logMelParameters ?? LogMelParameters()
        let p = LogMelParameters(nFFT: nFFT ?? base.nFFT, hopLength: hop ?? base.hopLength, nMels: nMels ?? base.nMels,
                                 fmin: fmin ?? base.fmin, fmax: fmax ?? base.fmax)
        do { try p.validate() } catch { throw ValidationError(error.description) }
        return p
    }
}
