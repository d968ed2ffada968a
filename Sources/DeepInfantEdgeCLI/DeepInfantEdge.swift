import Agent
import ArgumentParser

/// `deepinfant-edge`: the nursery cry agent and its tools. Each subcommand lives in its own file.
@main
struct DeepInfantEdge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deepinfant-edge",
        abstract: "Listens for infant cries, classifies why the baby cries, and reports over MQTT.",
        discussion: """
        Offline tools work on audio files (WAV, FLAC, OGG; any rate, resampled to 16 kHz mono).
        """,
        version: BuildInfo.version,
        subcommands: [RunCommand.self, ClassifyCommand.self, DetectCommand.self, TagCommand.self, FeaturesCommand.self, ModelCommand.self, BenchCommand.self, HACommand.self, RawAudioCommand.self, FleetCommand.self]
    )
}

enum BuildInfo {
    /// One version for the CLI and what the agent reports (`info`, HA discovery).
    static let version = AgentInfo.softwareVersion
}
