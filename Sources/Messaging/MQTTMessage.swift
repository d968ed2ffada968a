import Foundation

/// One message received on a subscription.
public struct MQTTMessage: Sendable, Equatable {
    public var topic: String
    public var payload: [UInt8]
    public var qos: MQTTQoS
    public var retain: Bool

    public init(topic: String, payload: [UInt8], qos: MQTTQoS = .atMostOnce, retain: Bool = false) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
    }

    /// The payload decoded as UTF-8 (lossy), for text topics such as `status`.
    public var text: String { String(decoding: payload, as: UTF8.self) }
}

/// Where the connection to the broker stands. Published on `MQTTClient.connectionStates()` whenever it changes.
public enum MQTTConnectionState: Sendable, Equatable, CustomStringConvertible {
    case idle
    /// A connection attempt is under way (`attempt` counts failed attempts since the last success).
    case connecting(attempt: Int)
    case connected
    /// The connection dropped or an attempt failed; `retryIn` is the backoff before the next attempt.
    case disconnected(error: MQTTError?, retryIn: Duration?)
    case stopped

    public var isConnected: Bool { self == .connected }

    public var description: String {
        switch self {
        case .idle: "idle"
        case let .connecting(attempt): "connecting (attempt \(attempt + 1))"
        case .connected: "connected"
        case let .disconnected(error, retryIn):
            "disconnected" + (error.map { ": \($0)" } ?? "")
                + (retryIn.map { String(format: "; retrying in %.2f s", $0.seconds) } ?? "")
        case .stopped: "stopped"
        }
    }
}
