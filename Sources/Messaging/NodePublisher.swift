import Foundation
import Logging
import Synchronization

/// The node's voice on MQTT: owns the client (with the `offline` Last Will), the durable event outbox and the
/// Home Assistant discovery, and keeps the topic contract of docs/mqtt.md.
///
/// On every (re)connect it announces `status=online`, the discovery configs and the latest retained
/// `info`/`state`/`config`, then drains the outbox in order. Discovery is sent again whenever Home Assistant
/// announces `homeassistant/status = online` (HA restarted and lost non-retained state).
///
/// Events take the durable path: ``publishEvent(_:)`` commits to the ``Outbox`` first; rows are handed to
/// libmosquitto at most `eventWindow` at a time, only while connected, and deleted when the PUBACK arrives.
/// libmosquitto re-sends an unacknowledged message itself after a reconnect, so each row is handed over once
/// per process; after a restart everything still in the outbox is sent again. Delivery is therefore
/// at-least-once; `episode_id` + `seq` identify duplicates.
public actor NodePublisher {
    public nonisolated let client: MQTTClient
    public nonisolated let topics: Topics
    public nonisolated let outbox: Outbox
    public private(set) var discovery: HomeAssistantDiscovery?

    private let logger: Logger
    private let eventWindow: Int
    private let discoverySettle: Duration
    private let infoRefresh: Duration?
    private let commandBroadcast = Broadcaster<NodeCommand>(buffering: .bufferingNewest(256))

    private var connected = false
    private var started = false
    private var shuttingDown = false
    /// False until the first discovery of this process has had `discoverySettle` to reach HA.
    private var eventsReleased = false
    private var inFlight: Set<Int64> = []
    private var lastHandedID: Int64 = 0
    private var lastState: StatePayload?
    private var lastInfo: InfoPayload?
    private var lastConfig: ConfigStatePayload?
    private var lastFeedback: FeedbackStatePayload?
    private var tasks: [Task<Void, Never>] = []
    private var eventsAcknowledged = 0

    /// - Parameters:
    ///   - eventWindow: outbox rows handed to libmosquitto at once (bounds its memory while the broker is slow).
    ///   - discoverySettle: pause between the first discovery of this process and the first event, because HA
    ///     subscribes to a new entity's topics ~0.5 s after its config arrives and drops events sent before.
    ///   - infoRefresh: how often `info` is re-published with a fresh `uptime_s` (nil: only on change).
    public init(settings: MQTTSettings, topics: Topics, outbox: Outbox, discovery: HomeAssistantDiscovery?,
                eventWindow: Int = 10, discoverySettle: Duration = .milliseconds(750),
                infoRefresh: Duration? = .seconds(60),
                logger: Logger = Logger(label: "deepinfant.mqtt.node")) throws {
        self.client = try MQTTClient(settings: settings,
                                     will: MQTTWill(topic: topics.status, payload: Array("offline".utf8)),
                                     logger: logger)
        self.topics = topics
        self.outbox = outbox
        self.discovery = discovery
        self.eventWindow = max(1, eventWindow)
        self.discoverySettle = discovery == nil ? .zero : discoverySettle
        self.infoRefresh = infoRefresh
        self.logger = logger
    }

    /// Commands from `<prefix>/<node>/cmd/<name>` and `<prefix>/all/cmd/<name>` (each access: a new stream).
    public nonisolated var commands: AsyncStream<NodeCommand> { commandBroadcast.subscribe() }

    /// Commands as above, at most `queue` of them waiting: one that arrives while the queue is full goes to
    /// `overflow` instead (on the MQTT thread), so a flood is answered rather than silently thinned out.
    public nonisolated func commands(queue: Int, overflow: @escaping @Sendable (NodeCommand) -> Void) -> AsyncStream<NodeCommand> {
        commandBroadcast.subscribe(buffering: .bufferingOldest(max(1, queue)), onDrop: overflow)
    }

    /// Subscribes to commands and HA's status, starts connecting. Idempotent.
    public func start() throws {
        guard !started else { return }
        started = true
        try client.subscribe(topics.commandFilter, qos: .atLeastOnce)
        try client.subscribe(topics.groupCommandFilter, qos: .atLeastOnce)
        if discovery != nil { try client.subscribe(topics.homeAssistantStatus, qos: .atLeastOnce) }
        // Subscribe to the streams before starting the client so the first CONNACK is not missed.
        let states = client.connectionStates()
        let messages = client.messages
        tasks.append(Task { [weak self] in
            for await state in states { await self?.connectionChanged(state) }
        })
        tasks.append(Task { [weak self] in
            for await message in messages { await self?.received(message) }
        })
        if let infoRefresh {
            tasks.append(Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: infoRefresh)
                    await self?.refreshInfo()
                }
            })
        }
        client.start()
    }

    // MARK: - Publishing

    /// Persists the event, then publishes it (QoS 1) as soon as the broker is reachable; it is deleted from
    /// the outbox on PUBACK. Throws only when it could not be persisted (it is still published best-effort).
    public func publishEvent(_ payload: CryEventPayload) throws {
        var payload = payload
        if let discovery, !discovery.eventTypes.contains(payload.eventType) { payload.eventType = "unknown" }
        let bytes = try PayloadJSON.encode(payload)
        do {
            try outbox.append(topic: topics.event, payload: bytes, qos: .atLeastOnce, retain: false)
        } catch {
            logger.error("outbox write failed, publishing without durability: \(error)")
            _ = try? client.enqueue(topic: topics.event, payload: bytes, qos: .atLeastOnce)
            throw error
        }
        pump()
    }

    /// Retained; remembered and re-sent on every reconnect.
    public func publishState(_ state: StatePayload) {
        lastState = state
        publishRetained(topics.state, state)
    }

    /// Retained. `outbox_pending`/`outbox_dropped` are filled in here from the outbox.
    public func publishInfo(_ info: InfoPayload) {
        lastInfo = info
        publishRetained(topics.info, withOutboxCounters(info))
    }

    /// Retained echo of the remotely adjustable settings (state of HA's `number` entities).
    public func publishConfigState(_ config: ConfigStatePayload) {
        lastConfig = config
        publishRetained(topics.configState, config)
    }

    /// Retained: the latest episode and its answer (state of HA's "Last cry was…" `select`).
    public func publishFeedbackState(_ feedback: FeedbackStatePayload) {
        lastFeedback = feedback
        publishRetained(topics.feedback, feedback)
    }

    /// Retained JSON on `<prefix>/<node>/diagnostics`: the agent's health counters (any `Encodable`), for
    /// dashboards and fleet owners; dropped while disconnected (the next one supersedes it).
    public func publishDiagnostics<T: Encodable & Sendable>(_ diagnostics: T) {
        publishRetained(topics.diagnostics, diagnostics)
    }

    /// Connection attempts since start (the first one included): reconnects = attempts - 1.
    public var connectionAttempts: Int { client.connectionAttempts }

    /// QoS 0, not retained, dropped while disconnected: a level reading is stale by the next one.
    public func publishLevel(_ levelDBFS: Double, at timestamp: Date = Date()) {
        guard connected, let bytes = try? PayloadJSON.encode(LevelPayload(levelDBFS: levelDBFS, timestamp: timestamp))
        else { return }
        _ = try? client.enqueue(topic: topics.level, payload: bytes, qos: .atMostOnce)
    }

    /// QoS 1, not retained; queued in memory by libmosquitto while disconnected. Any result document with
    /// at least `ResultPayload`'s keys (the control service sends its richer `CommandResult`).
    public nonisolated func publishResult<T: Encodable & Sendable>(_ result: T) throws {
        try client.enqueue(topic: topics.result, payload: try PayloadJSON.encode(result), qos: .atLeastOnce)
    }

    /// Events still waiting for a PUBACK (in the outbox), and events dropped because it was full.
    public func outboxCounters() -> (pending: Int, dropped: Int) {
        ((try? outbox.count()) ?? -1, (try? outbox.droppedCount()) ?? -1)
    }

    public var isConnected: Bool { connected }

    /// Publishes `offline`, gives the outbox until `deadline` to drain, then disconnects cleanly.
    public func shutdown(deadline: Duration = .seconds(5)) async {
        guard !shuttingDown else { return }
        shuttingDown = true
        let end = ContinuousClock.now + deadline
        let offlineAcked = AckFlag()
        if connected {
            do {
                try client.enqueue(topic: topics.status, payload: Array("offline".utf8), qos: .atLeastOnce,
                                   retain: true) { _ in offlineAcked.set() }
            } catch {
                offlineAcked.set()
            }
        } else {
            offlineAcked.set()
        }
        while ContinuousClock.now < end {
            let drained = inFlight.isEmpty && ((try? outbox.count()) ?? 0) == 0
            if drained && offlineAcked.isSet { break }
            try? await Task.sleep(for: .milliseconds(20))
        }
        for task in tasks { task.cancel() }
        tasks.removeAll()
        connected = false  // before the await: a refresh running meanwhile must not use a stopping client
        await client.stop()
        commandBroadcast.finish()
    }

    // MARK: - Internals

    private func publishRetained<T: Encodable>(_ topic: String, _ value: T) {
        // Nothing retained after `offline`: the last word of a stopping node is its status.
        guard connected, !shuttingDown else { return }
        do {
            try client.enqueue(topic: topic, payload: try PayloadJSON.encode(value), qos: .atLeastOnce, retain: true)
        } catch {
            logger.warning("publishing \(topic) failed: \(error)")
        }
    }

    private func withOutboxCounters(_ info: InfoPayload) -> InfoPayload {
        var info = info
        let counters = outboxCounters()
        info.outboxPending = counters.pending
        info.outboxDropped = counters.dropped
        return info
    }

    private func refreshInfo() {
        guard var info = lastInfo else { return }
        info.uptimeS = Date().timeIntervalSince(info.startedAt)
        publishInfo(info)
    }

    private func connectionChanged(_ state: MQTTConnectionState) async {
        let nowConnected = state == .connected
        guard nowConnected != connected else { return }
        connected = nowConnected
        guard nowConnected, !shuttingDown else { return }
        announce()
        if !eventsReleased {
            if discoverySettle > .zero { try? await Task.sleep(for: discoverySettle) }
            eventsReleased = true
        }
        pump()
    }

    /// status=online, discovery, and the latest retained payloads.
    private func announce() {
        do {
            try client.enqueue(topic: topics.status, payload: Array("online".utf8), qos: .atLeastOnce, retain: true)
        } catch {
            logger.warning("publishing status failed: \(error)")
        }
        publishDiscovery()
        if let lastInfo { publishRetained(topics.info, withOutboxCounters(lastInfo)) }
        if let lastState { publishRetained(topics.state, lastState) }
        if let lastConfig { publishRetained(topics.configState, lastConfig) }
        if let lastFeedback { publishRetained(topics.feedback, lastFeedback) }
    }

    /// A reason model with other labels is in force (after `cmd/model` or a rollback): Home Assistant's
    /// `event`/`enum` entities learn the new reasons from re-sent discovery configs.
    public func reasonLabelsChanged(_ labels: [String], modelVersion: String) {
        guard let old = discovery, old.labels != labels else { return }
        discovery = HomeAssistantDiscovery(topics: old.topics, labels: labels, modelVersion: modelVersion,
                                           softwareVersion: old.softwareVersion, deviceName: old.deviceName,
                                           modelSlots: old.modelSlots)
        publishDiscovery()
    }

    private func publishDiscovery() {
        guard let discovery, connected else { return }
        for message in discovery.configs() + discovery.absentRemovals() {
            do {
                try client.enqueue(topic: message.topic, payload: message.payload, qos: .atLeastOnce, retain: true)
            } catch {
                logger.warning("publishing discovery \(message.topic) failed: \(error)")
            }
        }
    }

    private func received(_ message: MQTTMessage) {
        if message.topic == topics.homeAssistantStatus {
            if message.text == "online" { publishDiscovery() }
            return
        }
        if let (name, group) = topics.commandName(in: message.topic) {
            commandBroadcast.yield(NodeCommand(name: name, payload: message.payload, group: group,
                                               topic: message.topic))
        }
    }

    /// Hands the next outbox rows to libmosquitto, oldest first, keeping at most `eventWindow` unacknowledged.
    private func pump() {
        guard connected, eventsReleased else { return }
        while inFlight.count < eventWindow {
            let batch: [Outbox.Entry]
            do {
                batch = try outbox.pending(after: lastHandedID, limit: eventWindow - inFlight.count)
            } catch {
                logger.error("reading the outbox failed: \(error)")
                return
            }
            if batch.isEmpty { return }
            for entry in batch {
                do {
                    try client.enqueue(topic: entry.topic, payload: entry.payload, qos: entry.qos,
                                       retain: entry.retain) { [weak self] result in
                        Task { await self?.acknowledged(entry.id, result) }
                    }
                } catch {
                    logger.warning("handing event \(entry.id) to MQTT failed, will retry: \(error)")
                    return
                }
                inFlight.insert(entry.id)
                lastHandedID = entry.id
            }
        }
    }

    private func acknowledged(_ id: Int64, _ result: Result<Void, MQTTError>) {
        inFlight.remove(id)
        switch result {
        case .success:
            eventsAcknowledged += 1
            do { try outbox.remove(id: id) } catch { logger.error("outbox delete of \(id) failed: \(error)") }
        case let .failure(error):
            if case .publishRejected = error {
                // The broker will never take it (ACL); keeping it would block nothing but retry forever.
                logger.error("broker rejected event \(id), dropping it: \(error)")
                try? outbox.remove(id: id)
            } else {
                // Stopped before the PUBACK: it stays in the outbox for the next run.
                logger.debug("event \(id) not acknowledged: \(error)")
            }
        }
        pump()
    }
}

/// A one-way flag set from the network thread and read by the actor.
private final class AckFlag: Sendable {
    private let flag = Mutex(false)
    func set() { flag.withLock { $0 = true } }
    var isSet: Bool { flag.withLock { $0 } }
}
