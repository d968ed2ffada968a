import CMosquitto
import Dispatch
import Foundation
import Logging
import Synchronization

/// `mosquitto_lib_init` is not thread-safe and must run once per process before any client exists.
private let libraryInitialised: Bool = {
    mosquitto_lib_init()
    return true
}()

/// An MQTT connection over libmosquitto, usable from any task or actor.
///
/// Why a dedicated thread and not `mosquitto_loop_start`: libmosquitto's own reconnect logic has exponential
/// backoff but no jitter and no way to report *why* an attempt failed. This client runs `mosquitto_loop` on its
/// own thread, reconnects with ``MQTTBackoff`` (capped, jittered) and publishes every state change, including
/// CONNACK refusals and TLS errors, on ``connectionStates()``.
///
/// Callbacks: libmosquitto calls plain `@convention(c)` closures on that thread; they capture nothing and find
/// this object through `userdata` (an unretained pointer — the loop thread holds a strong reference for as long
/// as it can receive callbacks). They only touch `Mutex`-guarded state and thread-safe stream continuations, so
/// nothing crosses into an actor's isolation without a hop.
///
/// Delivery: QoS 1/2 messages handed to ``enqueue(topic:payload:qos:retain:onAcknowledged:)`` stay in
/// libmosquitto's memory until the broker acknowledges them and are re-sent (DUP) after a reconnect, so the
/// acknowledgement callback fires exactly once per message, or with ``MQTTError/stopped`` at ``stop()``.
public final class MQTTClient: Sendable {
    public let settings: MQTTSettings
    public let will: MQTTWill?

    /// The `struct mosquitto *`. libmosquitto's API is thread-safe once `mosquitto_threaded_set` is on, which
    /// is what makes sharing the raw handle across threads sound.
    nonisolated(unsafe) private let handle: OpaquePointer
    private let logger: Logger
    private let core = Mutex(Core())
    private let messageBroadcast = Broadcaster<MQTTMessage>(buffering: .bufferingNewest(1024))
    private let stateBroadcast = Broadcaster<MQTTConnectionState>()
    /// Wakes the loop thread out of a backoff sleep when `stop()` is called.
    private let wakeup = DispatchSemaphore(value: 0)

    public typealias AcknowledgementHandler = @Sendable (Result<Void, MQTTError>) -> Void

    private struct Core {
        var state: MQTTConnectionState = .idle
        var started = false
        var stopRequested = false
        var finished = false
        var failedAttempts = 0
        var connectAttemptCount = 0
        var refusal: MQTTError?
        /// CONNACK accepted, `.connected` not yet announced (see `announceConnectedIfPending`).
        var connectedPendingAnnouncement = false
        var lastLibraryError: String?
        var subscriptions: [String: MQTTQoS] = [:]
        var pendingAcks: [Int32: AcknowledgementHandler] = [:]
        var stopWaiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiterID: UInt64 = 0
    }

