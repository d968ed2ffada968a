import Foundation

/// The audio files a command was given: a file named on the command line is taken as it is (and reported
/// as an error if it is not audio), a directory stands for the audio files under it, found by extension,
/// sorted, hidden entries skipped, so `classify samples/` does not choke on `samples/ATTRIBUTION.md`.
enum AudioInputs {
    /// What libsndfile (with its FLAC/Ogg/MP3 codecs) reads, in lower case.
    static let extensions: Set<String> = ["wav", "wave", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "aifc", "au", "caf", "w64", "rf64"]

    static func expand(_ arguments: [String]) -> [String] {
        let fm = FileManager.default
        var out: [String] = []
        for arg in arguments {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: arg, isDirectory: &isDir), isDir.boolValue else {
                out.append(arg)
                continue
            }
            let base = URL(fileURLWithPath: arg)
            let found = (fm.enumerator(at: base, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles]))?
                .compactMap { $0 as? URL }
                .filter { extensions.contains($0.pathExtension.lowercased()) && ((try? $0.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile ?? false) }
                .map { arg.hasSuffix("/") ? arg + relative($0, to: base) : arg + "/" + relative($0, to: base) } ?? []
            out += found.sorted()
        }
        return out
    }

    private static func relative(_ url: URL, to base: URL) -> String {
        let b = base.standardizedFileURL.resolvingSymlinksInPath().path
        let p = url.standardizedFileURL.resolvingSymlinksInPath().path
        return p.hasPrefix(b + "/") ? String(p.dropFirst(b.count + 1)) : url.lastPathComponent
    }
}
