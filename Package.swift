// swift-tools-version:6.0
import PackageDescription

let optimised: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "DeepInfantEdge",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "deepinfant-edge", targets: ["DeepInfantEdgeCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // C libraries from Debian, found with pkg-config (deploy/install-deps.sh installs them).
        .systemLibrary(name: "CALSA", pkgConfig: "alsa", providers: [.apt(["libasound2-dev"])]),
        .systemLibrary(name: "CFFTW", pkgConfig: "fftw3f", providers: [.apt(["libfftw3-dev"])]),
        .systemLibrary(name: "CSndfile", pkgConfig: "sndfile", providers: [.apt(["libsndfile1-dev"])]),
        .systemLibrary(name: "CSamplerate", pkgConfig: "samplerate", providers: [.apt(["libsamplerate0-dev"])]),
        .systemLibrary(name: "CMosquitto", pkgConfig: "libmosquitto", providers: [.apt(["libmosquitto-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // What Swift cannot import from ALSA directly (variadic error handler).
        .target(name: "CALSAShim", dependencies: ["CALSA"]),

        .target(name: "Capture", dependencies: [
            "CALSA", "CALSAShim", "CSndfile", "CSamplerate",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The numeric modules are optimised in debug builds too: the tests run YAMNet over minutes of audio,
        // ~10x slower unoptimised.
        .target(name: "Features", dependencies: ["CFFTW"], swiftSettings: optimised),
        // How deep outside JSON may nest, checked before Foundation's scanner (which stops the process at 513).
        .target(name: "JSONLimits"),
        // Test support only (no product depends on it): the shared ALSA config, child processes, free ports.
        .target(name: "TestSupport"),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]), .target(name: "CInferenceSupport"),
        // The shipped model files (Sources/Inference/Resources/), linked into the executable with .incbin.
        .target(name: "CEmbeddedModels", cSettings: [.headerSearchPath("../Inference/Resources")]),
        .target(name: "Inference", dependencies: ["Features", "JSONLimits", "COpenBLAS", "CInferenceSupport", "CEmbeddedModels"],
                exclude: ["Resources"], swiftSettings: optimised),
        .target(name: "Gate", dependencies: ["Features", "Inference"]),
        // Caregiver feedback: the episode store, the per-home veto and reason layer.
        .target(name: "Feedback", dependencies: ["Gate", "Messaging", "SQLite"]),
        .target(name: "Agent", dependencies: [
            "Capture", "Features", "Gate", "Inference", "JSONLimits", "Messaging", "Feedback",
            .product(name: "TOMLKit", package: "TOMLKit"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Control", dependencies: [
            "Agent", "Features", "Feedback", "Gate", "Inference", "JSONLimits", "Messaging",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The SQLite connection the outbox and the feedback store share.
        .target(name: "SQLite", dependencies: ["CSQLite"]),
        .target(name: "Messaging", dependencies: ["CMosquitto", "SQLite", "JSONLimits", .product(name: "Logging", package: "swift-log")]),
        .executableTarget(name: "DeepInfantEdgeCLI", dependencies: [
            "Capture", "Features", "Inference", "Gate", "Agent", "Control", "JSONLimits", "Messaging", "Feedback",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        .testTarget(name: "CaptureTests", dependencies: ["Capture", "Features", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "FeaturesTests", dependencies: ["Features", "Capture"], resources: [.copy("Fixtures")]),
        .testTarget(name: "GateTests", dependencies: ["Gate", "Capture", "Inference", "Features"], resources: [.copy("Fixtures")]),
        .testTarget(name: "AgentTests", dependencies: ["Agent", "Messaging", "Gate", "Inference", "Capture", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ControlTests", dependencies: ["Control", "Agent", "JSONLimits", "Messaging", "Gate", "Inference", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "FeedbackTests", dependencies: ["Feedback", "Agent", "Control", "Messaging", "Gate", "Inference", "Capture", "TestSupport"]),
        .testTarget(name: "MessagingTests", dependencies: ["Messaging", "TestSupport"]),
        .testTarget(name: "InferenceTests", dependencies: ["Inference", "Features", "TestSupport"], resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v6]
)

// libFuzzer harnesses (deploy/fuzz.sh): built only with DEEPINFANT_FUZZ=1, since libFuzzer supplies their main.
import Foundation
if ProcessInfo.processInfo.environment["DEEPINFANT_FUZZ"] == "1" {
    let fuzzFlags: [SwiftSetting] = [.unsafeFlags(["-parse-as-library", "-sanitize=fuzzer"])]
    let fuzzLink: [LinkerSetting] = [.unsafeFlags(["-sanitize=fuzzer", "-use-ld=lld"])]
    package.targets.append(.target(name: "FuzzSupport", path: "Fuzz/FuzzSupport", swiftSettings: fuzzFlags))
    let harnesses: [(String, [Target.Dependency])] = [
        ("FuzzModelFile", ["Inference"]),
        ("FuzzModelEnvelope", ["Control", .product(name: "Crypto", package: "swift-crypto")]),
        ("FuzzConfigTOML", ["Agent"]),
        ("FuzzConfigPatch", ["Agent", "Control", "Inference", "JSONLimits"]),
        ("FuzzNPY", ["Features"]),
        ("FuzzAudioFile", ["Capture"]),
    ]
    for (name, deps) in harnesses {
        package.targets.append(.executableTarget(name: name, dependencies: deps + ["FuzzSupport"], path: "Fuzz/\(name)",
                                                 swiftSettings: fuzzFlags, linkerSettings: fuzzLink))
        package.products.append(.executable(name: name, targets: [name]))
    }
}

