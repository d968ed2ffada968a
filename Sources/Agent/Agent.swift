import Capture
import Feedback
import Foundation
import Gate
import Inference
import Logging
import Messaging
import Synchronization

/// The node: capture → gate (activity, cry CRNN, episodes, reason CRNN) → MQTT publisher, until the input
/// ends or the task running `run()` is cancelled (SIGTERM/SIGINT in `deepinfant-edge run`).
///
/// Buffering: capture hands chunks over an `AsyncStream` bounded at `audio.queue_chunks` (10 s by
/// default); if the gate ever falls that far behind, new audio is dropped, counted and logged by the
/// capture stage (the buffered 10 s are analysed first, so an episode in progress is not torn). Events
/// are never dropped: they go to the SQLite outbox before the broker.
///
/// Shutdown: the capture stream ends, the gate analyses what it has and closes an open episode, then
/// the publisher flushes the outbox as far as the broker allows (deadline 5 s) and publishes `offline`.
public final class Agent: Sendable {
    public let config: AgentConfig
    /// Stage 2's cry detector (YAMNet body + cry head by default, or the CRNN).
    public let cryDetector: CryDetectorModel
    public let reasonModel: ModelBundle
    /// Live changes from the control stage (remote config, model updates).
    public let control = AgentControl()
    private let logger: Logger
    private let startedAt = Date()
    /// Created by the first `publisher()` call (the control stage's, or `run()`'s), then reused.
    private let preparedPublisher = Mutex<NodePublisher?>(nil)
    /// Newest model version announced to the node per slot (HA `update` entities' "latest"), and whether
    /// `info` must be re-published for it.
    private let announcedModels = Mutex<(versions: [ModelSlot: String], changed: Bool)>(([:], false))
    /// Hash of the configuration in force (the start-up `config` until a remote change), and whether `info`
    /// must be re-published for it.
    private let liveConfigHash: Mutex<(hash: String, changed: Bool)>
    /// Created by the first `feedbackBook()` call; nil inside when feedback is off.
    private let preparedFeedback = Mutex<FeedbackBook??>(nil)
    /// Set when the feedback counts changed and `info` must be re-published.
    private let feedbackChanged = Mutex(false)

    /// A node whose gate runs the CRNN cry detector `cryModel`.
    public convenience init(config: AgentConfig, cryModel: ModelBundle, reasonModel: ModelBundle, logger: Logger = Logger(label: "deepinfant.agent")) {
        self.init(config: config, cryDetector: .crnn(cryModel), reasonModel: reasonModel, logger: logger)
    }

    public init(config: AgentConfig, cryDetector: CryDetectorModel, reasonModel: ModelBundle, logger: Logger = Logger(label: "deepinfant.agent")) {
        self.config = config
        liveConfigHash = Mutex((ConfigHash.of(config), false))
        self.cryDetector = cryDetector
        self.reasonModel = reasonModel
        self.logger = logger
    }

    /// Loads the configured models; a model that fails to load is replaced by the embedded default, and
    /// the log says so (a node with a bad model file still protects the nursery). `gate.detector` picks
    /// the cry detector: "yamnet" (body `model.yamnet_path` + head `model.cry_head_path`) or "crnn"
    /// (`model.cry_path`).
    public static func loadModels(_ config: AgentConfig, logger: Logger) throws -> (cry: CryDetectorModel, reason: ModelBundle) {
        func load<M>(_ path: String?, what: String, _ loader: (String) throws -> M, embedded: () throws -> M) throws -> M {
            guard let path, !path.isEmpty else { return try embedded() }
            do { return try loader(path) } catch {
                logger.error("\(what) model file rejected, using the embedded model instead", metadata: ["path": "\(path)", "error": "\(error)"])
                return try embedded()
            }
        }
        let cry: CryDetectorModel
        if config.gate.detector == "crnn" {
            cry = .crnn(try load(config.model.cryPath, what: "cry", { try ModelBundle.load(path: $0) }, embedded: { try ModelBundle.embeddedCryDetector() }))
        } else {
            let body = try load(config.model.yamnetPath, what: "YAMNet", { try YAMNetModel.load(path: $0) }, embedded: { try YAMNetModel.embedded() })
            let head = try load(config.model.cryHeadPath, what: "cry head", { try EmbeddingHead.load(path: $0) }, embedded: { try EmbeddingHead.embedded() })
            cry = .yamnet(body: body, head: head)
        }
        return (cry, try load(config.model.path, what: "reason", { try ModelBundle.load(path: $0) }, embedded: { try ModelBundle.embeddedDefault() }))
    }

