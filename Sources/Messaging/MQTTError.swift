import CMosquitto

/// Why an MQTT operation or connection attempt failed, worded for the person reading the log.
public enum MQTTError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The broker answered CONNACK with a refusal (bad credentials, not authorised, ...).
    case connectionRefused(code: Int32, reason: String)
    /// The TLS handshake failed: wrong CA, hostname mismatch, unreadable certificate, ...
    case tls(String)
    /// TCP-level trouble: broker not reachable, connection lost.
    case network(String)
    /// Any other libmosquitto error code.
    case library(code: Int32, reason: String)
    /// The broker rejected a publish (MQTT 5 PUBACK reason code >= 0x80).
    case publishRejected(reasonCode: Int32, reason: String)
    /// The client was stopped before the operation could complete.
    case stopped
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .connectionRefused(code, reason):
            "broker refused the connection (code \(code)): \(reason)"
        case let .tls(detail): "TLS handshake with the broker failed: \(detail)"
        case let .network(detail): "network error talking to the broker: \(detail)"
        case let .library(code, reason): "libmosquitto error \(code): \(reason)"
        case let .publishRejected(code, reason): "broker rejected the publish (reason \(code)): \(reason)"
        case .stopped: "the MQTT client was stopped"
        case let .invalidArgument(detail): "invalid argument: \(detail)"
        }
    }

    /// Whether credentials or authorisation are the problem, so a caller can tell the user to fix the config
    /// instead of waiting for the network.
    public var isAuthorizationFailure: Bool {
        guard case let .connectionRefused(code, _) = self else { return false }
        // 3.1.1: 4 bad user name or password, 5 not authorised. 5: 0x86, 0x87, 0x8C.
        return [4, 5, 0x86, 0x87, 0x8C].contains(code)
    }

    /// Maps a libmosquitto return code (`MOSQ_ERR_*`) to an error, with the last library log line as detail
    /// for TLS failures, where the return code alone only says "TLS".
    static func fromLibrary(_ rc: Int32, detail: String? = nil) -> MQTTError {
        let text = String(cString: mosquitto_strerror(rc))
        switch rc {
        case Int32(MOSQ_ERR_TLS.rawValue), Int32(MOSQ_ERR_TLS_HANDSHAKE.rawValue):
            return .tls(detail ?? text)
        case Int32(MOSQ_ERR_NO_CONN.rawValue), Int32(MOSQ_ERR_CONN_LOST.rawValue), Int32(MOSQ_ERR_ERRNO.rawValue),
             Int32(MOSQ_ERR_EAI.rawValue), Int32(MOSQ_ERR_KEEPALIVE.rawValue):
            return .network(detail ?? text)
        default:
            return .library(code: rc, reason: detail ?? text)
        }
    }

    /// Describes a CONNACK refusal code (3.1.1 return code or MQTT 5 reason code).
    /// mosquitto 2.0 answers both "no credentials" and "wrong password" with 5 (not authorised), so the hint
    /// depends on whether the client sent credentials.
    static func refusal(_ code: Int32, protocolVersion: MQTTProtocolVersion, sentCredentials: Bool) -> MQTTError {
        let base = protocolVersion == .v5 ? String(cString: mosquitto_reason_string(code))
                                          : String(cString: mosquitto_connack_string(code))
        let hint: String
        switch code {
        case 4, 0x86: hint = " (check the MQTT username and password)"
        case 5, 0x87:
            hint = sentCredentials ? " (check the MQTT username and password; the broker rejects them)"
                                   : " (the broker requires a username and password; none are configured)"
        case 2, 0x85: hint = " (client id rejected)"
        default: hint = ""
        }
        return .connectionRefused(code: code, reason: base + hint)
    }
}
