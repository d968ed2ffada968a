import Foundation

/// MQTT protocol revision spoken to the broker.
///
/// 3.1.1 is the default because every broker a home-automation setup is likely to run (mosquitto, the Home
/// Assistant add-on, EMQX, HiveMQ) speaks it; 5 adds reason codes on PUBACK, which the outbox uses to tell a
/// rejected event from a delivered one.
public enum MQTTProtocolVersion: String, Sendable, Codable, CaseIterable {
    case v311 = "3.1.1"
    case v5 = "5"
}

/// Delivery guarantee of one publish or subscription.
public enum MQTTQoS: Int32, Sendable, Codable, Comparable {
    case atMostOnce = 0
    case atLeastOnce = 1
    case exactlyOnce = 2

    public static func < (lhs: MQTTQoS, rhs: MQTTQoS) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// TLS towards the broker. Hostname verification stays on unless `insecure` is set, because a CA that signs
/// certificates for many hosts (a home CA, Let's Encrypt) would otherwise let any of them impersonate the broker.
public struct MQTTTLSSettings: Sendable, Equatable, Codable {
    /// PEM file with the CA certificate(s) that signed the broker's certificate.
    public var caFile: String
    /// Client certificate and key (PEM) when the broker authenticates clients by certificate.
    public var certFile: String?
    public var keyFile: String?
    /// Skips the broker hostname check (the chain is still verified). For test rigs only.
    public var insecure: Bool
    /// Lowest TLS version offered, in OpenSSL's spelling.
    public var tlsVersion: String

    public init(caFile: String, certFile: String? = nil, keyFile: String? = nil, insecure: Bool = false,
                tlsVersion: String = "tlsv1.2") {
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.insecure = insecure
        self.tlsVersion = tlsVersion
    }
}

/// Reconnect delays: exponential growth from `initial` up to `cap`, each delay randomised downwards by up to
/// `jitter` (a fraction) so that a house full of nodes does not hammer a restarted broker in lock-step.
public struct MQTTBackoff: Sendable, Equatable, Codable {
    public var initial: Duration
    public var cap: Duration
    public var multiplier: Double
    public var jitter: Double

    public init(initial: Duration = .seconds(1), cap: Duration = .seconds(60), multiplier: Double = 2,
                jitter: Double = 0.5) {
        self.initial = initial
        self.cap = max(cap, initial)
        self.multiplier = max(1, multiplier)
        self.jitter = min(max(jitter, 0), 1)
    }

    /// The undisturbed delay before reconnect attempt `attempt` (0-based): `initial * multiplier^attempt`, capped.
    public func ceiling(attempt: Int) -> Duration {
        let initialSeconds = initial.seconds
        let grown = initialSeconds * pow(multiplier, Double(min(attempt, 64)))
        return .seconds(min(grown, cap.seconds))
    }

    /// The delay to actually wait: somewhere in `[ceiling * (1 - jitter), ceiling]`.
    public func delay<G: RandomNumberGenerator>(attempt: Int, using generator: inout G) -> Duration {
        let top = ceiling(attempt: attempt).seconds
        let factor = 1 - jitter * Double.random(in: 0...1, using: &generator)
        return .seconds(top * factor)
    }

    public func delay(attempt: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(attempt: attempt, using: &generator)
    }
}

/// A message the broker publishes on our behalf when we vanish without saying goodbye (power cut, crash,
/// network loss); the node uses it to flip its `status` topic to `offline`.
public struct MQTTWill: Sendable, Equatable {
    public var topic: String
    public var payload: [UInt8]
    public var qos: MQTTQoS
    public var retain: Bool

    public init(topic: String, payload: [UInt8], qos: MQTTQoS = .atLeastOnce, retain: Bool = true) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
    }
}

/// Everything needed to reach and authenticate to a broker.
public struct MQTTSettings: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// The MQTT client id; the node id, so that the broker kicks a stale session of the same node.
    public var clientID: String
    public var username: String?
    public var password: String?
    public var tls: MQTTTLSSettings?
    /// Seconds between PINGREQs; the broker declares us dead (and sends the Will) after 1.5x this.
    public var keepalive: Int
    public var protocolVersion: MQTTProtocolVersion
    public var backoff: MQTTBackoff
    /// How many QoS>0 messages may be unacknowledged at once (libmosquitto's send maximum).
    public var maxInflight: Int
    /// False asks the broker to keep this client's subscriptions and queue QoS>0 messages for it while it is
    /// away (a persistent session). The node itself runs with a clean session: its commands are not worth
    /// replaying after an outage and its own backlog lives in the outbox.
    public var cleanSession: Bool

    public init(host: String = "127.0.0.1", port: Int? = nil, clientID: String, username: String? = nil,
                password: String? = nil, tls: MQTTTLSSettings? = nil, keepalive: Int = 30,
                protocolVersion: MQTTProtocolVersion = .v311, backoff: MQTTBackoff = MQTTBackoff(),
                maxInflight: Int = 20, cleanSession: Bool = true) {
        self.host = host
        self.port = port ?? (tls == nil ? 1883 : 8883)
        self.clientID = clientID
        self.username = username
        self.password = password
        self.tls = tls
        self.keepalive = keepalive
        self.protocolVersion = protocolVersion
        self.backoff = backoff
        self.maxInflight = maxInflight
        self.cleanSession = cleanSession
    }

    /// Parses `mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]` (user:password@ allowed) as used by the CLI's
    /// `--broker`. `mqtts` needs `tls` to be filled in afterwards (at least the CA file).
    public static func parseBrokerURL(_ text: String) throws -> (host: String, port: Int, secure: Bool,
                                                                 username: String?, password: String?) {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              let host = components.host, !host.isEmpty else {
            throw MQTTError.invalidArgument("broker URL \"\(text)\" is not of the form mqtt://HOST[:PORT]")
        }
        let secure: Bool
        switch scheme {
        case "mqtt", "tcp": secure = false
        case "mqtts", "ssl", "tls": secure = true
        default: throw MQTTError.invalidArgument("broker URL scheme \"\(scheme)\" is not mqtt or mqtts")
        }
        return (host, components.port ?? (secure ? 8883 : 1883), secure, components.user, components.password)
    }
}

extension Duration {
    /// The duration as floating-point seconds.
    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
