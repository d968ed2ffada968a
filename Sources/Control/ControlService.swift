import Agent
import Crypto
import Foundation
import JSONLimits
import Gate
import Inference
import Logging
import Messaging

/// The node's side of remote control: reads `cmd/<name>` from the node's publisher, acts on the running
/// agent through `AgentControl`, answers every command on `result` (``CommandResult``).
///
/// Commands run one at a time (this is an actor), in arrival order; a model install with its self-test
/// holds the queue for well under a second. Every command is validated completely before anything changes,
/// so a refused command leaves configuration, override file, model stores and pipeline as they were.
///
/// - `config`: a JSON merge patch (RFC 7396) of the TOML-shaped configuration; `{}` returns the config.
/// - `model`: a signed ``ModelEnvelope``; the model file says which model slot it is for (``ModelSlot``:
///   the reason model, the cry detector's model — a cry head on a yamnet node, a CRNN cry detector on a
///   crnn node —, the YAMNet body); it is checked against the models of the other slots, self-tested,
///   stored in that slot's ``ModelStore`` and swapped in between chunks.
/// - `rollback`: back to the previous model of a slot (`"slot"`, default `reason`), and again: forth.
/// - `ping`, `selftest`: liveness, versions; the models' built-in self-tests.
public actor ControlService {
    public nonisolated let agent: Agent
    public nonisolated let publisher: NodePublisher
    /// The reason slot's store (``stores`` has every slot's).
    public nonisolated let store: ModelStore
    public nonisolated let stores: [ModelSlot: ModelStore]
    private let trusted: [SigningKeys.TrustedKey]
    /// The models used when nothing is installed in a slot (the configured files, or the embedded defaults).
    private let baselineModel: ModelBundle
    private let baselineDetector: CryDetectorModel
    private let logger: Logger
    private let startedAt = Date()
    private var effective: AgentConfig
    private var override: JSONValue
    /// Per slot: the store entry of the model in force (absent: the baseline), and the model it replaced,
    /// kept in memory so that a rollback needs no disk.
    private var runningEntries: [ModelSlot: ModelStore.Entry] = [:]
    private var kept: [ModelSlot: (entry: ModelStore.Entry?, model: AnyModel)] = [:]
    private var latestAnnounced: [ModelSlot: String] = [:]
    private var loop: Task<Void, Never>?
    private let commandQueue: Int
    /// The latest successful answers by (command, request id): a controller re-sends a command whose answer
    /// it may have missed (a broker restart), and the node answers it again without running it twice. A
    /// refusal changed nothing, so a repeat of it simply runs again.
    private var answered: [String: CommandResult] = [:]
    private var answeredOrder: [String] = []
    static let rememberedAnswers = 64

    /// Largest `cmd/config` (and `ping`/`selftest`/`rollback`) payload read.
    public static let maxCommandBytes = 65_536

    /// - Parameters:
    ///   - config: the effective configuration the agent was started with (override file included).
    ///   - trustedKeys: public keys whose model signatures are accepted.
    ///   - baselineModel: the reason model for "nothing installed"; default: the one the agent started with
    ///     unless that came from the model store (pass the configured model then, as `run` does).
    ///   - baselineCryDetector: the same for the cry and yamnet slots: the configured cry detector.
    ///   - commandQueue: commands that may wait while one is handled; beyond that they are answered `busy`.
    public init(agent: Agent, config: AgentConfig, trustedKeys: [SigningKeys.TrustedKey], publisher: NodePublisher,
                baselineModel: ModelBundle? = nil, baselineCryDetector: CryDetectorModel? = nil,
                commandQueue: Int = ControlService.queuedCommands,
                logger: Logger = Logger(label: "deepinfant.control")) throws {
        self.commandQueue = commandQueue
        self.agent = agent
        self.publisher = publisher
        self.trusted = trustedKeys
        self.effective = config
        self.override = try ConfigOverride.load(stateDir: config.node.stateDir)
        var stores: [ModelSlot: ModelStore] = [:]
        for slot in ModelSlot.allCases { stores[slot] = ModelStore(stateDir: config.node.stateDir, slot: slot) }
        self.stores = stores
        self.store = stores[.reason]!
        self.logger = logger
        for (slot, store) in stores {
            let running = slot == .reason ? agent.reasonModel.source : agent.cryDetector.model(in: slot)?.source
            if let current = try? store.state().current, running == store.path(of: current) { runningEntries[slot] = current }
        }
        self.baselineModel = baselineModel ?? agent.reasonModel
        self.baselineDetector = baselineCryDetector ?? agent.cryDetector
        // A newer model the store still holds (installed, then rolled back) is an available update: the
        // Home Assistant `update` entity says so after a restart too.
        for slot in ModelSlot.slots(for: agent.cryDetector) {
            guard let running = slot == .reason ? AnyModel.crnn(agent.reasonModel) : agent.cryDetector.model(in: slot),
                  let state = try? stores[slot]!.state() else { continue }
            let known = [state.current, state.previous].compactMap { $0 }
                .filter { ($0.kind ?? (slot == .reason ? "crnn" : "")) == running.architectureType }.map(\.version)
            if let newest = known.max(by: { ModelVersion.compare($0, $1) < 0 }), ModelVersion.compare(newest, running.version) > 0 {
                latestAnnounced[slot] = newest
                agent.announceLatestModelVersion(newest, slot: slot)
            }
        }
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

    /// The models to start with, slot by slot: each slot's installed current model when it exists, validates
    /// and fits the models of the other slots (``ModelAcceptance/fit(_:slot:node:)``), else the configured
    /// one. A broken install, or one that does not fit (e.g. a cry head installed while the node ran the
    /// yamnet detector, after a switch to `gate.detector = "crnn"`), is logged and skipped, never fatal.
    public static func startupModels(stateDir: String, configured: (cry: CryDetectorModel, reason: ModelBundle),
                                     logger: Logger) -> (cry: CryDetectorModel, reason: ModelBundle) {
        func installed(_ slot: ModelSlot) -> AnyModel? {
            switch ModelStore(stateDir: stateDir, slot: slot).currentAnyModel() {
            case nil: return nil
            case let .success(model)?: return model
            case let .failure(error)?:
                logger.error("installed \(slot) model rejected, using the configured one", metadata: ["error": "\(error)"])
                return nil
            }
        }
        func skipped(_ slot: ModelSlot, _ model: AnyModel, _ why: String) {
            logger.error("installed \(slot) model does not fit, using the configured one",
                         metadata: ["model": "\(model.name) \(model.version)", "reason": "\(why)"])
        }
        func fits(_ model: AnyModel, _ slot: ModelSlot, _ node: NodeProfile) -> Bool {
            (try? ModelAcceptance.fit(model, slot: slot, node: node)) != nil
        }
        let reason = startupModel(stateDir: stateDir, configured: configured.reason, logger: logger)
        let reasons = reason.source == configured.reason.source ? [reason] : [reason, configured.reason]
        switch configured.cry {
        case let .crnn(configuredCry):
            var cries = [configuredCry]
            if let m = installed(.cry) {
                if case let .crnn(c) = m, c.metadata.task == "cry" { cries.insert(c, at: 0) } else {
                    skipped(.cry, m, "the node runs the crnn cry detector (gate.detector); the installed model is of kind \(m.architectureType)")
                }
            }
            for r in reasons {
                let node = NodeProfile(detector: "crnn", frontEnd: r.metadata.features.logMelParameters)
                for c in cries where fits(.crnn(c), .cry, node) {
                    if r.source != reason.source { skipped(.reason, .crnn(reason), "its front end differs from the cry detector's") }
                    if c.source != cries[0].source { skipped(.cry, .crnn(cries[0]), "its front end differs from the reason model's") }
                    if c.source != configuredCry.source {
                        logger.info("using the installed cry model", metadata: ["model": "\(c.metadata.name) \(c.metadata.version)"])
                    }
                    return (.crnn(c), r)
                }
            }
            return (configured.cry, configured.reason)
        case let .yamnet(configuredBody, configuredHead):
            var bodies = [configuredBody], heads = [configuredHead]
            if let m = installed(.yamnet) {
                if case let .yamnet(b) = m { bodies.insert(b, at: 0) } else { skipped(.yamnet, m, "not a YAMNet body") }
            }
            if let m = installed(.cry) {
                if case let .head(h) = m { heads.insert(h, at: 0) } else {
                    skipped(.cry, m, "the node runs the yamnet cry detector (gate.detector); the installed model is of kind \(m.architectureType)")
                }
            }
            let frontEnd = reason.metadata.features.logMelParameters
            for b in bodies {
                for h in heads where fits(.head(h), .cry, NodeProfile(detector: "yamnet", frontEnd: frontEnd, body: .init(b))) {
                    if b.source != bodies[0].source { skipped(.yamnet, .yamnet(bodies[0]), "it does not fit the cry head") }
                    if h.source != heads[0].source { skipped(.cry, .head(heads[0]), "it does not fit the YAMNet body") }
                    if b.source != configuredBody.source {
                        logger.info("using the installed YAMNet body", metadata: ["model": "\(b.metadata.name) \(b.metadata.version)"])
                    }
                    if h.source != configuredHead.source {
                        logger.info("using the installed cry head", metadata: ["model": "\(h.metadata.name) \(h.metadata.version)"])
                    }
                    return (.yamnet(body: b, head: h), reason)
                }
            }
            return (configured.cry, reason)
        }
    }

    /// Subscribes to commands (call before `agent.run()` connects, so none is missed) and publishes the
    /// retained config echo for Home Assistant's `number` entities.
    public func start() async {
        guard loop == nil else { return }
        let commands = publisher.commands(queue: commandQueue) { [publisher] command in
            Self.refuseBusy(command, publisher: publisher)
        }
        loop = Task { [weak self] in
            for await command in commands {
                guard let self else { return }
                await self.handle(command)
            }
        }
        await publishConfigState()
    }

    /// Commands waiting for the one being handled; more than this (a flood, or a fleet push far wider than
    /// any real one) are answered `busy` at once.
    public static let queuedCommands = 256

    /// The answer to a command that found the queue full: sent from the MQTT thread, so nothing of the
    /// service's state is read (no config hash) and nothing is run.
    private static func refuseBusy(_ command: NodeCommand, publisher: NodePublisher) {
        let result = CommandResult(command: command.name, requestID: lenientRequestID(command.payload),
                                   nodeID: publisher.topics.nodeID, ok: false, error: "busy",
                                   message: "too many commands are already waiting; send it again later")
        do {
            try publisher.publishResult(result)
        } catch {
            Logger(label: "deepinfant.control").warning("answering cmd/\(command.name) busy failed: \(error)")
        }
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
        let key = Self.repeatKey(command)
        let result: CommandResult
        if let key, let earlier = answered[key] {
            logger.info("cmd/\(command.name) again: the earlier answer is sent again", metadata: ["request_id": "\(earlier.requestID ?? "")"])
            result = earlier
        } else {
            result = await process(command)
            if let key, result.ok, result.requestID != nil {
                answered[key] = result
                answeredOrder.append(key)
                if answeredOrder.count > Self.rememberedAnswers { answered[answeredOrder.removeFirst()] = nil }
            }
        }
        do {
            try publisher.publishResult(result)
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
        case "model": result = await modelCommand(command.payload)
        case "rollback": result = await rollbackCommand(command.payload)
        case "ping": result = pingCommand(command.payload)
        case "selftest": result = selftestCommand(command.payload)
        case "feedback": result = await feedbackCommand(command.payload)
        case "forget": result = await forgetCommand(command.payload)
        case "export_feedback": result = exportFeedbackCommand(command.payload)
        default:
            let requestID: String? = if case let .success(object) = parseObject(command.payload), case let .string(id)? = object["request_id"] { id } else { nil }
            result = failure(command.name, requestID, error: "unknown_command", key: nil,
                             message: "unknown command \"\(command.name)\" (config, model, rollback, ping, selftest, feedback, forget, export_feedback)")
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
        // Before the pipeline runs, gate settings are kept and applied at its start (AgentControl).
        let gateChanged = change.config.gate != effective.gate
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
        await publisher.publishConfigState(ConfigStatePayload(gate: .init(threshold: g.cryThreshold ?? runningDetector.recommendedThreshold),
                                                              reason: .init(minConfidence: g.reasonMinConfidence)))
    }

    // MARK: - model

    private var runningReason: ModelBundle { agent.control.reasonModel ?? agent.reasonModel }
    private var runningDetector: CryDetectorModel { agent.control.cryDetector ?? agent.cryDetector }

    /// The model in force in a slot (nil: a slot this node does not have).
    private func runningModel(_ slot: ModelSlot) -> AnyModel? {
        slot == .reason ? .crnn(runningReason) : runningDetector.model(in: slot)
    }

    /// The model of a slot when nothing is installed there.
    private func baseline(_ slot: ModelSlot) -> AnyModel? {
        slot == .reason ? .crnn(baselineModel) : baselineDetector.model(in: slot)
    }

    /// The running models, as the acceptance checks see them.
    private var profile: NodeProfile { NodeProfile(detector: runningDetector, reason: runningReason) }

    private func modelCommand(_ payload: [UInt8]) async -> CommandResult {
        var requestID: String?
        var slot: ModelSlot?
        do {
            let envelope = try ModelEnvelope.decode(payload)
            requestID = envelope.requestID
            let bytes = try envelope.verify(trusted: trusted)
            guard agent.control.isRunning else { throw ModelUpdateError.notRunning }
            let node = profile
            let candidate = try ModelAcceptance.classify(bytes: bytes, envelope: envelope, node: node,
                                                         source: "cmd/model \(envelope.version)")
            slot = candidate.slot
            let model = candidate.model
            announce(envelope.version, slot: candidate.slot)
            if let running = runningModel(candidate.slot)?.version, ModelVersion.compare(envelope.version, running) < 0, envelope.force != true {
                throw ModelUpdateError.downgrade(running: running, offered: envelope.version)
            }
            try ModelAcceptance.fit(model, slot: candidate.slot, node: node)
            try ModelAcceptance.selfTest(model)
            let entry = ModelStore.Entry(sha256: envelope.sha256, version: model.version, name: model.name, kind: model.architectureType)
            let before = try storeState(candidate.slot)
            var after = before
            if before.current?.sha256 != entry.sha256 {
                after = ModelStore.State(current: entry, previous: before.current)
            }
            let previous = try swap(candidate.slot, to: model, entry: entry, before: before, after: after, bytes: bytes)
            if candidate.slot == .cry { await publishConfigState() }  // the recommended threshold may differ
            var r = success("model", requestID, message: "installed \(model.name) \(model.version) (\(candidate.slot) slot)")
            r.slot = candidate.slot.rawValue
            r.model = .init(name: model.name, version: model.version, sha256: entry.sha256)
            r.previousModel = .init(name: previous.name, version: previous.version, sha256: before.current?.sha256)
            return r
        } catch let error as ModelUpdateError {
            var r = failure("model", requestID ?? Self.lenientRequestID(payload), error: error.code, key: error.key, message: error.description)
            r.slot = slot?.rawValue
            return r
        } catch {
            var r = failure("model", requestID ?? Self.lenientRequestID(payload), error: "internal", key: nil, message: "\(error)")
            r.slot = slot?.rawValue
            return r
        }
    }

    /// A re-sent command is byte for byte the one sent before (the controller re-sends its payload unchanged),
    /// so commands are keyed by the payload's hash; only answers to commands that carried a `request_id`
    /// (controllers add a fresh one per command) are remembered, so payloads without one (Home Assistant's
    /// entities: 0.6, 0.5, 0.6 again) always run. No JSON is parsed or searched here (envelopes are megabytes).
    private static func repeatKey(_ command: NodeCommand) -> String? {
        guard command.payload.count <= ModelEnvelope.maxEnvelopeBytes else { return nil }
        return command.name + " " + SHA256.hash(data: command.payload).map { String(format: "%02x", $0) }.joined()
    }

    /// The `request_id` of an envelope that failed to decode as a whole (a missing or mistyped field), so
    /// the controller can still match the refusal to its request.
    private static func lenientRequestID(_ payload: [UInt8]) -> String? {
        struct OnlyID: Decodable {
            var requestID: String?
            enum CodingKeys: String, CodingKey { case requestID = "request_id" }
        }
        guard payload.count <= ModelEnvelope.maxEnvelopeBytes else { return nil }
        guard !JSONNesting.tooDeep(payload) else { return nil }
        return (try? JSONDecoder().decode(OnlyID.self, from: Data(payload)))?.requestID
    }

    /// Commits `after` to the slot's store (writing `bytes` first when given), then swaps between chunks; if
    /// the swap fails, `before` is committed again. Returns the model that was running in the slot.
    private func swap(_ slot: ModelSlot, to model: AnyModel, entry: ModelStore.Entry?, before: ModelStore.State, after: ModelStore.State,
                      bytes: [UInt8]?) throws(ModelUpdateError) -> AnyModel {
        let store = stores[slot]!
        do { try store.commit(after, writing: bytes, for: entry) } catch { throw .storeFailed("\(error)") }
        let previous: AnyModel
        do { previous = try swapIn(model, slot: slot) } catch {
            try? store.commit(before)
            throw .swapFailed("\(error)")
        }
        if entry != runningEntries[slot] || previous.source != model.source { kept[slot] = (runningEntries[slot], previous) }
        runningEntries[slot] = entry
        agent.refreshFeedback()  // new labels or a new embedding space: re-learn the home under them
        return previous
    }

    /// Puts `model` into its slot of the running gate (between chunks); returns the slot's previous model.
    private func swapIn(_ model: AnyModel, slot: ModelSlot) throws -> AnyModel {
        let detector: CryDetectorModel
        switch (slot, model, runningDetector) {
        case let (.reason, .crnn(m), _):
            return .crnn(try agent.control.swapReasonModel(m))
        case let (.cry, .crnn(m), .crnn):
            detector = .crnn(m)
        case let (.cry, .head(h), .yamnet(body, _)):
            detector = .yamnet(body: body, head: h)
        case let (.yamnet, .yamnet(b), .yamnet(_, head)):
            detector = .yamnet(body: b, head: head)
        default:
            throw ModelUpdateError.wrongDetector("a \(model.architectureType) model cannot go into the \(slot) slot of a \(runningDetector.kind) node")
        }
        let previous = try agent.control.swapCryDetector(detector)
        guard let replaced = previous.model(in: slot) else {
            throw ModelUpdateError.wrongDetector("the node ran a \(previous.kind) detector")
        }
        return replaced
    }

    private func storeState(_ slot: ModelSlot) throws(ModelUpdateError) -> ModelStore.State {
        let store = stores[slot]!
        do { return try store.state() } catch { throw .storeFailed("reading \(store.directory)/installed.json: \(error)") }
    }

    /// Remembers the newest signed version seen for a slot, for its Home Assistant `update` entity.
    private func announce(_ version: String, slot: ModelSlot) {
        let installed = runningModel(slot)?.version
        let newest = [latestAnnounced[slot], version, installed].compactMap { $0 }.max { ModelVersion.compare($0, $1) < 0 }!
        guard newest != latestAnnounced[slot] else { return }
        latestAnnounced[slot] = newest
        agent.announceLatestModelVersion(newest, slot: slot)
    }

    // MARK: - rollback

    private func rollbackCommand(_ payload: [UInt8]) async -> CommandResult {
        var requestID: String?
        var slot = ModelSlot.reason
        do {
            let object: [String: JSONValue]
            switch parseObject(payload, allowEmpty: true) {
            case let .failure(bad): return failure("rollback", nil, error: bad.code, key: bad.key, message: bad.message)
            case let .success(o): object = o
            }
            if case let .string(id)? = object["request_id"] { requestID = id }
            let slots = profile.slots
            switch object["slot"] {
            case nil: break
            case let .string(name)?:
                guard let s = ModelSlot(rawValue: name), slots.contains(s) else {
                    throw ModelUpdateError.unknownSlot(name, available: slots.map(\.rawValue))
                }
                slot = s
            case let value?:
                throw ModelUpdateError.unknownSlot(value.jsonText, available: slots.map(\.rawValue))
            }
            guard agent.control.isRunning else { throw ModelUpdateError.notRunning }
            let before = try storeState(slot)
            let target: ModelStore.Entry?
            if let previous = before.previous { target = previous } else if before.current != nil { target = nil } else {
                throw ModelUpdateError.nothingToRollBack
            }
            let model: AnyModel
            if let k = kept[slot], k.entry == target {
                model = k.model
            } else if let target {
                do { model = try stores[slot]!.loadAny(target) } catch { throw ModelUpdateError.invalidModel(error) }
            } else if let b = baseline(slot) {
                model = b
            } else {
                throw ModelUpdateError.nothingToRollBack
            }
            // The model must still belong to this slot and fit the models of the other slots in force.
            let node = profile
            guard try ModelAcceptance.slot(of: model, node: node) == slot else {
                throw ModelUpdateError.wrongDetector("the \(slot) store holds a \(model.architectureType) model")
            }
            try ModelAcceptance.fit(model, slot: slot, node: node)
            let after = ModelStore.State(current: target, previous: before.current)
            let previous = try swap(slot, to: model, entry: target, before: before, after: after, bytes: nil)
            if slot == .cry { await publishConfigState() }
            var r = success("rollback", requestID, message: "rolled back to \(model.name) \(model.version) (\(slot) slot)")
            r.slot = slot.rawValue
            r.model = .init(name: model.name, version: model.version, sha256: target?.sha256)
            r.previousModel = .init(name: previous.name, version: previous.version, sha256: before.current?.sha256)
            return r
        } catch let error as ModelUpdateError {
            var r = failure("rollback", requestID, error: error.code, key: error.key, message: error.description)
            r.slot = slot.rawValue
            return r
        } catch {
            var r = failure("rollback", requestID, error: "internal", key: nil, message: "\(error)")
            r.slot = slot.rawValue
            return r
        }
    }

    // MARK: - ping, selftest

    private func pingCommand(_ payload: [UInt8]) -> CommandResult {
        let requestID: String?
        switch parseObject(payload, allowEmpty: true) {
        case let .failure(bad): return failure("ping", nil, error: bad.code, key: bad.key, message: bad.message)
        case let .success(object): if case let .string(id)? = object["request_id"] { requestID = id } else { requestID = nil }
        }
        let model = runningReason
        var r = success("ping", requestID, message: "pong")
        r.uptimeS = (Date().timeIntervalSince(startedAt) * 10).rounded() / 10
        r.softwareVersion = AgentInfo.softwareVersion
        r.model = .init(name: model.metadata.name, version: model.metadata.version, sha256: runningEntries[.reason]?.sha256)
        r.models = profile.slots.compactMap { slot in
            runningModel(slot).map { .init(name: $0.name, version: $0.version, sha256: runningEntries[slot]?.sha256, slot: slot.rawValue,
                                           kind: $0.architectureType) }
        }
        r.pipelineRunning = agent.control.isRunning
        return r
    }

    private func selftestCommand(_ payload: [UInt8]) -> CommandResult {
        let requestID: String?
        switch parseObject(payload, allowEmpty: true) {
        case let .failure(bad): return failure("selftest", nil, error: bad.code, key: bad.key, message: bad.message)
        case let .success(object): if case let .string(id)? = object["request_id"] { requestID = id } else { requestID = nil }
        }
        // The body first, then the cry detector's model, then the reason model (as `models` always listed them).
        let slots: [ModelSlot] = [.yamnet, .cry, .reason]
        let results = slots.compactMap { slot in runningModel(slot).map { (slot, $0) } }.map { slot, model in
            let r = model.runSelfTest()
            return CommandResult.SelfTestSummary(model: model.name, version: model.version, passed: r.passed,
                                                 maxDelta: r.maxDelta.isFinite ? r.maxDelta : -1, tolerance: r.tolerance,
                                                 slot: slot.rawValue)
        }
        let passed = results.allSatisfy(\.passed)
        var r = passed ? success("selftest", requestID, message: "all self-tests passed")
            : failure("selftest", requestID, error: "selftest_failed", key: results.first { !$0.passed }?.model,
                      message: "self-test failed: \(results.filter { !$0.passed }.map(\.model).joined(separator: ", "))")
        r.selftest = results
        return r
    }

    // MARK: - helpers

    struct BadPayload: Error {
        var code: String
        var key: String?
        var message: String
    }

    /// The payload as a JSON object (`allowEmpty`: zero bytes count as `{}`).
    func parseObject(_ payload: [UInt8], allowEmpty: Bool = false) -> Result<[String: JSONValue], BadPayload> {
        if payload.isEmpty || payload.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            return allowEmpty ? .success([:]) : .failure(BadPayload(code: "malformed_json", key: "(root)", message: "empty payload"))
        }
        guard payload.count <= Self.maxCommandBytes else {
            return .failure(BadPayload(code: "oversized", key: "(root)", message: "payload too large: \(payload.count) bytes (limit \(Self.maxCommandBytes))"))
        }
        guard !JSONNesting.tooDeep(payload) else {
            return .failure(BadPayload(code: "malformed_json", key: "(root)", message: "the payload nests deeper than \(JSONNesting.limit) levels"))
        }
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(payload)) else {
            return .failure(BadPayload(code: "malformed_json", key: "(root)", message: "the payload is not valid JSON"))
        }
        guard case let .object(members) = value else {
            return .failure(BadPayload(code: "invalid_config", key: "(root)", message: "the payload must be a JSON object, got \(ConfigDocument.kind(value))"))
        }
        return .success(members)
    }

    func success(_ command: String, _ requestID: String?, message: String) -> CommandResult {
        CommandResult(command: command, requestID: requestID, nodeID: effectiveNodeID, ok: true, message: message,
                      configHash: ConfigHash.of(effective))
    }

    func failure(_ command: String, _ requestID: String?, error: String, key: String?, message: String) -> CommandResult {
        CommandResult(command: command, requestID: requestID, nodeID: effectiveNodeID, ok: false, error: error, key: key,
                      message: message, configHash: ConfigHash.of(effective))
    }

    /// The id the node runs under (a changed `node.id` takes effect only after a restart).
    private var effectiveNodeID: String { publisher.topics.nodeID }
}