    /// Creates the client and applies credentials, TLS, protocol version and the Will. Nothing connects until
    /// ``start()``. Throws when TLS files cannot be read or an option is rejected.
    public init(settings: MQTTSettings, will: MQTTWill? = nil,
                logger: Logger = Logger(label: "deepinfant.mqtt")) throws {
        _ = libraryInitialised
        guard let handle = mosquitto_new(settings.clientID, settings.cleanSession, nil) else {
            throw MQTTError.library(code: Int32(MOSQ_ERR_NOMEM.rawValue),
                                    reason: "mosquitto_new failed (client id \"\(settings.clientID)\")")
        }
        self.handle = handle
        self.settings = settings
        self.will = will
        self.logger = logger

        func check(_ rc: Int32, _ what: String) throws {
            guard rc == Int32(MOSQ_ERR_SUCCESS.rawValue) else {
                throw MQTTError.invalidArgument("\(what): \(String(cString: mosquitto_strerror(rc)))")
            }
        }
        try check(mosquitto_threaded_set(handle, true), "threaded mode")
        let version = settings.protocolVersion == .v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311
        try check(mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, version), "protocol version")
        try check(mosquitto_int_option(handle, MOSQ_OPT_SEND_MAXIMUM, Int32(max(1, settings.maxInflight))),
                  "send maximum")
        if settings.username != nil || settings.password != nil {
            try check(mosquitto_username_pw_set(handle, settings.username, settings.password), "username/password")
        }
        if let tls = settings.tls {
            guard FileManager.default.isReadableFile(atPath: tls.caFile) else {
                throw MQTTError.tls("CA file \(tls.caFile) is not readable")
            }
            try check(mosquitto_tls_set(handle, tls.caFile, nil, tls.certFile, tls.keyFile, nil),
                      "TLS files (ca \(tls.caFile), cert \(tls.certFile ?? "-"), key \(tls.keyFile ?? "-"))")
            try check(mosquitto_tls_opts_set(handle, 1, tls.tlsVersion, nil), "TLS options")
            try check(mosquitto_tls_insecure_set(handle, tls.insecure), "TLS hostname verification")
        }
        if let will {
            try check(will.payload.withUnsafeBytes { bytes in
                mosquitto_will_set(handle, will.topic, Int32(bytes.count), bytes.baseAddress, will.qos.rawValue,
                                   will.retain)
            }, "last will")
        }
        mosquitto_user_data_set(handle, Unmanaged.passUnretained(self).toOpaque())
        Self.installCallbacks(on: handle)
    }

    deinit {
        mosquitto_destroy(handle)
    }

    // MARK: - Public API

    /// The current connection state.
    public var state: MQTTConnectionState { core.withLock { $0.state } }

    /// How many connection attempts have been made (successful or not); lets tests check that a refused
    /// client backs off instead of spinning.
    public var connectionAttempts: Int { core.withLock { $0.connectAttemptCount } }

    /// A new stream of every state change from now on (each call gets its own subscriber).
    public func connectionStates() -> AsyncStream<MQTTConnectionState> { stateBroadcast.subscribe() }

    /// Incoming messages on the subscriptions. Each access creates an independent subscriber that sees the
    /// messages arriving after it was created (the newest 1024 are buffered if the consumer is slow).
    public var messages: AsyncStream<MQTTMessage> { messageBroadcast.subscribe() }

    /// Starts connecting in the background; reconnects by itself until ``stop()``. Idempotent.
    public func start() {
        let shouldStart = core.withLock { core -> Bool in
            guard !core.started, !core.stopRequested else { return false }
            core.started = true
            return true
        }
        guard shouldStart else { return }
        let thread = Thread { [self] in self.runLoop() }
        thread.name = "mqtt-\(settings.clientID)"
        thread.start()
    }

    /// Disconnects cleanly (the broker discards the Will, so publish `offline` first), stops reconnecting and
    /// waits for the network thread to end. Unacknowledged messages fail with ``MQTTError/stopped``; the
    /// `messages` and `connectionStates()` streams finish. A stopped client cannot be started again.
    public func stop(timeout: Duration = .seconds(3)) async {
        let (wasStarted, alreadyFinished) = core.withLock { core -> (Bool, Bool) in
            core.stopRequested = true
            if !core.started { core.finished = true; core.state = .stopped }
            return (core.started, core.finished)
        }
        guard wasStarted else {
            failPendingAcks()
            stateBroadcast.yield(.stopped)
            finishStreams()
            return
        }
        if !alreadyFinished {
            _ = mosquitto_disconnect(handle)
            wakeup.signal()
        }
        // The network thread can be stuck in a blocking TCP connect to an unreachable host (the kernel gives
        // up after minutes); stop() does not wait for that: after `timeout` it returns and the thread ends by
        // itself once connect() returns (it keeps the client alive until then).
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waiterID = core.withLock { core -> UInt64? in
                if core.finished { return nil }
                let id = core.nextWaiterID
                core.nextWaiterID += 1
                core.stopWaiters[id] = continuation
                return id
            }
            guard let waiterID else {
                continuation.resume()
                return
            }
            Task { [self] in
                try? await Task.sleep(for: timeout)
                self.core.withLock { $0.stopWaiters.removeValue(forKey: waiterID) }?.resume()
            }
        }
    }

    /// Hands a message to libmosquitto and returns its message id at once. For QoS 1/2 `onAcknowledged` runs
    /// (on the network thread) when the broker has acknowledged it — PUBACK, or PUBCOMP for QoS 2 — which may
    /// be after reconnects; for QoS 0 it runs right away, as there is no acknowledgement.
    /// Throws when libmosquitto refuses the message (QoS 0 while disconnected, oversized payload, bad topic).
    @discardableResult
    public func enqueue(topic: String, payload: [UInt8], qos: MQTTQoS = .atLeastOnce, retain: Bool = false,
                        onAcknowledged: AcknowledgementHandler? = nil) throws -> Int32 {
        // The lock is held across mosquitto_publish so that a PUBACK racing back on the network thread
        // finds the handler already registered. No deadlock: the network thread takes this lock only inside
        // callbacks, and mosquitto_publish never waits for the callback mutex.
        let result: Result<Int32, MQTTError> = core.withLock { core in
            if core.stopRequested { return .failure(.stopped) }
            var mid: Int32 = 0
            let rc = payload.withUnsafeBytes { bytes in
                mosquitto_publish(handle, &mid, topic, Int32(bytes.count), bytes.baseAddress, qos.rawValue, retain)
            }
            // For QoS 1/2 libmosquitto queues the message before trying to send it, and keeps it (re-sending
            // after the next CONNACK) when the send fails for lack of a connection: that is "queued", not an error.
            let queuedOffline = qos != .atMostOnce && rc == Int32(MOSQ_ERR_NO_CONN.rawValue)
            guard rc == Int32(MOSQ_ERR_SUCCESS.rawValue) || queuedOffline else {
                return .failure(MQTTError.fromLibrary(rc))
            }
            if qos != .atMostOnce, let onAcknowledged { core.pendingAcks[mid] = onAcknowledged }
            return .success(mid)
        }
        let mid = try result.get()
        if qos == .atMostOnce { onAcknowledged?(.success(())) }
        return mid
    }

    /// Publishes and, for QoS 1/2, waits until the broker has acknowledged the message.
    public func publish(topic: String, payload: [UInt8], qos: MQTTQoS = .atMostOnce, retain: Bool = false)
        async throws {
        if qos == .atMostOnce {
            try enqueue(topic: topic, payload: payload, qos: qos, retain: retain)
            return
        }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            do {
                try enqueue(topic: topic, payload: payload, qos: qos, retain: retain) { result in
                    continuation.resume(with: result.mapError { $0 as any Error })
                }
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    public func publish(topic: String, text: String, qos: MQTTQoS = .atMostOnce, retain: Bool = false)
        async throws {
        try await publish(topic: topic, payload: Array(text.utf8), qos: qos, retain: retain)
    }

    /// Subscribes now if connected, and again after every reconnect (sessions are clean, so the broker
    /// forgets subscriptions when the connection drops).
    public func subscribe(_ filter: String, qos: MQTTQoS = .atLeastOnce) throws {
        let connected = core.withLock { core -> Bool in
            core.subscriptions[filter] = qos
            return core.state == .connected
        }
        guard connected else { return }
        let rc = mosquitto_subscribe(handle, nil, filter, qos.rawValue)
        if rc != Int32(MOSQ_ERR_SUCCESS.rawValue), rc != Int32(MOSQ_ERR_NO_CONN.rawValue) {
            throw MQTTError.fromLibrary(rc)
        }
    }

    public func unsubscribe(_ filter: String) throws {
        let connected = core.withLock { core -> Bool in
            core.subscriptions.removeValue(forKey: filter)
            return core.state == .connected
        }
        guard connected else { return }
        let rc = mosquitto_unsubscribe(handle, nil, filter)
        if rc != Int32(MOSQ_ERR_SUCCESS.rawValue), rc != Int32(MOSQ_ERR_NO_CONN.rawValue) {
            throw MQTTError.fromLibrary(rc)
        }
    }

    /// Waits until the client is connected, or throws the last error once `timeout` has passed.
    public func waitUntilConnected(timeout: Duration) async throws {
        let states = connectionStates()
        if state == .connected { return }
        let deadline = ContinuousClock.now + timeout
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await state in states where state == .connected { return }
                throw MQTTError.stopped
            }
            group.addTask {
                try await Task.sleep(until: deadline)
                throw MQTTError.network("not connected within \(timeout)")
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    // MARK: - Network thread

    private func setState(_ newState: MQTTConnectionState) {
        core.withLock { $0.state = newState }
        stateBroadcast.yield(newState)
        logger.debug("mqtt \(settings.host):\(settings.port): \(newState)")
    }

    private func runLoop() {
        let success = Int32(MOSQ_ERR_SUCCESS.rawValue)
        var firstAttempt = true
        while true {
            let attempt = core.withLock { core -> Int? in
                if core.stopRequested { return nil }
                core.refusal = nil
                core.lastLibraryError = nil
                core.connectAttemptCount += 1
                return core.failedAttempts
            }
            guard let attempt else { break }
            setState(.connecting(attempt: attempt))
            var rc = firstAttempt
                ? mosquitto_connect(handle, settings.host, Int32(settings.port), Int32(settings.keepalive))
                : mosquitto_reconnect(handle)
            firstAttempt = false
            if rc == success {
                // Connected at TCP/TLS level and CONNECT sent; pump until the connection ends.
                repeat {
                    rc = mosquitto_loop(handle, 1000, 1)
                    announceConnectedIfPending()
                } while rc == success
            }
            let (stopping, error, failures) = core.withLock { core -> (Bool, MQTTError, Int) in
                let error = core.refusal ?? MQTTError.fromLibrary(rc, detail: core.lastLibraryError)
                if core.state != .connected { core.failedAttempts += 1 }
                return (core.stopRequested, error, core.failedAttempts)
            }
            if stopping { break }
            let delay = settings.backoff.delay(attempt: max(0, failures - 1))
            setState(.disconnected(error: error, retryIn: delay))
            let retry = String(format: "%.2f s", delay.seconds)
            if error.isAuthorizationFailure {
                logger.error("mqtt \(settings.host):\(settings.port): \(error); retrying in \(retry)")
            } else {
                logger.warning("mqtt \(settings.host):\(settings.port): \(error); retrying in \(retry)")
            }
            let nanoseconds = UInt64(max(0, delay.seconds) * 1e9)
            _ = wakeup.wait(timeout: .now() + .nanoseconds(Int(min(nanoseconds, UInt64(Int.max)))))
        }
        failPendingAcks()
        let waiters = core.withLock { core -> [CheckedContinuation<Void, Never>] in
            core.finished = true
            core.state = .stopped
            defer { core.stopWaiters.removeAll() }
            return Array(core.stopWaiters.values)
        }
        stateBroadcast.yield(.stopped)
        finishStreams()
        for waiter in waiters { waiter.resume() }
    }

    /// A stopped client never delivers again: end every subscriber's `for await` loop.
    private func finishStreams() {
        stateBroadcast.finish()
        messageBroadcast.finish()
    }

    private func failPendingAcks() {
        let pending = core.withLock { core in
            defer { core.pendingAcks.removeAll() }
            return Array(core.pendingAcks.values)
        }
        for handler in pending { handler(.failure(.stopped)) }
    }

    // MARK: - Callbacks (network thread)

    fileprivate func didConnect(code: Int32) {
        guard code == 0 else {
            let refusal = MQTTError.refusal(code, protocolVersion: settings.protocolVersion,
                                            sentCredentials: settings.username != nil || settings.password != nil)
            core.withLock { $0.refusal = refusal }
            return
        }
        let subscriptions = core.withLock { core -> [String: MQTTQoS] in
            core.failedAttempts = 0
            return core.subscriptions
        }
        for (filter, qos) in subscriptions {
            let rc = mosquitto_subscribe(handle, nil, filter, qos.rawValue)
            if rc != Int32(MOSQ_ERR_SUCCESS.rawValue) {
                logger.warning("mqtt: subscribing to \(filter) failed: \(MQTTError.fromLibrary(rc))")
            }
        }
        core.withLock { core in
            core.state = .connected
            core.connectedPendingAnnouncement = true
        }
    }

    /// Announces `.connected` once libmosquitto has finished handling the CONNACK. It calls `on_connect`
    /// *before* re-queueing the messages that were unacknowledged when the last connection dropped; a
    /// subscriber reacting to `.connected` at once (the node publisher sending its outbox backlog) would get
    /// newer messages onto the wire ahead of those older ones. Announcing from the loop thread after
    /// `mosquitto_loop` returns keeps publish order across reconnects.
    private func announceConnectedIfPending() {
        let announce = core.withLock { core -> Bool in
            defer { core.connectedPendingAnnouncement = false }
            return core.connectedPendingAnnouncement && core.state == .connected
        }
        guard announce else { return }
        stateBroadcast.yield(.connected)
        logger.debug("mqtt \(settings.host):\(settings.port): connected")
    }

    fileprivate func didPublish(mid: Int32, reasonCode: Int32) {
        guard let handler = core.withLock({ $0.pendingAcks.removeValue(forKey: mid) }) else { return }
        if reasonCode >= 0x80 {
            handler(.failure(.publishRejected(reasonCode: reasonCode,
                                              reason: String(cString: mosquitto_reason_string(reasonCode)))))
        } else {
            handler(.success(()))
        }
    }

    fileprivate func didReceive(_ message: MQTTMessage) {
        messageBroadcast.yield(message)
    }

    fileprivate func didLog(level: Int32, text: String) {
        if level & Int32(MOSQ_LOG_ERR) != 0 {
            core.withLock { core in
                // Keep the first error line of an attempt: OpenSSL's reason comes before the generic ones.
                if core.lastLibraryError == nil { core.lastLibraryError = text }
            }
            logger.debug("libmosquitto: \(text)")
        } else {
            logger.trace("libmosquitto: \(text)")
        }
    }

    private static func client(from userdata: UnsafeMutableRawPointer?) -> MQTTClient? {
        guard let userdata else { return nil }
        return Unmanaged<MQTTClient>.fromOpaque(userdata).takeUnretainedValue()
    }

    /// The C callbacks: non-capturing closures, converted to `@convention(c)` function pointers.
    private static func installCallbacks(on handle: OpaquePointer) {
        mosquitto_connect_callback_set(handle) { _, userdata, code in
            MQTTClient.client(from: userdata)?.didConnect(code: code)
        }
        mosquitto_publish_v5_callback_set(handle) { _, userdata, mid, reasonCode, _ in
            MQTTClient.client(from: userdata)?.didPublish(mid: mid, reasonCode: reasonCode)
        }
        mosquitto_message_callback_set(handle) { _, userdata, messagePointer in
            guard let client = MQTTClient.client(from: userdata), let raw = messagePointer?.pointee else { return }
            let topic = raw.topic.map { String(cString: $0) } ?? ""
            var payload: [UInt8] = []
            if let bytes = raw.payload, raw.payloadlen > 0 {
                payload = Array(UnsafeRawBufferPointer(start: bytes, count: Int(raw.payloadlen)))
            }
            client.didReceive(MQTTMessage(topic: topic, payload: payload, qos: MQTTQoS(rawValue: raw.qos) ?? .atMostOnce,
                                          retain: raw.retain))
        }
        mosquitto_log_callback_set(handle) { _, userdata, level, text in
            guard let text else { return }
            MQTTClient.client(from: userdata)?.didLog(level: level, text: String(cString: text))
        }
    }
}
