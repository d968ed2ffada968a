import Foundation

/// One ALSA configuration per test process, loaded through `ALSA_CONFIG_PATH`, that every test target
/// adds its capture PCMs to: ALSA's `file` plugin over `null`, which captures the bytes of a raw S16_LE
/// file (CI machines have no sound card). All test targets run in one process and the environment
/// variable is process-wide, so they must share one file rather than each point ALSA at its own. ALSA
/// re-reads the file when it changes (it compares modification times on each open).
public enum ALSATestConfig {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var pcms: [String: String] = [:]

    /// The folder holding the config and, by convention, the raw files tests write.
    public static let directory: URL = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("deepinfant-alsa-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }()

    public static var configPath: String { directory.appendingPathComponent("asound.conf").path }

    /// Defines (or redefines) a capture PCM `name` that reads `infile` (raw S16_LE).
    public static func definePCM(_ name: String, infile: String) {
        lock.lock()
        defer { lock.unlock() }
        pcms[name] = infile
        var text = "pcm.null { type null }\n"
        for (pcm, file) in pcms.sorted(by: { $0.key < $1.key }) {
            text += "pcm.\(pcm) { type file slave.pcm \"null\" file \"/dev/null\" format \"raw\" infile \"\(file)\" }\n"
        }
        let tmp = configPath + ".tmp"
        try? text.write(toFile: tmp, atomically: false, encoding: .utf8)
        rename(tmp, configPath)
        setenv("ALSA_CONFIG_PATH", configPath, 1)
    }

    /// Writes samples in [-1, 1] as raw S16_LE (exact for 16-bit sources: x · 32768).
    public static func writeRaw(_ samples: [Float], to path: String) throws {
        let ints = samples.map { Int16(clamping: Int(($0 * 32768).rounded())) }
        try ints.withUnsafeBytes { Data($0) }.write(to: URL(fileURLWithPath: path))
    }
}