    /// The node's MQTT publisher (and its outbox in the state directory), created on the first call and
    /// started by `run()`. The control stage takes it before `run()` so that it can subscribe to commands and
    /// answer on `result` over the same connection.
    public func publisher() throws -> NodePublisher {
        try preparedPublisher.withLock { prepared in
            if let prepared { return prepared }
            let topics = Topics(prefix: config.mqtt.prefix, nodeID: config.nodeID, discoveryPrefix: config.mqtt.discoveryPrefix)
            try FileManager.default.createDirectory(atPath: config.node.stateDir, withIntermediateDirectories: true)
            let outbox = try Outbox(path: config.node.stateDir + "/outbox.sqlite", bound: config.mqtt.outboxMaxEvents)
            let discovery = config.mqtt.discovery
                ? HomeAssistantDiscovery(topics: topics, labels: reasonModel.labels, modelVersion: reasonModel.metadata.version,
                                         softwareVersion: AgentInfo.softwareVersion,
                                         modelSlots: ModelSlot.slots(for: cryDetector).map(\.rawValue))
                : nil
            let publisher = try NodePublisher(settings: try mqttSettings(clientID: config.nodeID), topics: topics, outbox: outbox,
                                              discovery: discovery, logger: Logger(label: "deepinfant.mqtt"))
            prepared = publisher
            return publisher
        }
    }

    /// The node's feedback store and what it learnt (`<state_dir>/feedback.sqlite`), nil when
    /// `feedback.enabled` is false. Created on the first call, shared with the control stage.
    public func feedbackBook() throws -> FeedbackBook? {
        try preparedFeedback.withLock { prepared in
            if let prepared { return prepared }
            let book = config.feedback.enabled ? try FeedbackBook(stateDir: config.node.stateDir, settings: config.feedback) : nil
            prepared = .some(book)
            return book
        }
    }

    /// Where the node compares sounds: the running cry head's standardised embedding space (nil on a
    /// crnn node, which has no embeddings).
    public static func embeddingSpace(_ detector: CryDetectorModel) -> EmbeddingSpace? {
        guard case let .yamnet(_, head) = detector else { return nil }
        let s = head.standardisation
        return EmbeddingSpace(mean: s.mean, scale: s.scale)
    }

    /// Re-learns from the feedback store (after an answer, a forget, or a model change) and hands the new
    /// veto to the running gate between chunks; `info` is re-published with the next chunk.
    public func refreshFeedback() {
        guard let book = try? feedbackBook() else { return }
        let labels = (control.reasonModel ?? reasonModel).labels
        do {
            try book.rebuild(labels: labels, space: Self.embeddingSpace(control.cryDetector ?? cryDetector))
        } catch {
            logger.error("feedback store unreadable; the node reports what its models say", metadata: ["error": "\(error)"])
        }
        control.setVeto(book.veto)
        feedbackChanged.withLock { $0 = true }
    }

    /// Publishes the retained feedback state: the latest episode and its answer (HA's select).
    public func publishFeedbackState() async {
        guard let book = try? feedbackBook(), let publisher = try? publisher() else { return }
        let latest = try? book.store.episode("latest")
        await publisher.publishFeedbackState(FeedbackStatePayload(episodeID: latest?.id, startedAt: latest?.startedAt, label: latest?.label))
    }

    /// Records the newest model version announced to this node for a slot (a signed model envelope,
    /// installed or not); `info.models[].latest_version` (and for the reason slot `info.model.latest_version`)
    /// carries it from the next chunk on, for Home Assistant's `update` entities.
    public func announceLatestModelVersion(_ version: String, slot: ModelSlot = .reason) {
        announcedModels.withLock { announced in
            announced.versions[slot] = version
            announced.changed = true
        }
    }

    /// Records the configuration now in force (after a remote `cmd/config`), so `info.config_hash` shows
    /// what the node runs rather than what it started with.
    public func noteEffectiveConfig(_ effective: AgentConfig) {
        let hash = ConfigHash.of(effective)
        liveConfigHash.withLock { if $0.hash != hash { $0 = (hash, true) } }
    }

