import ArgumentParser
import Capture
import Foundation

/// `raw-audio`: writes recordings (with silence between them) as raw S16_LE 16 kHz mono, the input of the
/// ALSA `file` plugin that the demo and tests capture from on machines without a microphone.
struct RawAudioCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raw-audio",
        abstract: "Concatenate recordings, with silence around them, into raw S16_LE 16 kHz mono.",
        shouldDisplay: false
    )

    @Argument(help: "Audio files, in order.") var files: [String]
    @Option(help: "Output raw file.") var out: String
    @Option(help: "Seconds of silence before each file and at the end.") var gap = 2.0

    func run() throws {
        let silence = [Float](repeating: 0, count: Int(gap * 16_000))
        var audio: [Float] = []
        for file in files { audio += silence + (try AudioFile.read(path: file)) }
        audio += silence
        let ints = audio.map { Int16(clamping: Int(($0 * 32768).rounded())) }
        try ints.withUnsafeBytes { Data($0) }.write(to: URL(fileURLWithPath: out))
        print(String(format: "%@: %.1f s", out, Double(audio.count) / 16_000))
    }
}
