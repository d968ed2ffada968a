import ArgumentParser

/// `bench`: throughput and latency measurements of the pipeline stages (use a release build).
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure speed and memory of pipeline stages (build with -c release).",
        subcommands: [BenchFeaturesCommand.self, BenchModelCommand.self, BenchPipelineCommand.self]
    )
}
