import Foundation

/// An ALSA configuration owned by the tests (loaded through ALSA_CONFIG_PATH): `file` PCMs over the `null`
/// plugin, which capture the bytes of a raw S16_LE file. There is no sound card on CI machines.
enum ALSATestDevices {
    /// Temp folder holding the config and the raw files it names.
    static let directory: URL = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("deepinfant-alsa-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let conf = """
        pcm.null { type null }
        pcm.cryfile { type file slave.pcm "null" file "/dev/null" format "raw" infile "\(dir.path)/cry.raw" }
        pcm.tone48k { type file slave.pcm "null" file "/dev/null" format "raw" infile "\(dir.path)/tone48k.raw" }
        pcm.late { type file slave.pcm "null" file "/dev/null" format "raw" infile "\(dir.path)/late.raw" }
        """
        let confURL = dir.appendingPathComponent("asound.conf")
        try! conf.write(to: confURL, atomically: true, encoding: .utf8)
        setenv("ALSA_CONFIG_PATH", confURL.path, 1)
        return dir
    }()

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Writes samples in [-1, 1] as raw S16_LE (exact for 16-bit sources: x · 32768).
    static func writeRaw(_ samples: [Float], to name: String) throws {
        let ints = samples.map { Int16(clamping: Int(($0 * 32768).rounded())) }
        try ints.withUnsafeBytes { Data($0) }.write(to: URL(fileURLWithPath: path(name)))
    }
}

enum Fixtures {
    static func path(_ name: String) -> String {
        Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)!.path
    }
}

/// Energy of one frequency (Goertzel), for checking tones survive and aliases do not.
func toneLevel(_ x: [Float], frequency: Double, sampleRate: Double = 16_000) -> Double {
    let w = 2 * Double.pi * frequency / sampleRate, c = 2 * cos(w)
    var s1 = 0.0, s2 = 0.0
    for v in x {
        let s0 = Double(v) + c * s1 - s2
        s2 = s1; s1 = s0
    }
    let power = s1 * s1 + s2 * s2 - c * s1 * s2
    return 10 * log10(max(1e-30, power / Double(x.count * x.count)))
}
