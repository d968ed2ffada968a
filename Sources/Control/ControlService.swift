import Agent
import Foundation
import Gate
import Inference
import Logging
import Messaging

/// The node's side of remote control: reads `cmd/<name>` from the node's publisher, acts on the running
/// agent through `AgentControl`, answers every command on `result` (``CommandResult``).
///
/// Commands run one at a time (this is an actor), in arrival order; a model install with its self-test
/// holds the queue for well under a second. Every command is validated completely before anything changes,
/// so a refused command leaves configuration, override file, model store and pipeline as they were.
///
/// - `config`: a JSON merge patch (RFC 7396) of the TOML-shaped configuration; `{}` returns the config.
/// - `model`: a signed ``ModelEnvelope``; installs and swaps the reason model between chunks.
/// - `rollback`: back to the previous reason model (and again: forth).
/// - `ping`, `selftest`: liveness, versions; the models' built-in self-tests.
public actor ControlService {
    public nonisolated let agent: Agent
    public nonisolated let publisher: NodePublisher
    public nonisolated let store: ModelStore
    private let trusted: [SigningKeys.TrustedKey]
    /// The reason model used when nothing is installed (the configured file, or the embedded default).
    private let baselineModel: ModelBundle
    private let logger: Logger
    private let startedAt = Date()
    private var effective: AgentConfig
    private var override: JSONValue
    /// The store entry of the reason model in force (nil: the baseline), and the model it replaced, kept
    /// in memory so that a rollback needs no disk.
    private var runningEntry: ModelStore.Entry?
    private var kept: (entry: ModelStore.Entry?, model: ModelBundle)?
    private var latestAnnounced: String?
    private var loop: Task<Void, Never>?

    /// Largest `cmd/config` (and `ping`/`selftest`/`rollback`) payload read.
    public static let maxCommandBytes = 65_536

    /// - Parameters:
    ///   - config: the effective configuration the agent was started with (override file included).
    ///   - trustedKeys: public keys whose model signatures are accepted.
    ///   - baselineModel: the reason model for "nothing installed"; default: the one the agent started with
    ///     unless that came from the model store (pass the configured model then, as `run` does).
    public init(agent: Agent, config: AgentConfig, trustedKeys: [SigningKeys.TrustedKey], publisher: NodePublisher,
                baselineModel: ModelBundle? = nil, logger: Logger = Logger(label: "deepinfant.control")) throws {
        self.agent = agent
        self.publisher = publisher
        self.trusted = trustedKeys
        self.effective = config
        self.override = try ConfigOverride.load(stateDir: config.node.stateDir)
        self.store = ModelStore(stateDir: config.node.stateDir)
        self.logger = logger
        let current = try? store.state().current
        if let current, agent.reasonModel.source == store.path(of: current) {
            runningEntry = current
        }
        self.baselineModel = baselineModel ?? agent.reasonModel
    }

    /// The reason model to start with: the installed one when it exists and validates, else `configured`
    /// (a broken install is logged and skipped, never fatal: the nursery stays protected).
    public static func startupModel(stateDir: String, configured: ModelBundle, logger: Logger) -> ModelBundle {
        switch ModelStore(stateDir: stateDir).currentModel() {
        case nil: return configured
        case let .success(model)?:
            logger.info("using the installed model", metadata: ["model": "\(model.metadata.name) \(model.metadata.version)"])
            return model
        case let .failure(error)?:
            logger.error("installed model rejected, using the configured one", metadata: ["error": "\(error)"])
            return configured
        }
    }

    /// Subscribes to commands (call before `agent.run()` connects, so none is missed) and publishes the
    /// retained config echo for Home Assistant's `number` entities.
    public func start() async {
        guard loop == nil else { return }
        let commands = publisher.commands
        loop = Task { [weak self] in
            for await command in commands {
                guard let self else { return }
                await self.handle(command)
            }
        }
        await publishConfigState()
    }

    public func stop() {
        loop?.cancel()
        loop = nil
    }

    /// The configuration in force (live changes applied; restart-only changes included as persisted).
    public var effectiveConfig: AgentConfig { effective }

    /// Processes a command and publishes the result (what the subscription loop does for each message).
    @discardableResult
    public func handle(_ command: NodeCommand) async -> CommandResult {
        let result = await process(command)
        do {
            try await publisher.publishResult(result)
        } catch {
            logger.warning("publishing the result of cmd/\(command.name) failed: \(error)")
        }
        return result
    }

    /// Processes a command without publishing the result (the fuzz tests' entry; `handle` wraps it).
    public func process(_ command: NodeCommand) async -> CommandResult {
        let result: CommandResult
        switch command.name {
        case "config": result = await configCommand(command.payload)
        case "model": result = modelCommand(command.payload)
        case "rollback": result = rollbackCommand(command.payload)
        case "ping": result = pingCommand(command.payload)
        case "selftest": result = selftestCommand(command.payload)
        default:
            let requestID: String? = if case let .success(object) = parseObject(command.payload), case let .string(id)? = object["request_id"] { id } else { nil }
            result = failure(command.name, requestID, error: "unknown_command", key: nil,
                             message: "unknown command \"\(command.name)\" (config, model, rollback, ping, selftest)")
        }
        if result.ok {
            logger.info("cmd/\(command.name) ok", metadata: ["message": "\(result.message ?? "")"])
        } else {
            logger.notice("cmd/\(command.name) refused", metadata: ["error": "\(result.error ?? "")", "message": "\(result.message ?? "")"])
        }
        return result
    }

    // MARK: - config

    private func configCommand(_ payload: [UInt8]) async -> CommandResult {
        let name = "config"
        let members: [String: JSONValue]
        switch parseObject(payload) {
        case let .failure(bad): return failure(name, nil, error: bad.code, key: bad.key, message: bad.message)
        case let .success(object): members = object
        }
        var patch = members
        let requestID: String?
        switch patch.removeValue(forKey: "request_id") {
        case nil: requestID = nil
        case let .string(id)?: requestID = id
        case .some: return failure(name, nil, error: "invalid_config", key: "request_id", message: "request_id must be a string")
        }
        if patch.isEmpty {
            var r = success(name, requestID, message: "current configuration")
            r.config = ConfigDocument.encode(effective, redactSecrets: true)
            return r
        }
        let change: ConfigChange
        do { change = try ConfigPatch.plan(patch: .object(patch), current: effective, override: override) } catch {
            return failure(name, requestID, error: "invalid_config", key: error.key, message: error.description)
        }
        let gateChanged = change.config.gate != effective.gate
        if gateChanged, !agent.control.isRunning {
            return failure(name, requestID, error: "not_running", key: nil, message: AgentControlError.notRunning.description)
        }
        let stateDir = effective.node.stateDir
        do { try ConfigOverride.save(change.override, stateDir: stateDir) } catch {
            return failure(name, requestID, error: "persist_failed", key: nil, message: "\(error)")
        }
        if gateChanged {
            do { try agent.control.applyGateSettings(change.config.gate) } catch {
                try? ConfigOverride.save(override, stateDir: stateDir)
                return failure(name, requestID, error: "apply_failed", key: "gate", message: "\(error)")
            }
        }
        var restartKeys = change.restartKeys
        if change.changedKeys.contains("log.level"), LiveLogLevel.isInstalled, let level = Logger.Level(rawValue: change.config.log.level) {
            LiveLogLevel.set(level)
            restartKeys.removeAll { $0 == "log.level" }
        }
        effective = change.config
        override = change.override
        agent.noteEffectiveConfig(effective)
        if gateChanged { await publishConfigState() }
        var r = success(name, requestID, message: change.changedKeys.isEmpty ? "no change"
                        : "changed \(change.changedKeys.joined(separator: ", "))"
                        + (restartKeys.isEmpty ? "" : "; restart to apply \(restartKeys.joined(separator: ", "))"))
        r.changed = change.changedKeys
        r.restartRequired = !restartKeys.isEmpty
        r.restartKeys = restartKeys.isEmpty ? nil : restartKeys
        return r
    }

    private func publishConfigState() async {
        let g = agent.control.gateSettings ?? effective.gate
        await publisher.publishConfigState(ConfigStatePayload(gate: .init(threshold: g.cryThreshold ?? agent.cryDetector.recommendedThreshold),
                                                              reason: .init(minConfidence: g.reasonMinConfidence)))
    }

    // MARK: - model

    private var runningModel: ModelBundle { agent.control.reasonModel ?? agent.reasonModel }

    private func modelCommand(_ payload: [UInt8]) -> CommandResult {
        var requestID: String?
        do {
            let envelope = try ModelEnvelope.decode(payload)
            requestID = envelope.requestID
            let bytes = try envelope.verify(trusted: trusted)
            announce(envelope.version)
            let running = runningModel.metadata.version
            if ModelVersion.compare(envelope.version, running) < 0, envelope.force != true {
                throw ModelUpdateError.downgrade(running: running, offered: envelope.version)
            }
            let model = try validate(bytes: bytes, envelope: envelope)
            let entry = ModelStore.Entry(sha256: envelope.sha256, version: model.metadata.version, name: model.metadata.name)
            let before = try storeState()
            var after = before
            if before.current?.sha256 != entry.sha256 {
                after = ModelStore.State(current: entry, previous: before.current)
            }
            let previous = try swap(to: model, entry: entry, before: before, after: after, bytes: bytes)
            var r = success("model", requestID, message: "installed \(model.metadata.name) \(model.metadata.version)")
            r.model = .init(name: model.metadata.name, version: model.metadata.version, sha256: entry.sha256)
            r.previousModel = .init(name: previous.metadata.name, version: previous.metadata.version)
            return r
        } catch let error as ModelUpdateError {
            return failure("model", requestID ?? Self.lenientRequestID(payload), error: error.code, key: error.key, message: error.description)
        } catch {
            return failure("model", requestID ?? Self.lenientRequestID(payload), error: "internal", key: nil, message: "\(error)")
        }
    }

    /// The `request_id` of an envelope that failed to decode as a whole (a missing or mistyped field), so
    /// the controller can still match the refusal to its request.
    private static func lenientRequestID(_ payload: [UInt8]) -> String? {
        struct OnlyID: Decodable {
            var requestID: String?
            enum CodingKeys: String, CodingKey { case requestID = "request_id" }
        }
        guard payload.count <= ModelEnvelope.maxEnvelopeBytes else { return nil }
        return (try? JSONDecoder().decode(OnlyID.self, from: Data(payload)))?.requestID
    }

    /// The pipeline must be running; then ``ModelAcceptance`` against this node's cry detector.
    private func validate(bytes: [UInt8], envelope: ModelEnvelope) throws(ModelUpdateError) -> ModelBundle {
        guard agent.control.isRunning else { throw .notRunning }
        return try ModelAcceptance.check(bytes: bytes, envelope: envelope, frontEnd: runningModel.metadata.features.logMelParameters,
                                         source: "cmd/model \(envelope.version)")
    }

    /// Commits `after` to the store (writing `bytes` first when given), then swaps between chunks; if the
    /// swap fails, `before` is committed again. Returns the model that was running.
    private func swap(to model: ModelBundle, entry: ModelStore.Entry?, before: ModelStore.State, after: ModelStore.State,
                      bytes: [UInt8]?) throws(ModelUpdateError) -> ModelBundle {
        do { try store.commit(after, writing: bytes, for: entry) } catch { throw .storeFailed("\(error)") }
        let previous: ModelBundle
        do { previous = try agent.control.swapReasonModel(model) } catch {
            try? store.commit(before)
            throw .swapFailed("\(error)")
        }
        if entry != runningEntry || previous.source != model.source { kept = (runningEntry, previous) }
        runningEntry = entry
        return previous
    }

    private func storeState() throws(ModelUpdateError) -> ModelStore.State {
        do { return try store.state() } catch { throw .storeFailed("reading \(store.directory)/installed.json: \(error)") }
    }

    /// Remembers the newest signed version seen, for the Home Assistant `update` entity.
    private func announce(_ version: String) {
        let installed = runningModel.metadata.version
        let newest = [latestAnnounced, version, installed].compactMap { $0 }.max { ModelVersion.compare($0, $1) < 0 }!
        guard newest != latestAnnounced else { return }
        latestAnnounced = newest
        agent.announceLatestModelVersion(newest)
    }

    // MARK: - rollback

    private func rollbackCommand(_ payload: [UInt8]) -> CommandResult {
        var requestID: String?
        do {
            switch parseObject(payload, allowEmpty: true) {
            case let .failure(bad): return failure("rollback", nil, error: bad.code, key: bad.key, message: bad.message)
            case let .success(object): if case let .string(id)? = object["request_id"] { requestID = id }
            }
            guard agent.control.isRunning else { throw ModelUpdateError.notRunning }
            let before = try storeState()
            let target: ModelStore.Entry?
            if let previous = before.previous { target = previous } else if before.current != nil { target = nil } else {
                throw ModelUpdateError.nothingToRollBack
            }
            let model: ModelBundle
            if let kept, kept.entry == target {
                model = kept.model
            } else if let target {
                do { model = try store.load(target) } catch { throw ModelUpdateError.invalidModel(error) }
            } else {
                model = baselineModel
            }
            let after = ModelStore.State(current: target, previous: before.current)
            let previous = try swap(to: model, entry: target, before: before, after: after, bytes: nil)
            var r = success("rollback", requestID, message: "rolled back to \(model.metadata.name) \(model.metadata.version)")
            r.model = .init(name: model.metadata.name, version: model.metadata.version, sha256: target?.sha256)
            r.previousModel = .init(name: previous.metadata.name, version: previous.metadata.version, sha256: before.current?.sha256)
            return r
        } catch let error as ModelUpdateError {
            return failure("rollback", requestID, error: error.code, key: error.key, message: error.description)
        } catch {
            return failure("rollback", requestID, error: "internal", key: nil, message: "\(error)")
        }
    }

    // MARK: - ping, selftest

    private func pingCommand(_ payload: [UInt8]) -> CommandResult {
        let requestID: String?
        switch parseObject(payload, allowEmpty: true) {
        case let .failure(bad): return failure("ping", nil, error: bad.code, key: bad.key, message: bad.message)
        case let .success(object): if case let .string(id)? = object["request_id"] { requestID = id } else { requestID = nil }
        }
        let model = runningModel
        var r = success("ping", requestID, message: "pong")
        r.uptimeS = (Date().timeIntervalSince(startedAt) * 10).rounded() / 10
        r.softwareVersion = AgentInfo.softwareVersion
        r.model = .init(name: model.metadata.name, version: model.metadata.version, sha256: runningEntry?.sha256)
        r.pipelineRunning = agent.control.isRunning
        return r
    }

    private func selftestCommand(_ payload: [UInt8]) -> CommandResult {
        let requestID: String?
        switch parseObject(payload, allowEmpty: true) {
        case let .failure(bad): return failure("selftest", nil, error: bad.code, key: bad.key, message: bad.message)
        case let .success(object): if case let .string(id)? = object["request_id"] { requestID = id } else { requestID = nil }
        }
        let results = (agent.cryDetector.models + [.crnn(runningModel)]).map { model in
            let r = model.runSelfTest()
            return CommandResult.SelfTestSummary(model: model.name, version: model.version, passed: r.passed,
                                                 maxDelta: r.maxDelta.isFinite ? r.maxDelta : -1, tolerance: r.tolerance)
        }
        let passed = results.allSatisfy(\.passed)
        var r = passed ? success("selftest", requestID, message: "all self-tests passed")
            : failure("selftest", requestID, error: "selftest_failed", key: results.first { !$0.passed }?.model,
                      message: "self-test failed: \(results.filter { !$0.passed }.map(\.model).joined(separator: ", "))")
        r.selftest = results
        return r
    }

    // MARK: - helpers

    private struct BadPayload: Error {
        var code: String
        var key: String?
        var message: String
    }

    /// The payload as a JSON object (`allowEmpty`: zero bytes count as `{}`).
    private func parseObject(_ payload: [UInt8], allowEmpty: Bool = false) -> Result<[String: JSONValue], BadPayload> {
        if payload.isEmpty || payload.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            return allowEmpty ? .success([:]) : .failure(BadPayload(code: "malformed_json", key: "(root)", message: "empty payload"))
        }
        guard payload.count <= Self.maxCommandBytes else {
            return .failure(BadPayload(code: "oversized", key: "(root)", message: "payload too large: \(payload.count) bytes (limit \(Self.maxCommandBytes))"))
        }
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(payload)) else {
            return .failure(BadPayload(code: "malformed_json", key: "(root)", message: "the payload is not valid JSON"))
        }
        guard case let .object(members) = value else {
            return .failure(BadPayload(code: "invalid_config", key: "(root)", message: "the payload must be a JSON object, got \(ConfigDocument.kind(value))"))
        }
        return .success(members)
    }

    private func success(_ command: String, _ requestID: String?, message: String) -> CommandResult {
        CommandResult(command: command, requestID: requestID, nodeID: effectiveNodeID, ok: true, message: message,
                      configHash: ConfigHash.of(effective))
    }

    private func failure(_ command: String, _ requestID: String?, error: String, key: String?, message: String) -> CommandResult {
        CommandResult(command: command, requestID: requestID, nodeID: effectiveNodeID, ok: false, error: error, key: key,
                      message: message, configHash: ConfigHash.of(effective))
    }

    /// The id the node runs under (a changed `node.id` takes effect only after a restart).
    private var effectiveNodeID: String { publisher.topics.nodeID }
}
