import Agent
import FuzzSupport

/// Any text as config.toml: a configuration or a `ConfigError` naming the key (exit 78), nothing else.
@_cdecl("FuzzConfigTOML_main")
func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.run(argc, argv) { bytes in
        _ = try? ConfigLoader.parse(String(decoding: bytes, as: UTF8.self))
    }
}
