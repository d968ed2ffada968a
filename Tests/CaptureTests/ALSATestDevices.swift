import TestSupport
import Foundation

/// The capture tests' PCMs, in the test process's shared ALSA config (`TestSupport`).
enum ALSATestDevices {
    static let directory: URL = {
        for name in ["cryfile", "tone48k", "late"] {
            ALSATestConfig.definePCM(name, infile: ALSATestConfig.directory.appendingPathComponent("capture-\(name).raw").path)
        }
        return ALSATestConfig.directory
    }()

    static func path(_ name: String) -> String {
        let pcm = name.replacingOccurrences(of: ".raw", with: "")
        return directory.appendingPathComponent("capture-\(pcm == "cry" ? "cryfile" : pcm).raw").path
    }

    static func writeRaw(_ samples: [Float], to name: String) throws {
        try ALSATestConfig.writeRaw(samples, to: path(name))
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