    /// Runs until the input ends or the calling task is cancelled; then shuts down cleanly.
    public func run() async throws {
        let nodeID = config.nodeID
        let publisher = try publisher()
        try await publisher.start()
        let captureCounters = CaptureCounters()
        let source: any AudioSource = config.audio.input.map { FileAudioSource(path: $0, chunkSize: config.audio.chunkSamples, realTime: config.audio.realTime) }
            ?? ALSACaptureSource(configuration: .init(device: config.audio.device, chunkSize: config.audio.chunkSamples,
                                                      realTime: config.audio.realTime, queueChunks: config.audio.queueChunks),
                                 counters: captureCounters)
        var audioStatus = source.name
        let gate = try CryGate(detector: cryDetector, reasonModel: reasonModel, settings: config.gate)
        control.attach(gate)
        var book: FeedbackBook?
        do { book = try feedbackBook() } catch {
            logger.error("feedback store cannot be opened; feedback is off until it can", metadata: ["error": "\(error)"])
        }
        var audioRecorder = book != nil && config.feedback.keepAudio ? EpisodeAudioRecorder(maxSeconds: config.feedback.audioMaxSeconds) : nil
        if book != nil { refreshFeedback() }
        // An episode the last run did not end (it was killed mid-cry) is ended now.
        let openEpisode = OpenEpisodeMark(stateDir: config.node.stateDir)
        if let saved = openEpisode.load() {
            for event in OpenEpisodeMark.completion(of: saved) {
                do { try await publisher.publishEvent(event) } catch { logger.error("event not persisted: \(error)") }
            }
            openEpisode.clear()
            logger.notice("ended the episode the last run left open", metadata: ["episode": "\(saved.episodeID)"])
        }
        // One `info`, after the home is learnt, so that it carries the feedback summary from the start.
        await publisher.publishInfo(info(nodeID: nodeID, audio: audioStatus))
        await publisher.publishState(StatePayload(crying: false, since: Date()))
        if book != nil { await publishFeedbackState() }
        var reporter = EpisodeReporter(modelVersion: reasonModel.metadata.version)
        var level = -120.0
        var audioSeconds = 0.0, episodes = 0
        // Monotonic: a wall-clock step (NTP setting a Pi's clock after boot) must not stall or burst them.
        let clock = ContinuousClock(), diagnosticsInterval = Duration.seconds(config.mqtt.diagnosticsIntervalSeconds)
        var lastDiagnostics = clock.now
        func diagnostics() async -> Diagnostics {
            let c = captureCounters.snapshot
            let outbox = await publisher.outboxCounters()
            // Read the gate's counters under the control lock, like every other access to it.
            let g = control.withGate { ($0.analysisTicks, $0.cryWindowsAnalysed, $0.reasonWindowsAnalysed, $0.gateOpenRatio,
                                        $0.inferenceLatencyMilliseconds) } ?? (0, 0, 0, 0, nil)
            let latency = g.4
            return Diagnostics(timestamp: Date(), uptimeS: Date().timeIntervalSince(startedAt).rounded(), audioSeconds: audioSeconds.rounded(),
                               droppedChunks: c.droppedChunks, overruns: c.overruns, deviceOpens: c.opens, deviceOpenFailures: c.openFailures,
                               analysisTicks: g.0, cryWindows: g.1, reasonWindows: g.2,
                               gateOpenRatio: (g.3 * 1000).rounded() / 1000,
                               inferenceMsP50: latency.map { ($0.p50 * 100).rounded() / 100 }, inferenceMsP99: latency.map { ($0.p99 * 100).rounded() / 100 },
                               episodes: episodes, outboxPending: outbox.pending, outboxDropped: outbox.dropped,
                               mqttConnectionAttempts: await publisher.connectionAttempts,
                               rssMB: (ProcessMemory.residentMB() * 10).rounded() / 10, peakRSSMB: (ProcessMemory.peakMB() * 10).rounded() / 10)
        }
        // Called on audio and on every failed (re)open, so a missing microphone still shows in the counters.
        func publishDiagnosticsIfDue() async {
            let now = clock.now
            guard now - lastDiagnostics >= diagnosticsInterval else { return }
            lastDiagnostics = now
            await publisher.publishDiagnostics(await diagnostics())
        }
        logger.info("listening", metadata: ["node": "\(nodeID)", "audio": "\(source.name)", "broker": "\(config.mqtt.broker)",
                                            "model": "\(reasonModel.metadata.name) \(reasonModel.metadata.version)"])

        func report(_ events: [GateEvent]) async {
            guard !events.isEmpty else { return }
            let evidence = control.withGate { g in (g.openEvidence.map { [$0] } ?? []) + g.takeFinishedEvidence() } ?? []
            for event in events {
                switch reporter.map(event, levelDBFS: level) {
                case .event(var payload, var state):
                    if let book {
                        let seen = evidence.last { $0.episode.uuidString.lowercased() == payload.episodeID }
                        let minConfidence = control.gateSettings?.reasonMinConfidence ?? config.gate.reasonMinConfidence
                        let global = ReasonEstimate(reason: payload.reason, confidence: payload.confidence, probabilities: payload.probabilities)
                        if let adapted = book.adapt(global, meanEmbedding: seen?.meanEmbedding, minConfidence: minConfidence),
                           adapted.probabilities != global.probabilities {
                            payload.globalReason = payload.reason
                            payload.globalProbabilities = payload.probabilities
                            payload.reason = adapted.reason
                            payload.confidence = (adapted.confidence * 1000).rounded() / 1000
                            payload.probabilities = adapted.probabilities.mapValues { ($0 * 1000).rounded() / 1000 }
                            payload.eventType = adapted.reason
                            state?.reason = payload.reason
                            state?.confidence = payload.confidence
                        }
                        if case let .cryStarted(_, _, onset, _, _, _) = event { audioRecorder?.begin(payload.episodeID, onset: onset) }
                        if payload.type != .update {
                            let audio = payload.type == .end ? audioRecorder?.finish(payload.episodeID) : nil
                            record(payload, seen, audio: audio, in: book)
                            if payload.type == .start { await publishFeedbackState() }
                        }
                    }
                    logger.info("cry \(payload.type.rawValue)", metadata: ["episode": "\(payload.episodeID)", "reason": "\(payload.reason)",
                                                                         "confidence": "\(payload.confidence)"])
                    do { try openEpisode.save(payload) } catch {
                        // A stale mark would end the episode at a seq already used: no mark is safer (a crash
                        // now leaves the episode without its end, as before marks existed).
                        openEpisode.clear()
                        logger.warning("open episode not saved (a crash now would leave it without an end): \(error)")
                    }
                    do { try await publisher.publishEvent(payload) } catch { logger.error("event not persisted: \(error)") }
                    if payload.type == .end { openEpisode.clear() }
                    if let state { await publisher.publishState(state) }
                case let .level(dbfs, at):
                    await publisher.publishLevel(dbfs, at: at)
                }
            }
        }

        for await event in source.events() {
            switch event {
            case let .audio(chunk):
                level = Self.chunkLevel(chunk.samples)
                audioRecorder?.append(chunk.samples, startIndex: chunk.startIndex)
                let changes = control.drain()
                if changes.modelChanged, let model = control.reasonModel {
                    await report(changes.events)  // the closed episode, under the old model version
                    reporter.modelVersion = model.metadata.version
                    await publisher.reasonLabelsChanged(model.labels, modelVersion: model.metadata.version)
                    await publisher.publishInfo(info(nodeID: nodeID, audio: audioStatus))
                } else {
                    await report(changes.events)
                    if announcedModels.withLock({ $0.changed }) || liveConfigHash.withLock({ $0.changed })
                        || feedbackChanged.withLock({ $0 }) {
                        await publisher.publishInfo(info(nodeID: nodeID, audio: audioStatus))
                    }
                }
                let events = control.withGate { $0.process(chunk.samples, startIndex: chunk.startIndex, timestamp: chunk.timestamp) } ?? []
                audioSeconds += chunk.duration
                episodes += events.filter { if case .cryStarted = $0 { true } else { false } }.count
                await report(events)
                await publishDiagnosticsIfDue()
            case let .opened(device, rate, channels, format):
                logger.info("audio open", metadata: ["device": "\(device)", "rate": "\(rate)", "channels": "\(channels)", "format": "\(format)"])
                // Re-published only when it says something new (after `unavailable`), not at every start.
                if audioStatus != source.name {
                    audioStatus = source.name
                    await publisher.publishInfo(info(nodeID: nodeID, audio: audioStatus))
                }
            case let .unavailable(device, reason, _):
                audioStatus = "unavailable: \(reason)"
                logger.warning("audio unavailable", metadata: ["device": "\(device)", "error": "\(reason)"])
                await publisher.publishInfo(info(nodeID: nodeID, audio: audioStatus))
                await publishDiagnosticsIfDue()
            case let .overrun(total):
                logger.warning("audio overrun", metadata: ["total": "\(total)"])
            }
        }
        // Input ended or we were cancelled: close the episode, then flush and go offline. Shutdown runs in
        // a fresh task so the caller's cancellation does not cut the flush short.
        await report(control.drain().events)
        await report(control.withGate { $0.finish() } ?? [])
        await publisher.publishDiagnostics(await diagnostics())
        await Task { await publisher.shutdown(deadline: .seconds(5)) }.value
        logger.info("stopped", metadata: ["audio_s": "\(audioSeconds)", "episodes": "\(episodes)"])
    }

