import Foundation

/// Finds this module's SwiftPM resource bundle without `Bundle.module`, whose generated accessor stops
/// the process (fatalError) when the bundle is missing; a missing default model must be an error.
enum ResourceLocator {
    /// SwiftPM names the bundle `<package>_<target>.resources` on Linux (`.bundle` on Apple platforms).
    static let bundleNames = ["DeepInfantEdge_Inference.resources", "DeepInfantEdge_Inference.bundle",
                              "main_Inference.resources", "main_Inference.bundle"]

    /// The directory holding `Resources/` files, searched next to the executable (how the bundle is
    /// installed and how `swift build`/`swift test` lay it out), then in `DEEPINFANT_RESOURCES`.
    static func resourceDirectory() -> String? {
        var roots: [String] = []
        if let env = ProcessInfo.processInfo.environment["DEEPINFANT_RESOURCES"], !env.isEmpty { roots.append(env) }
        let exe = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath().deletingLastPathComponent().path
        roots.append(exe)
        roots.append(Bundle.main.bundleURL.path)
        if let r = Bundle.main.resourceURL?.path { roots.append(r) }
        // `swift test` runs the .xctest binary from the build directory too; its bundle lives beside it.
        let fm = FileManager.default
        for root in roots {
            for name in bundleNames {
                for sub in ["Resources", ""] {
                    let dir = sub.isEmpty ? "\(root)/\(name)" : "\(root)/\(name)/\(sub)"
                    if fm.fileExists(atPath: "\(dir)/\(ModelBundle.embeddedModelName)") { return dir }
                }
            }
        }
        return nil
    }
}
