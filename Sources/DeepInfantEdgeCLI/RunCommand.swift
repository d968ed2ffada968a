import Agent
import ArgumentParser
import Control
import Foundation
import Logging

/// `run`: the agent, the product's main job.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Listen (ALSA or a file), detect cries, classify the reason, report over MQTT.",
        discussion: """
        Configuration comes from --config (TOML; see config.example.toml), then the environment
        (DEEPINFANT_MQTT_PASSWORD), then these options. A bad configuration exits with status 78 (EX_CONFIG)
        naming the key, before anything starts. SIGTERM/SIGINT stop it cleanly: the current episode is closed,
        the outbox flushed as far as the broker allows, and `offline` published.
        """
    )

    @Option(help: "Configuration file (TOML).") var config: String?
    @Option(help: "Broker, mqtt://HOST:PORT or mqtts://HOST:PORT.") var broker: String?
    @Option(name: .customLong("node-id"), help: "Node id (topic segment and MQTT client id).") var nodeID: String?
    @Option(name: .customLong("audio-device"), help: "ALSA capture PCM, e.g. default or plughw:1,0.") var audioDevice: String?
    @Option(help: "Analyse this audio file instead of a live device (the agent stops at its end).") var input: String?
    @Option(name: .customLong("state-dir"), help: "Directory for the outbox and installed models.") var stateDir: String?
    @Option(help: "Reason model file (default: the embedded model).") var model: String?
    @Flag(name: .customLong("real-time"), help: "Pace file input (and ALSA file/null plugins) to real time.") var realTime = false
    @Option(help: "Stop after this many seconds (demo and tests).") var duration: Double?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical.") var logLevel: String?
    @Option(name: .customLong("trusted-key"), help: ArgumentHelp("Ed25519 public key file (model keygen's signing.pub) whose signed models cmd/model accepts; repeatable, adds to [control] trusted_keys.", valueName: "file"))
    var trustedKeys: [String] = []

    func run() async throws {
        let cfg: AgentConfig
        do { cfg = try effectiveConfig() } catch {
            FileHandle.standardError.write(Data("deepinfant-edge: \(error)\n".utf8))
            throw ExitCode(78)
        }
        let level = Logger.Level(rawValue: cfg.log.level) ?? .info
        // Standard-error handlers whose level cmd/config can change while running.
        LiveLogLevel.bootstrap(level: level)
        let logger = Logger(label: "deepinfant.agent")
        let models = try Agent.loadModels(cfg, logger: logger)
        // The installed model of every slot (reason, cry, yamnet) that validates and fits the others.
        let installed = ControlService.startupModels(stateDir: cfg.node.stateDir, configured: models, logger: logger)
        let agent = Agent(config: cfg, cryDetector: installed.cry, reasonModel: installed.reason, logger: logger)
        let keys: [SigningKeys.TrustedKey]
        do { keys = try SigningKeys.loadTrusted(paths: cfg.control.trustedKeys + trustedKeys) } catch {
            FileHandle.standardError.write(Data("deepinfant-edge: config error: control.trusted_keys: \(error)\n".utf8))
            throw ExitCode(78)
        }
        let control = try ControlService(agent: agent, config: cfg, trustedKeys: keys, publisher: try agent.publisher(),
                                         baselineModel: models.reason, baselineCryDetector: models.cry)
        await control.start()
        let task = Task { try await agent.run() }
        let signals = SignalWatcher(signals: [SIGTERM, SIGINT]) { signal in
            logger.notice("signal \(signal): shutting down")
            task.cancel()
        }
        if let duration {
            Task {
                try await Task.sleep(for: .seconds(duration))
                task.cancel()
            }
        }
        try await task.value
        await control.stop()
        signals.cancel()
    }

    func effectiveConfig() throws(ConfigError) -> AgentConfig {
        var c = try config.map { path throws(ConfigError) in try ConfigLoader.load(path: path) } ?? AgentConfig()
        // Changes received over MQTT (cmd/config), persisted in the state directory; the environment and
        // explicit options below still win.
        if let stateDir { c.node.stateDir = stateDir }
        c = try ConfigOverride.apply(to: c)
        ConfigLoader.applyEnvironment(&c)
        if let broker { c.mqtt.broker = broker }
        if let nodeID { c.node.id = nodeID }
        if let audioDevice { c.audio.device = audioDevice }
        if let input { c.audio.input = input }
        if let stateDir { c.node.stateDir = stateDir }
        if let model { c.model.path = model }
        if realTime { c.audio.realTime = true }
        if let logLevel { c.log.level = logLevel }
        try c.validate()
        if let input = c.audio.input, !FileManager.default.isReadableFile(atPath: input) {
            throw ConfigError(key: "audio.input", reason: "cannot read \(input)")
        }
        return c
    }
}

/// Turns SIGTERM/SIGINT into a callback on a dispatch queue (the default handlers would kill the process
/// before the outbox is flushed and `offline` is published).
final class SignalWatcher {
    private let sources: [any DispatchSourceSignal]

    init(signals: [Int32], handler: @escaping @Sendable (Int32) -> Void) {
        sources = signals.map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { handler(sig) }
            source.resume()
            return source
        }
    }

    func cancel() { sources.forEach { $0.cancel() } }
}
