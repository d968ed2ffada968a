import Foundation

/// The real recordings committed under Tests/GateTests/Fixtures (see ATTRIBUTION.md there), for test
/// targets other than GateTests that need a real cry or real speech without a second copy of the files.
public enum Recordings {
    public static func url(_ name: String, file: String = #filePath) -> URL {
        var dir = URL(fileURLWithPath: file).deletingLastPathComponent()
        while dir.path != "/" {
            let candidate = dir.appendingPathComponent("Tests/GateTests/Fixtures/\(name)")
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
            dir.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: "Tests/GateTests/Fixtures/\(name)")
    }
}