    /// Stores an episode's start or end in the feedback store (failures are logged, never fatal: the
    /// nursery is protected whether or not the store has room).
    private func record(_ payload: CryEventPayload, _ evidence: EpisodeEvidence?, audio: [Int16]?, in book: FeedbackBook) {
        let detector = control.cryDetector ?? cryDetector
        var models = ["reason": payload.modelVersion]
        for slot in [ModelSlot.cry, .yamnet] { if let m = detector.model(in: slot) { models[slot.rawValue] = m.version } }
        let episode = FeedbackEpisode(id: payload.episodeID, startedAt: payload.startedAt, endedAt: payload.endedAt, durationS: payload.durationS,
                                      cryConfidence: evidence.map { e in e.probabilities.isEmpty ? 0 : e.probabilities.reduce(0, +) / Double(e.patchCount) } ?? 0,
                                      reason: payload.globalReason ?? payload.reason,
                                      probabilities: payload.globalProbabilities ?? payload.probabilities, models: models,
                                      embeddings: evidence?.embeddings ?? [], dimension: evidence?.dimension ?? 0,
                                      patchProbabilities: evidence?.probabilities ?? [])
        do {
            // Not a reason to re-publish the retained `info`: a busy nursery would re-send it twice an
            // episode; the episode count rides along with the next one (an answer, a model or config change).
            try book.store.record(episode, audio: audio)
        } catch {
            logger.error("episode not kept for feedback", metadata: ["episode": "\(payload.episodeID)", "error": "\(error)"])
        }
    }

    static func chunkLevel(_ samples: [Float]) -> Double {
        guard !samples.isEmpty else { return -120 }
        var acc = 0.0
        for x in samples { acc += Double(x * x) }
        return (SoundLevel.dbfs(meanSquare: acc / Double(samples.count)) * 10).rounded() / 10
    }

    private func info(nodeID: String, audio: String) -> InfoPayload {
        let model = control.reasonModel ?? reasonModel
        let detector = control.cryDetector ?? cryDetector
        let latest = announcedModels.withLock { announced in
            announced.changed = false
            return announced.versions
        }
        var models = [InfoPayload.SlotModel(slot: ModelSlot.reason.rawValue, kind: "crnn", name: model.metadata.name,
                                            version: model.metadata.version, latestVersion: latest[.reason] ?? model.metadata.version)]
        for slot in ModelSlot.slots(for: detector) where slot != .reason {
            guard let m = detector.model(in: slot) else { continue }
            models.append(.init(slot: slot.rawValue, kind: m.architectureType, name: m.name, version: m.version, latestVersion: latest[slot] ?? m.version))
        }
        return InfoPayload(nodeID: nodeID, softwareVersion: AgentInfo.softwareVersion,
                    model: .init(name: model.metadata.name, version: model.metadata.version, labels: model.labels,
                                 latestVersion: latest[.reason]),
                    audioDevice: audio, startedAt: startedAt, uptimeS: Date().timeIntervalSince(startedAt).rounded(),
                    configHash: liveConfigHash.withLock { live in
                        live.changed = false
                        return live.hash
                    }, models: models, feedback: feedbackInfo())
    }

    private func feedbackInfo() -> FeedbackInfo? {
        feedbackChanged.withLock { $0 = false }
        guard let book = try? feedbackBook() else { return nil }
        return book.summary(vetoedPatches: control.withGate { $0.vetoedPatches } ?? 0)
    }

    private func mqttSettings(clientID: String) throws -> MQTTSettings {
        let broker = try MQTTSettings.parseBrokerURL(config.mqtt.broker)
        let tls = broker.secure ? MQTTTLSSettings(caFile: config.mqtt.caFile ?? "", certFile: config.mqtt.certFile, keyFile: config.mqtt.keyFile) : nil
        return MQTTSettings(host: broker.host, port: broker.port, clientID: clientID,
                            username: config.mqtt.username ?? broker.username, password: config.mqtt.password ?? broker.password,
                            tls: tls, keepalive: config.mqtt.keepalive)
    }
}

public enum AgentInfo {
    public static let softwareVersion = "0.1.0"
}

/// A short stable fingerprint of the effective configuration (secrets excluded), shown in `info` so a
/// fleet owner can see which nodes run the same settings.
public enum ConfigHash {
    public static func of(_ c: AgentConfig) -> String {
        var redacted = c
        redacted.mqtt.password = nil
        let text = String(describing: redacted)
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(h, radix: 16)
    }
}
